"""Outcomes: matured labels joined to the scores given for them, and the realized performance.

Labels of day D's customers arrive ``label_delay_days`` later; a monitored day judges the
labels matured within its trailing ``label_window_days`` window.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

from churnops.config import ChurnopsConfig, MonitoringConfig, Source
from churnops.data import coerce_types, iter_source, label_vector, partition
from churnops.modeling import threshold_metrics
from churnops.monitoring.drift import as_scores
from churnops.monitoring.intake import accepted_files, batch_files
from churnops.monitoring.scoring import SCORE_COLUMN
from churnops.monitoring.verdicts import judged_identity, reading

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DECIMALS", "matured_outcomes", "realized_performance"]


DECIMALS = 12
"""ROC-AUC values and drops are rounded to this many decimals before being compared with thresholds.

Without it, 0.80 − 0.75 evaluates to 0.05000000000000004 and a drop exactly equal to
``max_roc_auc_drop`` would raise an alarm; twelve decimals are far below any meaningful
difference in ROC-AUC yet far above float64 rounding error.
"""


def matured_outcomes(config: ChurnopsConfig, days: list[date]) -> pd.DataFrame:
    """Labels joined to the scores predicted for them, over ``days`` (days missing either are skipped).

    An inner join on the id, day by day and chunk by chunk: a day's predictions are held as
    64-bit id hashes and scores (16 bytes a row, never the ids themselves), and each chunk of
    its label files looks its ids up there. Only label files that pass validation are used
    (:func:`accepted_files`: a file with a label outside the two classes is quarantined, never
    read as a negative), each read as the file its verdict judged; a label day whose
    ``monitoring.label_arrival_marker`` is configured and absent has no labels yet.

    Args:
        config: the dataset's id and target, ``monitoring.chunk_rows``.
        days: the label days (e.g. :func:`~churnops.days.matured_days`).

    Returns:
        One row per matched label, in label-file order: ``label`` (0/1), ``score`` and
        ``label_date`` (a categorical of ``days``); ``attrs`` holds ``rejected_label_files``
        and ``labels_without_prediction`` (labels of ids that were never scored, left out).
    """
    import numpy as np
    import pandas as pd

    ds, size = config.dataset, config.monitoring.chunk_rows
    dates = [d.isoformat() for d in days]  # one byte a row, not a string
    parts, rejected, unmatched = [], [], 0
    for label_day in days:
        predictions = partition("predictions", label_day) / "predictions.parquet"
        if not batch_files(partition("labels", label_day)) or not predictions.is_file():
            continue
        label_files, refused = accepted_files(config, "labels", label_day)
        rejected += refused
        key_parts, score_parts = [], []
        for chunk in iter_source(Source(name="predictions", path=predictions), size, [ds.id_column, SCORE_COLUMN]):
            key_parts.append(_id_hashes(chunk[ds.id_column]))
            score_parts.append(chunk[SCORE_COLUMN].to_numpy(dtype="float64"))
        keys, scores = np.concatenate(key_parts), np.concatenate(score_parts)
        order = np.argsort(keys, kind="stable")
        keys, scores = keys[order], scores[order]
        for path in label_files:
            with reading(path, judged_identity("labels", label_day, path), judged_afresh=True):
                for chunk in iter_source(Source(name=path.stem, path=path), size, [ds.id_column, ds.target]):
                    chunk = coerce_types(chunk, ds)
                    chunk = chunk[chunk[ds.id_column].notna()]
                    hashes = _id_hashes(chunk[ds.id_column])
                    at = np.minimum(np.searchsorted(keys, hashes), max(len(keys) - 1, 0))
                    found = keys[at] == hashes if len(keys) else np.zeros(len(hashes), dtype=bool)
                    matched = chunk[found]
                    unmatched += int(len(chunk) - found.sum())
                    parts.append(
                        pd.DataFrame(
                            {
                                "label": label_vector(matched, config).astype("int8"),
                                SCORE_COLUMN: scores[at[found]],
                                "label_date": pd.Categorical([label_day.isoformat()] * len(matched), categories=dates),
                            }
                        )
                    )
    outcomes = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(
            {
                "label": pd.Series(dtype="int8"),
                SCORE_COLUMN: pd.Series(dtype="float64"),
                "label_date": pd.Categorical([], categories=dates),
            }
        )
    )
    outcomes.attrs.update(rejected_label_files=rejected, labels_without_prediction=unmatched)
    return outcomes


def _id_hashes(ids: pd.Series) -> np.ndarray:
    import pandas as pd

    # Ids are text once typed (coerce_types) and as written in predictions; a 64-bit hash stands in for each.
    return pd.util.hash_array(ids.to_numpy(dtype=object))


def realized_performance(
    y_true: ArrayLike,
    scores: ArrayLike,
    reference_roc_auc: float | None,
    monitoring: MonitoringConfig,
    threshold: float = 0.5,
) -> dict:
    """ROC-AUC on matured labels, compared with the floor and with the champion's holdout ROC-AUC,
    and precision, recall and F1 at the scoring version's decision threshold.

    ROC-AUC values, the drop and the threshold metrics are rounded to :data:`DECIMALS` decimals
    before comparison, so a drop exactly equal to ``max_roc_auc_drop`` (in decimal) does not
    raise an alarm, nor a precision exactly at ``min_precision``.

    Args:
        y_true: matured 0/1 labels.
        scores: the model's positive-class probabilities for the same rows.
        reference_roc_auc: the champion's holdout ROC-AUC, or None when unknown.
        monitoring: ``min_labels``, ``min_roc_auc``, ``max_roc_auc_drop`` and the optional
            ``min_precision``, ``min_recall`` and ``min_f1``.
        threshold: the scoring version's decision threshold (a row scored at least this is
            predicted positive).

    Returns:
        ``{"n_labels", "realized_roc_auc", "reference_roc_auc", "drop", "threshold", "precision",
        "recall", "f1", "confusion", "alarm", "reasons"}``. ``realized_roc_auc`` and the metrics at
        the threshold are None with fewer than ``min_labels`` labels or a single class
        (``confusion``, ``{"tn", "fp", "fn", "tp"}``, is then None too); ``drop`` is reference −
        realized, None when either is None. ``alarm`` is realized < ``min_roc_auc``, drop >
        ``max_roc_auc_drop``, or a metric at the threshold below its configured minimum (False
        when not judged). ``reasons`` explains the alarm, or why performance was not judged;
        empty otherwise.
    """

    labels = np.asarray(y_true).astype("int64").ravel()
    probabilities = as_scores(scores)
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} scores")
    n_labels = len(labels)
    reasons: list[str] = []
    realized: float | None = None
    at_threshold: dict | None = None
    if n_labels < monitoring.min_labels:
        reasons.append(
            f"performance not judged: {n_labels} matured labels, fewer than min_labels {monitoring.min_labels}"
        )
    elif len(np.unique(labels)) < 2:
        reasons.append(f"performance not judged: all {n_labels} matured labels are {int(labels[0])}, ROC-AUC undefined")
    else:
        realized = round(float(roc_auc_score(labels, probabilities)), DECIMALS)
        at_threshold = threshold_metrics(labels, probabilities, threshold)
    business = {
        k: None if at_threshold is None else round(at_threshold[k], DECIMALS) for k in ("precision", "recall", "f1")
    }

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
        for name, value in business.items():
            floor = getattr(monitoring, f"min_{name}")
            if floor is not None and value is not None and value < floor:
                alarm = True
                reasons.append(
                    f"realized {name} {value:.4f} at threshold {threshold:.4f} is below min_{name} {floor:g}"
                    f" ({n_labels} labels)"
                )
    return {
        "n_labels": n_labels,
        "realized_roc_auc": realized,
        "reference_roc_auc": reference,
        "drop": drop,
        "threshold": float(threshold),
        **business,
        "confusion": None if at_threshold is None else {k: at_threshold[k] for k in ("tn", "fp", "fn", "tp")},
        "alarm": alarm,
        "reasons": reasons,
    }
