"""Estimated performance before labels: the ROC-AUC, precision, recall and F1 the day's scores
promise if they are calibrated (confidence-based performance estimation, CBPE).

A calibrated score ``p`` says the row is a churner with probability ``p``. Each row then
counts as a fractional positive of weight ``p`` and a fractional negative of weight ``1 − p``,
and the expected confusion counts at any threshold are sums of those weights:

* ROC-AUC: the Mann-Whitney statistic of the weighted rows, exactly what
  ``sklearn.metrics.roc_auc_score`` gives on every row written twice, once labelled 1 with
  weight ``p`` and once labelled 0 with weight ``1 − p`` (equal scores count one half, so a
  row's two halves are one tie between them: an O(1/rows) pull towards 0.5);
* at the version's threshold ``t``: expected TP = Σ p over p ≥ t, FP = Σ (1 − p) over p ≥ t,
  FN = Σ p over p < t, and precision, recall and F1 from those.

The day's score column is read from its predictions a row group at a time into a
:class:`ScoreSummary`: :data:`BINS` equal-width score bins (count and Σ p of each) and the
exact sums at the threshold, so the memory does not depend on the day's size. Scores in one
bin count as tied: exact when they are equal (isotonic calibration gives steps), otherwise
off by at most half the weight of the pairs within a bin (bins are 1e-4 wide).

The band is a parametric bootstrap over the day's scores: :data:`RESAMPLES` times, every
row's outcome is drawn from its score (a binomial draw per bin of :data:`BAND_BINS`, seeded by
``monitoring.seed``) and the ROC-AUC of those outcomes computed; the band holds the central
:data:`BAND` of them, where the day's realized ROC-AUC should land when the scores are
calibrated. It does not widen for a change in who churns: that is outside what scores can tell.

It cannot see concept drift: when P(churn | features) changes, the scores do not, so the
estimate stays put while the realized ROC-AUC falls. It tracks covariate drift (a changed
customer mix), which changes the scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from churnops.config import ChurnopsConfig, MonitoringConfig
from churnops.data import partition
from churnops.monitoring.drift import as_scores
from churnops.monitoring.outcomes import DECIMALS, roc_auc
from churnops.monitoring.scoring import SCORE_COLUMN
from churnops.tracking import version_threshold

__all__ = [
    "BAND",
    "BAND_BINS",
    "BINS",
    "ECE_TAG",
    "RESAMPLES",
    "ScoreSummary",
    "day_estimate",
    "estimate_errors",
    "estimated_auc",
    "estimated_performance",
    "read_score_summary",
]

BINS = 10_000
"""Equal-width score bins over [0, 1] (a score of 1 falls in the last)."""

RESAMPLES = 200
"""Bootstrap draws behind the band."""

BAND_BINS = 1_000
"""The bootstrap draws outcomes over this many bins (each :data:`BINS` // ``BAND_BINS`` fine bins):
the band's spread changes by far less than its width, and 200 draws stay a few milliseconds."""

BAND = 0.95
"""The central share of the bootstrap draws the band holds."""

ECE_TAG = "churnops.test_ece"
"""The version tag holding its holdout expected calibration error (logged at training)."""


@dataclass
class ScoreSummary:
    """The day's scores as far as the estimate needs them, accumulated chunk by chunk.

    Attributes:
        threshold: the decision threshold (a score at least this is predicted positive).
        counts: rows per score bin (:data:`BINS` bins).
        positive: Σ p per score bin (the expected positives).
        above_positive: Σ p over scores ≥ ``threshold`` (expected true positives).
        above_rows: rows scored ≥ ``threshold``.
        below_positive: Σ p over scores < ``threshold`` (expected false negatives).
    """

    threshold: float = 0.5
    counts: np.ndarray = field(default_factory=lambda: np.zeros(BINS, dtype=np.int64))
    positive: np.ndarray = field(default_factory=lambda: np.zeros(BINS, dtype=np.float64))
    above_positive: float = 0.0
    above_rows: int = 0
    below_positive: float = 0.0

    @property
    def rows(self) -> int:
        """Rows added so far."""
        return int(self.counts.sum())

    def add(self, scores: ArrayLike) -> ScoreSummary:
        """Add a chunk of scores (positive-class probabilities in [0, 1]).

        Args:
            scores: the chunk's scores.

        Returns:
            ``self``.

        Raises:
            ValueError: a score is outside [0, 1] or NaN.
        """
        p = as_scores(scores)
        if p.size and not (p.min() >= 0.0 and p.max() <= 1.0):  # NaN fails both
            raise ValueError("scores must be probabilities in [0, 1]")
        bins = np.minimum((p * BINS).astype(np.int64), BINS - 1)
        self.counts += np.bincount(bins, minlength=BINS)
        self.positive += np.bincount(bins, weights=p, minlength=BINS)
        above = p >= self.threshold
        self.above_positive += float(p[above].sum())
        self.above_rows += int(above.sum())
        self.below_positive += float(p[~above].sum())
        return self


def read_score_summary(predictions: Path | str, threshold: float, chunk_rows: int) -> ScoreSummary:
    """The :class:`ScoreSummary` of a predictions file, reading only its score column, a row group at a
    time and adding it ``chunk_rows`` at a time (the day's predictions are written in row groups of
    ``monitoring.chunk_rows``).

    Args:
        predictions: the day's ``predictions.parquet``.
        threshold: the scoring version's decision threshold.
        chunk_rows: rows read at a time (``monitoring.chunk_rows``).

    Returns:
        The summary.
    """
    import pyarrow.parquet as pq

    summary = ScoreSummary(threshold=float(threshold))
    file = pq.ParquetFile(predictions)
    # Row group by row group: pyarrow's iter_batches keeps what it has read until the iterator
    # ends, so its memory grows with the day; a row group read here is released once added.
    for group in range(file.num_row_groups):
        scores = file.read_row_group(group, columns=[SCORE_COLUMN]).column(0)
        for start in range(0, len(scores), chunk_rows):
            summary.add(scores.slice(start, chunk_rows).to_numpy(zero_copy_only=False))
        del scores
    return summary


def _auc(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Mann-Whitney ROC-AUC of weighted rows in ascending score bins (last axis); ties within a bin count one half.

    Equivalently, the trapezoid rule under the expected ROC curve. NaN where either side weighs 0.
    """
    below = np.cumsum(negative, axis=-1) - negative  # negative weight in lower bins
    pairs = (positive * (below + 0.5 * negative)).sum(axis=-1)
    total = positive.sum(axis=-1) * negative.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, pairs / np.where(total > 0, total, 1.0), np.nan)


def estimated_auc(summary: ScoreSummary) -> float | None:
    """The expected ROC-AUC of the summarised scores if they are calibrated (None without both weights)."""
    value = float(_auc(summary.positive, summary.counts - summary.positive))
    return None if np.isnan(value) else value


def _band(summary: ScoreSummary, auc: float, seed: int) -> tuple[float | None, float | None]:
    # Outcomes drawn from the scores, bin by bin: the spread of the ROC-AUC the day's labels would give.
    # Drawn over BAND_BINS coarser bins (the draws' cost), as deviations from those bins' own expected
    # ROC-AUC, so the coarser ties do not shift the band off the estimate.
    width = BINS // BAND_BINS
    counts = summary.counts.reshape(BAND_BINS, width).sum(axis=1)
    positive = summary.positive.reshape(BAND_BINS, width).sum(axis=1)
    held = counts > 0
    counts, positive = counts[held], positive[held]
    centre = _auc(positive, counts - positive)
    rng = np.random.default_rng([seed, summary.rows])
    drawn = rng.binomial(counts, np.clip(positive / counts, 0.0, 1.0), size=(RESAMPLES, len(counts)))
    draws = _auc(drawn.astype(np.float64), (counts - drawn).astype(np.float64))
    draws = draws[~np.isnan(draws)]
    if len(draws) == 0:
        return None, None
    tail = 100 * (1 - BAND) / 2
    low, high = auc + np.percentile(draws - centre, [tail, 100 - tail])
    return float(max(0.0, low)), float(min(1.0, high))


def _at_threshold(summary: ScoreSummary) -> dict[str, float | None]:
    tp = summary.above_positive
    fp = summary.above_rows - summary.above_positive
    fn = summary.below_positive
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else None
    return {"estimated_precision": precision, "estimated_recall": recall, "estimated_f1": f1}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def estimated_performance(
    summary: ScoreSummary,
    reference_roc_auc: float | None,
    holdout_ece: float | None,
    monitoring: MonitoringConfig,
) -> dict[str, Any]:
    """The day's estimated performance, whether it can be trusted, and whether it alarms.

    Trusted with at least ``monitoring.min_estimate_rows`` rows and the version's holdout ECE
    (its ``churnops.test_ece`` tag) at most ``monitoring.max_estimate_ece``: the estimate is
    only as good as the scores' calibration. An untrusted estimate never alarms. A trusted one
    alarms when it is more than ``monitoring.max_estimated_roc_auc_drop`` (when set) below the
    version's holdout ROC-AUC; figures are rounded to :data:`~churnops.monitoring.outcomes.DECIMALS`
    decimals first, as the realized ones are.

    Args:
        summary: the day's :class:`ScoreSummary` (its threshold is the version's).
        reference_roc_auc: the version's holdout ROC-AUC, or None when unknown.
        holdout_ece: the version's holdout ECE, or None when it has none.
        monitoring: ``min_estimate_rows``, ``max_estimate_ece``, ``max_estimated_roc_auc_drop``, ``seed``.

    Returns:
        ``{"estimated_roc_auc", "estimated_roc_auc_low", "estimated_roc_auc_high",
        "estimated_precision", "estimated_recall", "estimated_f1", "threshold", "rows",
        "reference_roc_auc", "drop", "holdout_ece", "trusted", "alarm", "reasons"}``; a figure
        is None when undefined (no rows, or every score 0 or 1). ``drop`` is reference −
        estimated. ``reasons`` says why the estimate is not trusted, or why it alarms.
    """
    auc = _rounded(estimated_auc(summary))
    low, high = _band(summary, auc, monitoring.seed) if auc is not None else (None, None)
    reference = None if reference_roc_auc is None else float(reference_roc_auc)
    drop = None if auc is None or reference is None else round(reference - auc, DECIMALS)
    reasons: list[str] = []
    if summary.rows < monitoring.min_estimate_rows:
        reasons.append(
            f"estimate not trusted: {summary.rows} rows, fewer than min_estimate_rows {monitoring.min_estimate_rows}"
        )
    if holdout_ece is None:
        reasons.append("estimate not trusted: the scoring version has no holdout ECE (tag churnops.test_ece)")
    elif holdout_ece > monitoring.max_estimate_ece:
        reasons.append(
            f"estimate not trusted: the scoring version's holdout ECE {holdout_ece:.4f} is above"
            f" max_estimate_ece {monitoring.max_estimate_ece:g} (its scores are not calibrated enough)"
        )
    if auc is None:
        reasons.append("estimate not trusted: ROC-AUC undefined (no rows, or every score is 0 or 1)")
    trusted = not reasons
    limit = monitoring.max_estimated_roc_auc_drop
    alarm = trusted and limit is not None and drop is not None and drop > limit
    if alarm:
        reasons.append(
            f"estimated ROC-AUC {auc:.4f} (band {low:.4f}-{high:.4f}, no labels needed) is {drop:.4f} below"
            f" the champion's {reference:.4f} (max_estimated_roc_auc_drop {limit:g})"
        )
    return {
        "estimated_roc_auc": auc,
        "estimated_roc_auc_low": _rounded(low),
        "estimated_roc_auc_high": _rounded(high),
        **{k: _rounded(v) for k, v in _at_threshold(summary).items()},
        "threshold": float(summary.threshold),
        "rows": summary.rows,
        "reference_roc_auc": reference,
        "drop": drop,
        "holdout_ece": None if holdout_ece is None else float(holdout_ece),
        "trusted": trusted,
        "alarm": alarm,
        "reasons": reasons,
    }


def day_estimate(config: ChurnopsConfig, day: date, scored: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """The day's performance estimated from its scores alone, read a chunk at a time from its predictions.

    Args:
        config: the monitoring settings.
        day: the monitored day.
        scored: ``merge_shards``' result (its ``predictions``; without it, the day's predictions partition).
        tags: the scoring version's tags (holdout ROC-AUC and ECE, threshold).

    Returns:
        :func:`estimated_performance`'s result.
    """
    predictions = scored.get("predictions") or partition("predictions", day) / "predictions.parquet"
    summary = read_score_summary(predictions, version_threshold(tags), config.monitoring.chunk_rows)
    holdout, ece = tags.get("churnops.test_roc_auc"), tags.get(ECE_TAG)
    return estimated_performance(
        summary, float(holdout) if holdout else None, float(ece) if ece else None, config.monitoring
    )


def _reported_estimate(day: date) -> dict[str, Any] | None:
    # The estimate as the day's report holds it (the report is what people read and history draws).
    path = partition("reports", day) / "drift_report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("estimated_roc_auc") is None:
        return None
    return report


def estimate_errors(
    labels: ArrayLike, scores: ArrayLike, label_dates: ArrayLike, monitoring: MonitoringConfig
) -> list[dict[str, Any]]:
    """The estimate's track record: estimated − realized ROC-AUC for each label day whose report holds an estimate.

    A label day's realized ROC-AUC is judged as the window's is: at least ``min_labels`` labels
    of both classes, by :func:`~churnops.monitoring.outcomes.roc_auc`. The rows are grouped by
    the day's codes (``matured_outcomes`` gives the days as a categorical), with no per-row text.

    Args:
        labels: matured 0/1 labels.
        scores: the scores given for the same rows.
        label_dates: each row's label day (``YYYY-MM-DD``; a categorical or plain values), the day
            it was scored and estimated.
        monitoring: ``min_labels``.

    Returns:
        ``[{"day", "estimated_roc_auc", "realized_roc_auc", "error", "n_labels", "trusted"}]``, by day.
    """
    import pandas as pd

    y = np.asarray(labels).ravel()
    p = as_scores(scores)
    days = pd.Categorical(label_dates)
    codes = days.codes
    errors = []
    for code in np.argsort(np.asarray(days.categories, dtype=str)):
        day = str(days.categories[code])
        rows = codes == code
        judged = y[rows]
        if len(judged) < monitoring.min_labels or len(np.unique(judged)) < 2:
            continue
        report = _reported_estimate(date.fromisoformat(day))
        if report is None:
            continue
        estimated = float(report["estimated_roc_auc"])
        realized = round(roc_auc(judged, p[rows]), DECIMALS)
        errors.append(
            {
                "day": day,
                "estimated_roc_auc": estimated,
                "realized_roc_auc": realized,
                "error": round(estimated - realized, DECIMALS),
                "n_labels": len(judged),
                "trusted": bool(report.get("estimate_trusted", False)),
            }
        )
    return errors
