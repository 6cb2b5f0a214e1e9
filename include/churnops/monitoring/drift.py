"""The drift tests of daily monitoring: feature, prediction and target drift.

Pure computations on frames, arrays and gathered sides (:mod:`churnops.monitoring.sampling`):
no files, no MLflow, no Airflow. The drift rule is the one declared in
:class:`~churnops.config.MonitoringConfig`: a test flags drift only when its p-value is below
``p_value`` AND its effect size exceeds ``min_effect_size``. The p-value alone is not enough,
because with tens of thousands of rows every negligible shift is "significant"; the effect
size alone is not enough, because on a handful of rows large differences arise by chance.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import chi2_contingency, ks_2samp

from churnops.config import MonitoringConfig
from churnops.features import MISSING
from churnops.monitoring.sampling import (
    CurrentSide,
    as_numeric,
    capped_pair,
    category_counts,
    current_side,
    null_fraction,
    sample_rows,
)

__all__ = [
    "as_scores",
    "categorical_drift",
    "categorical_drift_from_counts",
    "drift_rule",
    "drift_summary",
    "feature_drift",
    "is_drifted",
    "numeric_drift",
    "prediction_drift",
    "target_drift",
]


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
    ref = as_numeric(reference)
    cur = as_numeric(current)
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
        "reference_null_fraction": null_fraction(ref),
        "current_null_fraction": null_fraction(cur),
        "n_reference": len(ref_values),
        "n_current": len(cur_values),
    }


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
    return categorical_drift_from_counts(category_counts(reference), category_counts(current))


def categorical_drift_from_counts(reference_counts: pd.Series, current_counts: pd.Series) -> dict:
    """:func:`categorical_drift` from the two sides' category counts (which add up across chunks and shards).

    The effect size is Cramér's V of the table with both rows weighted equally,
    ``sqrt(½ Σ_j (p_j − q_j)² / (p_j + q_j))`` for the two sides' category shares p and q:
    exactly Cramér's V when the two sides have the same number of rows, and otherwise the
    same measure of how far apart the distributions are, whatever the two sizes. Plain
    Cramér's V of an unbalanced table shrinks with the larger side (a million current rows
    against a few thousand reference rows would divide it by ~15), so a shift would stop
    counting as drift just because the day is large.

    Args:
        reference_counts: rows per category on the reference side (:func:`category_counts`).
        current_counts: rows per category on the current side.

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


def drift_rule(monitoring: MonitoringConfig) -> dict:
    """The thresholds a verdict was judged by, for the records that carry the verdict.

    Args:
        monitoring: the settings that hold them.

    Returns:
        ``{"p_value", "min_effect_size", "drifted_feature_share"}``: a test flags drift when its
        p-value is below ``p_value`` and its effect size exceeds ``min_effect_size``; the dataset
        drifts when the share of drifted features exceeds ``drifted_feature_share``.
    """
    return {
        "p_value": monitoring.p_value,
        "min_effect_size": monitoring.min_effect_size,
        "drifted_feature_share": monitoring.drifted_feature_share,
    }


def is_drifted(stats: dict, monitoring: MonitoringConfig) -> bool:
    """The drift rule: ``p_value`` below ``monitoring.p_value``, ``effect_size`` above ``min_effect_size``.

    Args:
        stats: a test's result (:func:`numeric_drift`, :func:`categorical_drift`).
        monitoring: the thresholds.

    Returns:
        Whether the test flags drift.
    """
    return bool(stats["p_value"] < monitoring.p_value and stats["effect_size"] > monitoring.min_effect_size)


def _judged(stats: dict, n_reference: int, n_current: int, monitoring: MonitoringConfig) -> dict:
    # sample_size records the rows each side contributed after the cap, for the report.
    sample_size = {"reference": n_reference, "current": n_current}
    return {**stats, "drifted": is_drifted(stats, monitoring), "sample_size": sample_size}


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

    Raises:
        ValueError: a side lacks a feature column.
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
            stats["reference_null_fraction"] = null_fraction(as_numeric(reference[name]))
            stats["current_null_fraction"] = side.nulls[name] / side.rows if side.rows else 0.0
            rows.append({"feature": name, "kind": "numeric", **_judged(stats, len(ref), len(cur), monitoring)})
    for name in categorical:
        stats = categorical_drift_from_counts(category_counts(reference[name]), side.counts[name])
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

    Args:
        rows: :func:`feature_drift`'s rows.
        monitoring: ``drifted_feature_share``.

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


def as_scores(values: ArrayLike) -> np.ndarray:
    """Positive-class probabilities as a 1-D float64 array (of ``predict_proba``'s two columns, the second).

    Raises:
        ValueError: ``values`` is neither 1-D nor two columns.
    """
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
    ref = pd.DataFrame({"score": as_scores(reference_scores)})
    cur = pd.DataFrame({"score": as_scores(current_scores)})
    ref, cur = capped_pair(ref, cur, monitoring.sample_size, monitoring.seed)
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
    ref = pd.DataFrame({"label": np.asarray(reference_labels).ravel()})
    cur = pd.DataFrame({"label": np.asarray(current_labels).ravel()})
    ref, cur = capped_pair(ref, cur, monitoring.sample_size, monitoring.seed)
    # Labels become objects (categories) only once capped: a window of millions stays one byte a label.
    test = categorical_drift(ref["label"].astype(object), cur["label"].astype(object))
    return _judged(test, len(ref), len(cur), monitoring)
