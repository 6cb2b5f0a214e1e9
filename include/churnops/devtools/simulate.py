"""Production-like days of data drawn from the source population, for the monitoring loop.

Each simulated day is a batch of customers (features only, as scoring would see them) and
that day's labels (as the business would later learn them). Rows are resampled with
replacement from the merged source table, jittered, and 2–5 % of labels are flipped; a
scenario can then drift the feature mix (covariate drift), the feature→churn relation
(concept drift) or both, ramping in over ``ramp_days`` from ``drift_start``.

Everything is a pure function of its arguments: a day's rows depend on (seed, day,
scenario) only, never on which other days are generated, so any day can be regenerated
alone and rewriting a day gives byte-identical files.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from churnops.config import ChurnopsConfig
from churnops.data import atomic_parquet_writer, coerce_types, merge_sources, read_source
from churnops.devtools.generator import CHUNK_ROWS, SCENARIOS, Chunk, check_arguments, day_chunks, prepare
from churnops.devtools.tables import batch_frame, batch_table, labels_frame, labels_table, row_ids
from churnops.errors import ChurnopsInputError

__all__ = [
    "CHUNK_ROWS",
    "SCENARIOS",
    "drift_intensity",
    "population",
    "simulate_day",
    "write_days",
]

log = logging.getLogger(__name__)


def population(config: ChurnopsConfig) -> pd.DataFrame:
    """The merged, typed source rows that simulated days are drawn from.

    Built exactly as training sees the data (:func:`churnops.data.sources.read_source`,
    :func:`~churnops.data.sources.coerce_types`, :func:`~churnops.data.sources.merge_sources`); the raw
    files are only read.

    Args:
        config: the dataset's configuration.

    Returns:
        Columns id, every feature column (numeric then categorical, as configured) and the
        target, sorted by id; rows without a target are dropped (they cannot yield labels).

    Raises:
        ChurnopsInputError: a source is unreadable, a configured column is missing, or no
            labelled row remains.
    """
    ds = config.dataset
    frames = {s.name: coerce_types(read_source(s), ds) for s in ds.sources}
    missing_id = [name for name, frame in frames.items() if ds.id_column not in frame.columns]
    if missing_id:
        raise ChurnopsInputError(f"sources {missing_id} lack the id column {ds.id_column!r}")
    merged, _ = merge_sources(frames, ds.id_column)
    columns = [ds.id_column, *ds.feature_columns, ds.target]
    missing = [c for c in columns if c not in merged.columns]
    if missing:
        raise ChurnopsInputError(f"merged sources lack configured columns {missing}")
    rows = merged.loc[merged[ds.target].notna(), columns].reset_index(drop=True)
    if rows.empty:
        raise ChurnopsInputError("the merged sources have no labelled rows to simulate from")
    return rows


def drift_intensity(day: date, drift_start: date, ramp_days: int = 10) -> float:
    """How far drift has progressed on ``day``: 0 before ``drift_start``, then a linear ramp.

    Args:
        day: the simulated day.
        drift_start: first day with drift.
        ramp_days: days to reach full intensity (``drift_start`` itself gives ``1 / ramp_days``).

    Returns:
        A value in [0, 1].
    """
    if ramp_days < 1:
        raise ValueError(f"ramp_days must be at least 1, got {ramp_days}")
    elapsed = (day - drift_start).days
    if elapsed < 0:
        return 0.0
    return min(1.0, (elapsed + 1) / ramp_days)


def simulate_day(
    population: pd.DataFrame,
    config: ChurnopsConfig,
    day: date,
    rows: int,
    scenario: str,
    seed: int,
    drift_start: date,
    ramp_days: int = 10,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day of production-like data: the scored batch and its (later known) labels.

    Rows are drawn with replacement from ``population``. Numeric columns get seeded noise:
    ``tenure`` an integer jitter of ±1 (clipped at 1; tenure 0 stays 0, matching its blank
    total charges), every other numeric column multiplicative N(0, 0.02) noise, rounded
    when the population column is integral, clipped at 0 when it is non-negative; missing
    values stay missing (``monthlycharges``/``totalcharges`` are also rounded to cents).
    In every scenario 2–5 % of the labels are flipped (the rate is drawn per day, half
    the flips from each class so noise alone does not move the churn rate).

    Scenarios, scaled by :func:`drift_intensity`:

    * ``stable``: nothing else.
    * ``covariate_drift``: the sampling favours month-to-month contracts, fiber optic and
      short tenure, and monthly charges rise by up to 25 %; each row keeps its own label,
      so P(churn | features) is unchanged.
    * ``concept_drift``: rows are drawn as in ``stable``, but up to 25 % of low-risk
      customers (one/two-year contract or tenure ≥ 48) churn and up to 50 % of high-risk
      ones (month-to-month and tenure < 12) stay.
    * ``mixed``: both.
    * ``relation_shift``: the covariate drift, and a new relation rather than a blurred one: up
      to 80 % of loyal fiber-optic customers (low-risk as above) churn and up to 80 % of the
      high-risk ones without fiber stay. A model retrained on a day or two of it learns the
      new relation and beats the old model on later shifted days.

    The drift rules are Telco-specific: they key on the columns ``contract``,
    ``internetservice``, ``tenure`` and ``monthlycharges`` and their Telco values. With
    another dataset, each rule whose column is absent is skipped (a warning is logged
    when a drift scenario finds none), so the scenario runs without error but may be
    indistinguishable from ``stable``. Before ``drift_start`` (intensity 0) every scenario
    *is* ``stable``, seeding included, so pre-drift days are identical across scenarios.

    Args:
        population: rows from :func:`population` (or any frame with the id, feature and
            target columns).
        config: the dataset's configuration.
        day: the simulated day; ids are ``YYYYMMDD-00000000`` upwards, unique per day.
        rows: number of rows (at least 1).
        scenario: one of :data:`SCENARIOS`.
        seed: non-negative base seed.
        drift_start: first day of drift.
        ramp_days: days for drift to reach full intensity.
        chunk_rows: rows per independently seeded chunk (chunk k is seeded from
            (seed, day, scenario, k)); :func:`write_days` must use the same value to
            produce the same rows.

    Returns:
        ``(batch, labels)``: id + feature columns, and id + target with the dataset's own
        label values, in the same row order.

    Raises:
        ValueError: unknown scenario, or rows/seed/chunk_rows out of range.
        ChurnopsInputError: the population's target is not binary.
    """
    prepared = prepare(population, config)
    intensity = drift_intensity(day, drift_start, ramp_days)
    # One frame built from the concatenated arrays, not a concat of per-chunk frames, and
    # the id strings built once for both frames, so a big day holds its objects once.
    whole = Chunk.concat(list(day_chunks(prepared, day, rows, scenario, seed, intensity, chunk_rows)))
    ids = row_ids(day, whole).to_numpy(zero_copy_only=False)
    return batch_frame(prepared, ids, whole), labels_frame(prepared, ids, whole)


def write_days(
    config: ChurnopsConfig,
    home: Path,
    start: date,
    days: int,
    rows_per_day: int = 1000,
    scenario: str = "stable",
    seed: int = 0,
    drift_start: date | None = None,
    *,
    ramp_days: int = 10,
    chunk_rows: int = CHUNK_ROWS,
) -> list[dict]:
    """Write consecutive simulated days as Parquet under ``home``.

    Day D goes to ``home/incoming/date=D/batch.parquet`` (id + features) and
    ``home/labels/date=D/labels.parquet`` (id + target). Every day's labels are written;
    when they count as matured is the monitoring side's call
    (``config.monitoring.label_delay_days``). Rows are generated and written ``chunk_rows``
    at a time (one row group each), so peak memory does not grow with ``rows_per_day``.
    Files are written to a temporary name and renamed into place: rewriting a day gives
    byte-identical files, and a reader never sees a half-written one.

    Args:
        config: the dataset's configuration.
        home: the churnops working-data root (e.g. :func:`churnops.config.churnops_home`).
        start: first day.
        days: number of consecutive days (at least 1).
        rows_per_day: rows per day.
        scenario: one of :data:`SCENARIOS`.
        seed: non-negative base seed.
        drift_start: first day of drift; defaults to ``start``.
        ramp_days: days for drift to reach full intensity.
        chunk_rows: rows generated and written at a time (see :func:`simulate_day`).

    Returns:
        One dict per day: ``date`` (ISO), ``rows``, ``scenario``, ``intensity``, ``paths``
        (``batch`` and ``labels``) and ``positive_rate`` (share of positive labels).
    """
    # Checked before anything is read or written, not halfway through the first file.
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    check_arguments(scenario, rows_per_day, seed, chunk_rows)
    if ramp_days < 1:
        raise ValueError(f"ramp_days must be at least 1, got {ramp_days}")
    prepared = prepare(population(config), config)
    drift_start = start if drift_start is None else drift_start
    home = Path(home)
    summaries = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        intensity = drift_intensity(day, drift_start, ramp_days)
        batch_path = home / "incoming" / f"date={day:%Y-%m-%d}" / "batch.parquet"
        labels_path = home / "labels" / f"date={day:%Y-%m-%d}" / "labels.parquet"
        positives = 0
        with (
            atomic_parquet_writer(
                batch_path, prepared.batch_schema, use_dictionary=prepared.dictionary_columns, store_schema=False
            ) as batch_out,
            atomic_parquet_writer(
                labels_path, prepared.labels_schema, use_dictionary=[prepared.target], store_schema=False
            ) as labels_out,
        ):
            for chunk in day_chunks(prepared, day, rows_per_day, scenario, seed, intensity, chunk_rows):
                batch_out.write_table(batch_table(prepared, day, chunk), row_group_size=chunk_rows)
                labels_out.write_table(labels_table(prepared, day, chunk), row_group_size=chunk_rows)
                positives += int(chunk.positive.sum())
        summaries.append(
            {
                "date": day.isoformat(),
                "rows": rows_per_day,
                "scenario": scenario,
                "intensity": intensity,
                "paths": {"batch": str(batch_path), "labels": str(labels_path)},
                "positive_rate": positives / rows_per_day,
            }
        )
    return summaries
