"""How a simulated day's rows are drawn: the population as arrays, the scenarios' drift rules,
label noise, and the rows as Arrow tables (written) or frames (returned).

A day's rows depend on (seed, day, scenario) only, chunk by chunk, so any day can be
regenerated alone and rewriting a day gives byte-identical files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from churnops.config import ChurnopsConfig
from churnops.data import as_text, label_vector
from churnops.errors import ChurnopsInputError

__all__ = [
    "CHUNK_ROWS",
    "SCENARIOS",
    "Chunk",
    "Prepared",
    "check_arguments",
    "day_chunks",
    "prepare",
]

log = logging.getLogger(__name__)


SCENARIOS = ("stable", "covariate_drift", "concept_drift", "mixed", "relation_shift")


CHUNK_ROWS = 1_000_000
"""Rows generated (and written as one Parquet row group) at a time: bounds peak memory."""


FLIP_RATE_RANGE = (0.02, 0.05)


NUMERIC_NOISE_SD = 0.02
"""Standard deviation of the multiplicative noise on numeric columns (tenure excepted)."""


# Telco-specific drift rules. They key on Telco column names and values; with another
# dataset each rule whose columns are absent is skipped (its term simply contributes nothing).
TENURE, MONTHLY, TOTAL = "tenure", "monthlycharges", "totalcharges"


CONTRACT, INTERNET = "contract", "internetservice"


MONTH_TO_MONTH, LONG_CONTRACTS, FIBER = "Month-to-month", ("One year", "Two year"), "Fiber optic"


SHORT_TENURE, LONG_TENURE = 12, 48


# Log-weight added per trait at full covariate drift. The traits are correlated with most
# other columns (services, payment method, charges), so at full intensity more than half of
# Telco's features drift by churnops' own rule (p < 0.05 and effect > 0.1): a shift a
# monitoring system must catch, not a subtle one.
TILT = {"month_to_month": 1.2, "fiber": 0.6, "short_tenure": 0.8}


PRICE_RISE = 0.25
"""Monthly charges are multiplied by ``1 + PRICE_RISE * intensity`` under covariate drift."""


# Concept drift at full intensity: this share of the originally low-risk customers churn and
# this share of the originally high-risk ones stay. Tuned so a logistic regression fitted on
# the population falls from ROC-AUC ~0.82 on a stable day to ~0.57 (see tests).
LOW_RISK_CHURN = 0.25


HIGH_RISK_STAY = 0.5


# Relation shift at full intensity (a rival's fiber offer): this share of the loyal fiber customers
# (low-risk as above, on fiber) churn and this share of the high-risk ones without fiber stay. Unlike
# concept_drift, which blurs the old relation, this sets a new one that a model retrained on a day or
# two of it learns: it beats the population's model by 0.05-0.10 ROC-AUC on the shifted days (see tests).
LOYAL_FIBER_CHURN = 0.8


HIGH_RISK_NO_FIBER_STAY = 0.8


@dataclass(frozen=True)
class Prepared:
    """The population as arrays, plus the masks and weights the scenarios need."""

    id_column: str
    target: str
    numeric: dict[str, np.ndarray]
    integral: dict[str, bool]
    non_negative: dict[str, bool]
    categorical: dict[str, tuple[np.ndarray, np.ndarray]]
    """column → (int32 codes with -1 for missing, categories as str)."""
    positive: np.ndarray
    positive_label: str
    negative_label: str
    tilt: np.ndarray | None
    """Per-row log-weight at full covariate drift; None when no tilt rule applies."""
    low_risk: np.ndarray | None
    high_risk: np.ndarray | None
    fiber: np.ndarray | None
    """Rows on fiber optic; None without an internet-service column."""

    @property
    def size(self) -> int:
        return len(self.positive)

    @property
    def feature_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def dictionary_columns(self) -> list[str]:
        return list(self.categorical)

    @property
    def batch_schema(self) -> pa.Schema:
        fields = [pa.field(self.id_column, pa.string())]
        fields += [pa.field(c, pa.float64()) for c in self.numeric]
        fields += [pa.field(c, pa.dictionary(pa.int32(), pa.string())) for c in self.categorical]
        return pa.schema(fields)

    @property
    def labels_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(self.id_column, pa.string()), pa.field(self.target, pa.dictionary(pa.int32(), pa.string()))]
        )


@dataclass(frozen=True)
class Chunk:
    """Generated rows before they become a frame or an Arrow table."""

    start: int
    """Row number (within the day) of the first row: ids continue across chunks."""
    source_rows: np.ndarray
    """Population row each generated row was drawn from."""
    numeric: dict[str, np.ndarray]
    original: np.ndarray
    """Label of the drawn population row, before concept drift and flips."""
    positive: np.ndarray
    """Final label (True = positive class)."""
    flipped: np.ndarray
    """Rows whose label was flipped as noise (after concept drift)."""
    flip_rate: float

    def __len__(self) -> int:
        return len(self.source_rows)

    @staticmethod
    def concat(chunks: list[Chunk]) -> Chunk:
        """Consecutive chunks of one day as one (the first chunk's start and flip rate)."""
        return Chunk(
            start=chunks[0].start,
            source_rows=np.concatenate([c.source_rows for c in chunks]),
            numeric={k: np.concatenate([c.numeric[k] for c in chunks]) for k in chunks[0].numeric},
            original=np.concatenate([c.original for c in chunks]),
            positive=np.concatenate([c.positive for c in chunks]),
            flipped=np.concatenate([c.flipped for c in chunks]),
            flip_rate=chunks[0].flip_rate,
        )


def prepare(frame: pd.DataFrame, config: ChurnopsConfig) -> Prepared:
    """The population as arrays for drawing days: numeric columns, category codes, labels and the scenarios' masks.

    Args:
        frame: the population (id, feature and target columns); rows without a target are left out.
        config: the dataset's columns and labels.

    Returns:
        The prepared population.

    Raises:
        ChurnopsInputError: a column is missing, no row has a target, or the target is not binary.
    """
    ds = config.dataset
    missing = [c for c in (ds.id_column, *ds.feature_columns, ds.target) if c not in frame.columns]
    if missing:
        raise ChurnopsInputError(f"population lacks columns {missing}")
    frame = frame.loc[frame[ds.target].notna()]
    if frame.empty:
        raise ChurnopsInputError("population has no labelled rows")

    observed = set(frame[ds.target].map(as_text).unique())
    others = observed - {ds.positive_label}
    negative = ds.negative_label
    if negative is None and len(others) == 1:
        negative = others.pop()
    if negative is None or others - {negative}:
        # Flipping a label needs exactly one "other" class to flip to.
        raise ChurnopsInputError(
            f"target {ds.target!r} must be binary with positive label {ds.positive_label!r}"
            f"{'' if ds.negative_label is None else f' and negative label {negative!r}'}; found {sorted(observed)}"
        )

    numeric, integral, non_negative = {}, {}, {}
    for column in ds.numeric_features:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        finite = values[np.isfinite(values)]
        numeric[column] = values
        integral[column] = bool(np.all(finite == np.round(finite)))
        non_negative[column] = bool(np.all(finite >= 0))
    categorical = {}
    for column in ds.categorical_features:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        categorical[column] = (codes.astype(np.int32), np.array([as_text(u) for u in uniques], dtype=object))

    def equals(column: str, *values: str) -> np.ndarray | None:
        if column not in categorical:
            return None
        codes, categories = categorical[column]
        hits = np.flatnonzero(np.isin(categories, values))
        return np.isin(codes, hits)

    tenure = numeric.get(TENURE)
    month_to_month = equals(CONTRACT, MONTH_TO_MONTH)
    long_contract = equals(CONTRACT, *LONG_CONTRACTS)
    short = None if tenure is None else tenure <= SHORT_TENURE  # NaN compares False: no tilt
    fiber = equals(INTERNET, FIBER)
    traits = {"month_to_month": month_to_month, "fiber": fiber, "short_tenure": short}
    present = {name: mask for name, mask in traits.items() if mask is not None}
    tilt = sum(TILT[name] * mask for name, mask in present.items()) if present else None

    # Risk groups as the original data sees them: whichever of contract / tenure exists.
    low_parts = [m for m in (long_contract, None if tenure is None else tenure >= LONG_TENURE) if m is not None]
    high_parts = [m for m in (month_to_month, None if tenure is None else tenure < SHORT_TENURE) if m is not None]
    low_risk = np.logical_or.reduce(low_parts) if low_parts else None
    high_risk = np.logical_and.reduce(high_parts) if high_parts else None

    return Prepared(
        id_column=ds.id_column,
        target=ds.target,
        numeric=numeric,
        integral=integral,
        non_negative=non_negative,
        categorical=categorical,
        positive=label_vector(frame, config).astype(bool),
        positive_label=ds.positive_label,
        negative_label=negative,
        tilt=None if tilt is None else np.asarray(tilt, dtype="float64"),
        low_risk=low_risk,
        high_risk=high_risk,
        fiber=fiber,
    )


def check_arguments(scenario: str, rows: int, seed: int, chunk_rows: int) -> None:
    """Refuse a day's arguments before anything is drawn or written.

    Args:
        scenario: one of :data:`SCENARIOS`.
        rows: the day's rows (at least 1).
        seed: the base seed (non-negative).
        chunk_rows: rows per chunk (at least 1).

    Raises:
        ValueError: an argument is out of range.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {list(SCENARIOS)}")
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative (numpy seeds are), got {seed}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")


def day_chunks(
    prepared: Prepared, day: date, rows: int, scenario: str, seed: int, intensity: float, chunk_rows: int
) -> Iterator[Chunk]:
    """The day's rows, ``chunk_rows`` at a time, each chunk seeded on its own.

    Args:
        prepared: the population (:func:`prepare`).
        day: the day (seeds its rows).
        rows: the day's rows.
        scenario: one of :data:`SCENARIOS` (seeds its rows once drifting).
        seed: the base seed.
        intensity: the drift's intensity on the day, in [0, 1].
        chunk_rows: rows per chunk.

    Yields:
        The chunks, in order.

    Raises:
        ValueError: an argument is out of range (:func:`check_arguments`).
    """
    check_arguments(scenario, rows, seed, chunk_rows)
    # At intensity 0 a drift scenario is the stable one, seeds included: a drift run then
    # shares its pre-drift history with the stable run byte for byte.
    active = scenario if intensity > 0 else "stable"
    entropy = [seed, day.toordinal(), SCENARIOS.index(active)]
    covariate = active in ("covariate_drift", "mixed", "relation_shift")
    concept = active in ("concept_drift", "mixed")
    shift = active == "relation_shift"
    if covariate and prepared.tilt is None:
        log.warning("scenario %r: no contract/internetservice/tenure column, the covariate tilt is skipped", scenario)
    if concept and prepared.low_risk is None:
        log.warning("scenario %r: no contract/tenure column, the concept-drift rule is skipped", scenario)
    if shift and (prepared.low_risk is None or prepared.fiber is None):
        log.warning("scenario %r: no contract/tenure/internetservice column, the relation shift is skipped", scenario)
    flip_rate = float(np.random.default_rng(np.random.SeedSequence(entropy)).uniform(*FLIP_RATE_RANGE))
    for k, start in enumerate(range(0, rows, chunk_rows)):
        # spawn_key makes chunk k's stream distinct from the day's and from other chunks'
        # (a plain trailing 0 in the entropy would collide with the day's own seed).
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(k,)))
        size = min(chunk_rows, rows - start)
        yield generate(prepared, rng, start, size, intensity, covariate, concept, flip_rate, shift)


def generate(
    prepared: Prepared,
    rng: np.random.Generator,
    start: int,
    size: int,
    intensity: float,
    covariate: bool,
    concept: bool,
    flip_rate: float,
    shift: bool = False,
) -> Chunk:
    # The order of draws is fixed; changing it changes every simulated day.
    if covariate and prepared.tilt is not None:
        weights = np.exp(intensity * prepared.tilt)
        source = rng.choice(prepared.size, size=size, p=weights / weights.sum())
    else:
        source = rng.integers(0, prepared.size, size=size)

    numeric = {}
    for column, population_values in prepared.numeric.items():
        values = population_values[source]
        if column == TENURE:
            # Tenure 0 marks a first-month customer with blank total charges: keep it, and
            # keep everyone else at 1+, so jitter never breaks that pairing.
            jitter = rng.integers(-1, 2, size=size)
            values = np.where(values > 0, np.maximum(values + jitter, 1), values)
        else:
            values = values * (1 + rng.normal(0, NUMERIC_NOISE_SD, size=size))
            if prepared.integral[column]:
                values = np.round(values)  # counts and 0/1 flags stay integral
            if prepared.non_negative[column]:
                values = np.maximum(values, 0)
        if column == MONTHLY and covariate:
            values = values * (1 + PRICE_RISE * intensity)
        if column in (MONTHLY, TOTAL):
            values = np.round(values, 2)  # billing amounts, as in the source
        numeric[column] = values

    original = prepared.positive[source]
    positive = original.copy()
    # prepare() finds both risk groups or neither (both come from the contract and tenure columns).
    if concept and prepared.low_risk is not None and prepared.high_risk is not None:
        u = rng.random(size)
        positive[prepared.low_risk[source] & (u < LOW_RISK_CHURN * intensity)] = True
        positive[prepared.high_risk[source] & (u < HIGH_RISK_STAY * intensity)] = False

    if shift and prepared.low_risk is not None and prepared.high_risk is not None and prepared.fiber is not None:
        u = rng.random(size)  # drawn only here: every other scenario's draws stay as they were
        fiber = prepared.fiber[source]
        positive[prepared.low_risk[source] & fiber & (u < LOYAL_FIBER_CHURN * intensity)] = True
        positive[prepared.high_risk[source] & ~fiber & (u < HIGH_RISK_NO_FIBER_STAY * intensity)] = False

    flipped = flips(rng, positive, flip_rate)
    positive ^= flipped
    return Chunk(
        start=start,
        source_rows=source,
        numeric=numeric,
        original=original,
        positive=positive,
        flipped=flipped,
        flip_rate=flip_rate,
    )


def flips(rng: np.random.Generator, positive: np.ndarray, rate: float) -> np.ndarray:
    """Exactly ``round(rate * n)`` rows to flip, half from each class where possible.

    Uniformly random flips would mostly turn negatives into positives (the larger class),
    raising the churn rate and, at 5 %, dragging a good model's ROC-AUC below 0.80 on
    days with no drift at all; balanced flips are label noise that does neither.
    """
    total = int(round(rate * len(positive)))
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    from_pos = min(total // 2, len(pos))
    from_neg = min(total - from_pos, len(neg))
    from_pos = min(total - from_neg, len(pos))  # give the other class what one class lacks
    mask = np.zeros(len(positive), dtype=bool)
    mask[rng.choice(pos, size=from_pos, replace=False)] = True
    mask[rng.choice(neg, size=from_neg, replace=False)] = True
    return mask
