"""The statistics of daily monitoring: feature, prediction and target drift, realized performance, the decision.

Everything here is a pure computation on frames and arrays (no MLflow, no Airflow), so
the monitoring DAG only moves data in and JSON out. The drift rule is the one declared
in :class:`~churnops.config.MonitoringConfig`: a test flags drift only when its p-value
is below ``p_value`` AND its effect size exceeds ``min_effect_size``. The p-value alone
is not enough, because with tens of thousands of rows every negligible shift is
"significant"; the effect size alone is not enough, because on a handful of rows large
differences arise by chance.

Every drift test sees at most ``monitoring.sample_size`` rows per side, drawn with a
seeded sample, so the p-values of a busy day and a quiet day are comparable and a day's
numbers can be reproduced exactly. The reference side is drawn with ``seed`` and the
current side with ``seed + 1``, so that the two samples are independent draws even when
the two frames share rows.

:func:`drift_report_html` writes an Evidently report for people to browse. Its numbers
are illustrative; decisions use only the statistics computed here.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import chi2_contingency, ks_2samp
from sklearn.metrics import roc_auc_score

from churnops.config import MonitoringConfig
from churnops.data import as_text, replaced_atomically
from churnops.features import MISSING

__all__ = [
    "CURRENT_SEED_OFFSET",
    "DECIMALS",
    "CurrentSide",
    "categorical_drift",
    "categorical_drift_from_counts",
    "chunk_quota",
    "current_side",
    "decide",
    "drift_report_html",
    "drift_summary",
    "feature_drift",
    "numeric_drift",
    "prediction_drift",
    "realized_performance",
    "sample_rows",
    "target_drift",
]

CURRENT_SEED_OFFSET = 1
"""The current side is sampled with ``seed + CURRENT_SEED_OFFSET`` (the reference with ``seed``)."""

DECIMALS = 12
"""ROC-AUC values and drops are rounded to this many decimals before being compared with thresholds.

Without it, 0.80 − 0.75 evaluates to 0.05000000000000004 and a drop exactly equal to
``max_roc_auc_drop`` would raise an alarm; twelve decimals are far below any meaningful
difference in ROC-AUC yet far above float64 rounding error.
"""


# --- sampling ----------------------------------------------------------------------------------------------------


def sample_rows(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows of ``frame``: a seeded sample without replacement, or the frame itself.

    Args:
        frame: rows to cap.
        n: the cap.
        seed: seed of the sample; the same frame, ``n`` and seed always give the same rows.

    Returns:
        ``frame`` unchanged when it has at most ``n`` rows, else ``n`` of its rows (original
        index kept, in sampled order).
    """
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, replace=False, random_state=seed)


def _capped_pair(
    reference: pd.DataFrame, current: pd.DataFrame, n: int, seed: int, columns: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    for side, frame in (("reference", reference), ("current", current)):
        absent = [c for c in columns or [] if c not in frame.columns]
        if absent:
            raise ValueError(f"the {side} data lacks columns {absent}")
    ref = sample_rows(reference, n, seed)
    cur = sample_rows(current, n, seed + CURRENT_SEED_OFFSET)
    # The sampled positions depend only on the length, so selecting the columns after sampling
    # picks the same rows while never copying a wide million-row frame.
    if columns is not None:
        ref, cur = ref[columns], cur[columns]
    return ref, cur


# --- value normalisation -----------------------------------------------------------------------------------------


def _as_numeric(series: pd.Series) -> pd.Series:
    # The same coercion the model's RawInputCoercer applies, so drift is measured on what
    # the model sees: numbers sent as text are parsed, unparsable values and infinities are missing.
    values = series
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    return values.astype("float64").replace([np.inf, -np.inf], np.nan)


def _category(value: Any) -> str:
    # Mirrors the model's coercion of categoricals: missing and blank cells become MISSING,
    # and 1.0 and 1 are the same category "1" (Parquet may store flags as floats).
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    text = as_text(value).strip()
    return text if text else MISSING


def _category_counts(series: pd.Series) -> pd.Series:
    # Count first, then normalise the (few) distinct values: far cheaper than mapping every row.
    # A pandas Categorical also counts the categories it declares but never uses; such a category,
    # absent from both sides, would be a zero column of the table, which chi2_contingency rejects.
    counts = series.value_counts(dropna=False, sort=False)
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = counts[counts > 0]
    if counts.empty:
        return pd.Series(dtype="int64")
    labels = [_category(value) for value in counts.index]
    return pd.Series(counts.to_numpy(dtype="int64"), index=labels).groupby(level=0).sum()


# --- single-feature tests ----------------------------------------------------------------------------------------


def numeric_drift(reference: pd.Series, current: pd.Series) -> dict:
    """Two-sample Kolmogorov–Smirnov test on the non-null values of a numeric column.

    Nulls are left out of the test (as Evidently does silently) but their shares are
    reported, so a column that suddenly goes missing is visible in the report.

    Args:
        reference: the column in the reference data.
        current: the column in the current data.

    Returns:
        ``{"test": "ks", "statistic", "p_value", "effect_size" (the KS statistic),
        "reference_null_fraction", "current_null_fraction", "n_reference", "n_current"}``,
        where the ``n_*`` count the non-null values compared. When either side has no
        value the statistic is 0.0 and the p-value 1.0: there is no evidence of drift.
        The null fraction of an empty column is 0.0.
    """
    ref = _as_numeric(reference)
    cur = _as_numeric(current)
    ref_values = ref.dropna().to_numpy()
    cur_values = cur.dropna().to_numpy()
    if len(ref_values) == 0 or len(cur_values) == 0:
        statistic, p_value = 0.0, 1.0
    else:
        result = ks_2samp(ref_values, cur_values)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return {
        "test": "ks",
        "statistic": statistic,
        "p_value": p_value,
        "effect_size": statistic,
        "reference_null_fraction": _null_fraction(ref),
        "current_null_fraction": _null_fraction(cur),
        "n_reference": len(ref_values),
        "n_current": len(cur_values),
    }


def _null_fraction(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0


def categorical_drift(reference: pd.Series, current: pd.Series) -> dict:
    """Chi-square test of independence on the 2×k table of category counts, with Cramér's V.

    A contingency test rather than Evidently's goodness-of-fit ``chisquare``: it treats the
    reference as a sample too (not as the exact truth), and a category seen on one side only
    is an ordinary column of the table instead of a division by zero. Missing values are a
    category of their own (``MISSING``), so a jump in missingness counts as drift.

    Args:
        reference: the column in the reference data.
        current: the column in the current data.

    Returns:
        See :func:`categorical_drift_from_counts`.
    """
    return categorical_drift_from_counts(_category_counts(reference), _category_counts(current))


def categorical_drift_from_counts(reference_counts: pd.Series, current_counts: pd.Series) -> dict:
    """:func:`categorical_drift` from the two sides' category counts (which add up across chunks and shards).

    The effect size is Cramér's V of the table with both rows weighted equally,
    ``sqrt(½ Σ_j (p_j − q_j)² / (p_j + q_j))`` for the two sides' category shares p and q:
    exactly Cramér's V when the two sides have the same number of rows, and otherwise the
    same measure of how far apart the distributions are, whatever the two sizes. Plain
    Cramér's V of an unbalanced table shrinks with the larger side (a million current rows
    against a few thousand reference rows would divide it by ~15), so a shift would stop
    counting as drift just because the day is large.

    Returns:
        ``{"test": "chi2_contingency", "statistic", "p_value", "effect_size",
        "reference_null_fraction", "current_null_fraction", "n_reference", "n_current",
        "categories"}`` where ``n_*`` count all rows (missing ones included) and
        ``categories`` is k, the number of distinct categories over both sides. With a
        single category, or an empty side, the statistic and effect are 0.0 and the p-value 1.0.
    """
    ref_counts = reference_counts[reference_counts > 0]
    cur_counts = current_counts[current_counts > 0]
    table = pd.concat([ref_counts.rename("reference"), cur_counts.rename("current")], axis=1).fillna(0)
    table = table.sort_index().T.astype("int64")  # rows: reference, current; one column per category
    n_reference, n_current = int(ref_counts.sum()), int(cur_counts.sum())
    k = table.shape[1]
    if k < 2 or n_reference == 0 or n_current == 0:
        statistic, p_value, effect = 0.0, 1.0, 0.0
    else:
        counts = table.to_numpy()
        result = chi2_contingency(counts, correction=False)
        statistic, p_value = float(result.statistic), float(result.pvalue)
        shares = counts / counts.sum(axis=1, keepdims=True)
        effect = math.sqrt(0.5 * float(np.sum((shares[0] - shares[1]) ** 2 / (shares[0] + shares[1]))))
    return {
        "test": "chi2_contingency",
        "statistic": statistic,
        "p_value": p_value,
        "effect_size": effect,
        "reference_null_fraction": int(ref_counts.get(MISSING, 0)) / n_reference if n_reference else 0.0,
        "current_null_fraction": int(cur_counts.get(MISSING, 0)) / n_current if n_current else 0.0,
        "n_reference": n_reference,
        "n_current": n_current,
        "categories": int(k),
    }


def _drifted(stats: dict, monitoring: MonitoringConfig) -> bool:
    return bool(stats["p_value"] < monitoring.p_value and stats["effect_size"] > monitoring.min_effect_size)


def _judged(stats: dict, n_reference: int, n_current: int, monitoring: MonitoringConfig) -> dict:
    # sample_size records the rows each side contributed after the cap, for the report.
    sample_size = {"reference": n_reference, "current": n_current}
    return {**stats, "drifted": _drifted(stats, monitoring), "sample_size": sample_size}


# --- features, predictions, target -------------------------------------------------------------------------------


@dataclass
class CurrentSide:
    """What feature drift needs of the monitored rows, gathered chunk by chunk.

    Category counts and numeric null counts cover every row and add up exactly across chunks
    (and shards); the KS tests, which cannot be merged, see a seeded sample of
    ``monitoring.sample_size`` rows drawn from each chunk in proportion to its size.
    """

    rows: int = 0
    counts: dict[str, pd.Series] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    sample: list[pd.DataFrame] = field(default_factory=list)

    def merge(self, other: CurrentSide) -> CurrentSide:
        """This side followed by ``other`` (e.g. the next shard)."""
        counts = {
            c: self.counts.get(c, pd.Series(dtype="int64"))
            .add(other.counts.get(c, pd.Series(dtype="int64")), fill_value=0)
            .astype("int64")
            for c in {*self.counts, *other.counts}
        }
        nulls = {c: self.nulls.get(c, 0) + other.nulls.get(c, 0) for c in {*self.nulls, *other.nulls}}
        return CurrentSide(self.rows + other.rows, counts, nulls, [*self.sample, *other.sample])

    def sampled(self, columns: list[str]) -> pd.DataFrame:
        return pd.concat([part[columns] for part in self.sample]) if self.sample else pd.DataFrame(columns=columns)

    def save(self, folder: Path) -> Path:
        """Write the side to ``folder`` (``side.json`` + ``sample.parquet``), so a task can pass it on by path."""
        sample = pd.concat(self.sample, ignore_index=True) if self.sample else pd.DataFrame()
        with replaced_atomically(folder / "sample.parquet") as temporary:
            sample.to_parquet(temporary, index=False)
        payload = {
            "rows": self.rows,
            "nulls": self.nulls,
            "counts": {
                c: {str(k): int(v) for k, v in counts.sort_index().items()} for c, counts in self.counts.items()
            },
        }
        with replaced_atomically(folder / "side.json") as temporary:
            temporary.write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path) -> CurrentSide:
        """The side :meth:`save` wrote: merges and tests exactly like the one saved."""
        payload = json.loads((folder / "side.json").read_text(encoding="utf-8"))
        sample = pd.read_parquet(folder / "sample.parquet")
        counts = {c: pd.Series(values, dtype="int64") for c, values in payload["counts"].items()}
        return cls(
            int(payload["rows"]),
            counts,
            {c: int(n) for c, n in payload["nulls"].items()},
            [sample] if len(sample) else [],
        )


def chunk_quota(sample_size: int, total_rows: int, start: int, stop: int) -> int:
    """Rows to draw from rows [start, stop) of a day of ``total_rows`` rows for a sample of
    ``sample_size``: every chunk gets its share, and the quotas add up to exactly ``sample_size``
    (or every row, for a smaller day) however the day is cut into chunks."""
    if total_rows <= sample_size:
        return stop - start
    return sample_size * stop // total_rows - sample_size * start // total_rows


def current_side(
    chunks: Iterable[pd.DataFrame],
    total_rows: int,
    numeric: list[str],
    categorical: list[str],
    monitoring: MonitoringConfig,
    first_row: int = 0,
    first_chunk: int = 0,
) -> CurrentSide:
    """Gather the current side of feature drift from ``chunks`` of a day of ``total_rows`` rows.

    Args:
        chunks: consecutive row chunks (each with the feature columns).
        total_rows: rows of the whole day (all shards), which sets each chunk's sample quota.
        numeric: numeric feature columns (sampled for KS; nulls counted).
        categorical: categorical feature columns (counted).
        monitoring: ``sample_size`` and ``seed``.
        first_row: position of the first chunk's first row in the day (a shard's offset).
        first_chunk: index of the first chunk in the day (a shard's offset), which seeds its sample.

    Returns:
        The gathered side; sides of consecutive shards merge (:meth:`CurrentSide.merge`) into
        exactly the side of the whole day cut into the same chunks.
    """
    side = CurrentSide(counts={c: pd.Series(dtype="int64") for c in categorical}, nulls=dict.fromkeys(numeric, 0))
    position = first_row
    for index, chunk in enumerate(chunks, start=first_chunk):
        absent = [c for c in [*numeric, *categorical] if c not in chunk.columns]
        if absent:
            raise ValueError(f"the current data lacks columns {absent}")
        quota = chunk_quota(monitoring.sample_size, total_rows, position, position + len(chunk))
        position += len(chunk)
        for column in categorical:
            side.counts[column] = side.counts[column].add(_category_counts(chunk[column]), fill_value=0).astype("int64")
        values = {column: _as_numeric(chunk[column]) for column in numeric}
        for column in numeric:
            side.nulls[column] += int(values[column].isna().sum())
        if numeric and quota:
            # Chunk 0 draws exactly what sample_rows(current, n, seed + 1) draws from a single frame.
            state = (
                monitoring.seed + CURRENT_SEED_OFFSET
                if index == 0
                else np.random.RandomState([monitoring.seed + CURRENT_SEED_OFFSET, index])
            )
            picked = pd.DataFrame(values, index=chunk.index)
            side.sample.append(picked if quota >= len(chunk) else picked.sample(n=quota, random_state=state))
        side.rows += len(chunk)
    if position - first_row != side.rows or position > total_rows:
        raise ValueError(f"chunks of {side.rows} rows from row {first_row} do not fit a day of {total_rows} rows")
    return side


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame | CurrentSide,
    numeric: list[str],
    categorical: list[str],
    monitoring: MonitoringConfig,
) -> list[dict]:
    """Drift of every feature between the reference and the current data.

    Categorical features are compared on the category counts of every row of both sides
    (chi-square contingency); numeric features by KS on samples capped to
    ``monitoring.sample_size`` rows (the reference drawn with ``monitoring.seed``, the current
    side with ``seed + 1``, per chunk in proportion to its size, see :func:`current_side`).

    Args:
        reference: reference rows (typically the champion's training data).
        current: the rows being monitored, or their side gathered chunk by chunk.
        numeric: numeric feature columns (KS test).
        categorical: categorical feature columns (chi-square contingency test).
        monitoring: thresholds, sample size and seed.

    Returns:
        One dict per feature, numeric first, in the given order: ``{"feature", "kind"
        ("numeric" | "categorical"), **test statistics, "drifted", "sample_size"}`` where
        ``drifted`` is ``p_value < monitoring.p_value and effect_size > monitoring.min_effect_size``
        and ``sample_size`` is ``{"reference": rows, "current": rows}`` actually compared.
        Null fractions are over every row.
    """
    absent = [c for c in [*numeric, *categorical] if c not in reference.columns]
    if absent:
        raise ValueError(f"the reference data lacks columns {absent}")
    side = (
        current
        if isinstance(current, CurrentSide)
        else current_side([current], len(current), numeric, categorical, monitoring)
    )
    rows = []
    if numeric:
        ref = sample_rows(reference, monitoring.sample_size, monitoring.seed)
        cur = side.sampled(list(numeric))
        for name in numeric:
            stats = numeric_drift(ref[name], cur[name])
            stats["reference_null_fraction"] = _null_fraction(_as_numeric(reference[name]))
            stats["current_null_fraction"] = side.nulls[name] / side.rows if side.rows else 0.0
            rows.append({"feature": name, "kind": "numeric", **_judged(stats, len(ref), len(cur), monitoring)})
    for name in categorical:
        stats = categorical_drift_from_counts(_category_counts(reference[name]), side.counts[name])
        rows.append(
            {
                "feature": name,
                "kind": "categorical",
                **_judged(stats, stats["n_reference"], stats["n_current"], monitoring),
            }
        )
    return rows


def drift_summary(rows: list[dict], monitoring: MonitoringConfig) -> dict:
    """Dataset-level verdict from the per-feature rows of :func:`feature_drift`.

    Returns:
        ``{"n_features", "drifted_features" (names, in row order), "drift_share",
        "dataset_drift"}``; ``dataset_drift`` is ``drift_share > monitoring.drifted_feature_share``
        (strictly: exactly the threshold share is not dataset drift). No features → share 0.0.
    """
    drifted = [row["feature"] for row in rows if row["drifted"]]
    share = len(drifted) / len(rows) if rows else 0.0
    return {
        "n_features": len(rows),
        "drifted_features": drifted,
        "drift_share": share,
        "dataset_drift": bool(share > monitoring.drifted_feature_share),
    }


def _scores(values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype="float64")
    if array.ndim == 2 and array.shape[1] == 2:
        array = array[:, 1]  # predict_proba output: keep the positive class
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D array of positive-class probabilities, got shape {array.shape}")
    return array


def prediction_drift(reference_scores: ArrayLike, current_scores: ArrayLike, monitoring: MonitoringConfig) -> dict:
    """KS test between the model's positive-class probabilities on the reference and current data.

    Args:
        reference_scores: probabilities on the reference rows (1-D, or ``predict_proba``'s 2 columns).
        current_scores: probabilities on the current rows.
        monitoring: thresholds, sample size and seed (capped exactly like :func:`feature_drift`).

    Returns:
        The keys of :func:`numeric_drift` plus ``"drifted"`` (same p-value AND effect-size rule)
        and ``"sample_size"``.
    """
    ref = pd.DataFrame({"score": _scores(reference_scores)})
    cur = pd.DataFrame({"score": _scores(current_scores)})
    ref, cur = _capped_pair(ref, cur, monitoring.sample_size, monitoring.seed)
    return _judged(numeric_drift(ref["score"], cur["score"]), len(ref), len(cur), monitoring)


def target_drift(reference_labels: ArrayLike, current_labels: ArrayLike, monitoring: MonitoringConfig) -> dict:
    """Chi-square contingency test on the label table (reference vs current counts of each class).

    Args:
        reference_labels: labels of the reference rows (e.g. 0/1 from ``label_vector``).
        current_labels: matured labels of the monitoring window; may be empty.
        monitoring: thresholds, sample size and seed (capped exactly like :func:`feature_drift`).

    Returns:
        The keys of :func:`categorical_drift` plus ``"drifted"`` (p-value AND Cramér's V rule)
        and ``"sample_size"``. No current label → p-value 1.0, ``n_current`` 0, not drifted.
    """
    ref = pd.DataFrame({"label": pd.Series(np.asarray(reference_labels), dtype=object)})
    cur = pd.DataFrame({"label": pd.Series(np.asarray(current_labels), dtype=object)})
    ref, cur = _capped_pair(ref, cur, monitoring.sample_size, monitoring.seed)
    return _judged(categorical_drift(ref["label"], cur["label"]), len(ref), len(cur), monitoring)


# --- realized performance and the decision -----------------------------------------------------------------------


def realized_performance(
    y_true: ArrayLike,
    scores: ArrayLike,
    reference_roc_auc: float | None,
    monitoring: MonitoringConfig,
) -> dict:
    """ROC-AUC on matured labels, compared with the floor and with the champion's holdout ROC-AUC.

    ROC-AUC values and the drop are rounded to :data:`DECIMALS` decimals before comparison,
    so a drop exactly equal to ``max_roc_auc_drop`` (in decimal) does not raise an alarm.

    Args:
        y_true: matured 0/1 labels.
        scores: the model's positive-class probabilities for the same rows.
        reference_roc_auc: the champion's holdout ROC-AUC, or None when unknown.
        monitoring: ``min_labels``, ``min_roc_auc`` and ``max_roc_auc_drop``.

    Returns:
        ``{"n_labels", "realized_roc_auc", "reference_roc_auc", "drop", "alarm", "reasons"}``.
        ``realized_roc_auc`` is None with fewer than ``min_labels`` labels or a single class;
        ``drop`` is reference − realized, None when either is None. ``alarm`` is realized <
        ``min_roc_auc`` or drop > ``max_roc_auc_drop`` (False when realized is None).
        ``reasons`` explains the alarm, or why performance was not judged; empty otherwise.
    """
    labels = np.asarray(y_true).astype("int64").ravel()
    probabilities = _scores(scores)
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} scores")
    n_labels = len(labels)
    reasons: list[str] = []
    realized: float | None = None
    if n_labels < monitoring.min_labels:
        reasons.append(
            f"performance not judged: {n_labels} matured labels, fewer than min_labels {monitoring.min_labels}"
        )
    elif len(np.unique(labels)) < 2:
        reasons.append(f"performance not judged: all {n_labels} matured labels are {int(labels[0])}, ROC-AUC undefined")
    else:
        realized = round(float(roc_auc_score(labels, probabilities)), DECIMALS)

    reference = None if reference_roc_auc is None else float(reference_roc_auc)
    drop = None if realized is None or reference is None else round(reference - realized, DECIMALS)
    alarm = False
    if realized is not None:
        if realized < monitoring.min_roc_auc:
            alarm = True
            reasons.append(
                f"realized ROC-AUC {realized:.4f} is below min_roc_auc {monitoring.min_roc_auc:g} ({n_labels} labels)"
            )
        if drop is not None and drop > monitoring.max_roc_auc_drop:
            alarm = True
            reasons.append(
                f"realized ROC-AUC {realized:.4f} is {drop:.4f} below the champion's {reference:.4f}"
                f" (max_roc_auc_drop {monitoring.max_roc_auc_drop:g})"
            )
    return {
        "n_labels": n_labels,
        "realized_roc_auc": realized,
        "reference_roc_auc": reference,
        "drop": drop,
        "alarm": alarm,
        "reasons": reasons,
    }


def decide(summary: dict, prediction: dict, performance: dict) -> dict:
    """Whether monitoring asks for retraining.

    Dataset drift or a performance alarm triggers retraining. Prediction drift does not on
    its own (the model may simply be seeing a different mix of the customers it already
    handles well), nor do a few drifted features below the dataset-drift share: both are
    recorded as notes, for people to watch.

    Args:
        summary: :func:`drift_summary` output.
        prediction: :func:`prediction_drift` output.
        performance: :func:`realized_performance` output.

    Returns:
        ``{"decision": "retrain" | "none", "reasons": [what triggered retraining],
        "notes": [non-triggering observations]}``.
    """
    reasons: list[str] = []
    notes: list[str] = []
    drifted = summary["drifted_features"]
    if drifted:
        text = (
            f"{len(drifted)} of {summary['n_features']} features drifted"
            f" (share {summary['drift_share']:.3f}): {', '.join(drifted)}"
        )
        if summary["dataset_drift"]:
            reasons.append(f"dataset drift: {text}")
        else:
            notes.append(f"{text}; below the dataset-drift share")
    if prediction.get("drifted"):
        notes.append(
            f"prediction drift: KS {prediction['statistic']:.3f}, p-value {prediction['p_value']:.3g}"
            " (not a retraining trigger on its own)"
        )
    # realized_performance's reasons explain an alarm, or why performance could not be judged.
    (reasons if performance["alarm"] else notes).extend(performance["reasons"])
    return {
        "decision": "retrain" if summary["dataset_drift"] or performance["alarm"] else "none",
        "reasons": reasons,
        "notes": notes,
    }


# --- HTML report -------------------------------------------------------------------------------------------------


def drift_report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    path: Path,
    sample_size: int,
    seed: int,
) -> Path:
    """Write an Evidently (0.7) data-drift report comparing capped samples of both sides.

    The samples are drawn as in :func:`feature_drift` (same ``sample_size`` and ``seed`` give
    the same rows). Numeric columns use Evidently's KS test, hence the same p-values as
    churnops; categoricals use Jensen–Shannon distance, because Evidently's ``chisquare`` is a
    goodness-of-fit test that divides by zero on a category new in the current data. Evidently
    judges drift by its own rules (p-value or distance alone, dataset drift above half the
    columns); a banner at the top of the page says that churnops' decisions use its own statistics.

    Args:
        reference: reference rows.
        current: current rows.
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        path: the HTML file to write (parent folders are created).
        sample_size: rows per side at most.
        seed: seed of the reference sample (current: ``seed + 1``).

    Returns:
        ``path``. When a side has no rows, a short page saying so is written instead, since
        Evidently refuses empty data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(numeric) + list(categorical)
    ref, cur = _capped_pair(reference, current, sample_size, seed, columns)
    ref, cur = _evidently_frame(ref, numeric, categorical), _evidently_frame(cur, numeric, categorical)

    if ref.empty or cur.empty:
        body = (
            f"<p>No drift report: the reference has {len(ref)} rows and the current data {len(cur)} rows.</p>"
            f"<p>Features: {html.escape(', '.join(columns))}</p>"
        )
        path.write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>churnops drift</title></head>"
            f"<body>{body}</body></html>",
            encoding="utf-8",
        )
        return path

    # Evidently raises on a numeric column without any value on one side; such a column is
    # listed in the banner instead (churnops' own test reports it with p-value 1).
    empty = [c for c in numeric if ref[c].isna().all() or cur[c].isna().all()]
    kept_numeric = [c for c in numeric if c not in empty]

    # Importing evidently takes seconds and pulls its UI stack (which emits deprecation warnings).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=kept_numeric, categorical_columns=list(categorical))
    kept = kept_numeric + list(categorical)
    report = Report([DataDriftPreset(columns=kept, num_method="ks", cat_method="jensenshannon")])
    snapshot = report.run(
        Dataset.from_pandas(cur[kept], data_definition=definition),
        Dataset.from_pandas(ref[kept], data_definition=definition),
    )
    # Snapshot.save_html silently writes nothing when given a Path (it only handles str),
    # so the page is rendered and written here.
    page = snapshot.get_html_str(as_iframe=False)
    path.write_text(_with_banner(page, len(ref), len(cur), empty), encoding="utf-8")
    return path


def _evidently_frame(frame: pd.DataFrame, numeric: Iterable[str], categorical: Iterable[str]) -> pd.DataFrame:
    # Give Evidently the values churnops tests: parsed numbers, and categories as text with
    # MISSING for nulls (Evidently would otherwise drop missing categoricals).
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[column] = _as_numeric(frame[column])
    for column in categorical:
        # Normalise the distinct values, not every row; code -1 (null) picks the trailing MISSING.
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        labels = np.array([_category(value) for value in uniques] + [MISSING], dtype=object)
        out[column] = labels[codes]
    return out.reset_index(drop=True)


def _with_banner(page: str, n_reference: int, n_current: int, empty: list[str]) -> str:
    text = (
        f"churnops drift report on seeded samples of {n_reference} reference and {n_current} current rows. "
        "Evidently's verdicts below are illustrative: churnops decides from its own tests "
        "(KS / chi-square contingency with p-value and effect-size thresholds)."
    )
    if empty:
        text += f" Not shown (no value on one side): {', '.join(empty)}."
    banner = (
        f'<div style="padding:8px 16px;background:#fff3cd;font-family:sans-serif;font-size:14px">'
        f"{html.escape(text)}</div>"
    )
    head, sep, rest = page.partition("<body>")
    if not sep:
        return banner + page
    return head + sep + banner + rest
