"""The decision threshold: chosen by a rule on out-of-fold scores, and the business metrics at it.

A row is predicted positive when its score is at least the threshold. The threshold is always
one of the scores it was chosen on, so it is reproduced exactly by comparing scores with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn import metrics as skm

from churnops.config import ThresholdConfig

__all__ = ["choose_threshold", "classification_report_at", "threshold_metrics"]


def choose_threshold(y_true: ArrayLike, scores: ArrayLike, rule: ThresholdConfig) -> float:
    """The decision threshold ``rule`` picks among the scores.

    Every distinct score is a candidate (the rows scored at least that high are predicted
    positive), with its confusion counts from scikit-learn's ``confusion_matrix_at_thresholds``.
    ``max_f1`` takes the highest F1 (ties: the lowest threshold, the larger recall);
    ``cost`` the lowest ``cost_false_negative`` × FN + ``cost_false_positive`` × FP (ties: the
    highest threshold, the fewer customers flagged).

    Args:
        y_true: 0/1 labels (out-of-fold: of rows the scoring models did not see).
        scores: positive-class probabilities for the same rows.
        rule: the rule and its costs.

    Returns:
        The threshold, one of ``scores``.

    Raises:
        ValueError: the labels hold a single class, or the lengths differ.
    """
    y = np.asarray(y_true).astype(int).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if len(np.unique(y)) < 2:
        raise ValueError("a threshold needs both classes among the labels")
    _, fps, fns, tps, thresholds = skm.confusion_matrix_at_thresholds(y, s)
    # thresholds decrease: argmax/argmin pick the first, i.e. the highest, of equal candidates.
    if rule.rule == "max_f1":
        f1 = 2 * tps / (2 * tps + fps + fns)
        best = len(f1) - 1 - int(np.argmax(f1[::-1]))  # the last of the maxima: the lowest threshold
    else:
        cost = rule.cost_false_negative * fns + rule.cost_false_positive * fps
        best = int(np.argmin(cost))
    return float(thresholds[best])


def threshold_metrics(y_true: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, Any]:
    """Precision, recall, F1 and the confusion counts at ``threshold``.

    Args:
        y_true: 0/1 labels.
        scores: positive-class probabilities.
        threshold: rows scored at least this are predicted positive.

    Returns:
        ``{"threshold", "precision", "recall", "f1", "tn", "fp", "fn", "tp"}`` (the counts as ints;
        precision is 0 when no row is predicted positive).
    """
    # Counted directly rather than through scikit-learn's metrics, which validate and
    # re-encode the labels on every call (seconds on a monitoring window of millions of
    # labels); the formulas are scikit-learn's, so the values are the same to the bit.
    y = np.asarray(y_true).ravel()
    positive = (y if y.dtype.kind in "biu" else y.astype(int)) == 1
    flagged = np.asarray(scores, dtype=float).ravel() >= threshold
    if len(positive) != len(flagged):
        raise ValueError(f"{len(positive)} labels but {len(flagged)} scores")
    tp = int(np.count_nonzero(positive & flagged))
    predicted, actual = int(np.count_nonzero(flagged)), int(np.count_nonzero(positive))
    fp, fn = predicted - tp, actual - tp
    return {
        "threshold": float(threshold),
        "precision": tp / predicted if predicted else 0.0,
        "recall": tp / actual if actual else 0.0,
        # scikit-learn's F-beta from the counts: (1 + β²)·tp / (β²·(tp + fn) + (tp + fp)), here β = 1
        "f1": 2.0 * tp / (actual + predicted) if actual + predicted else 0.0,
        "tn": len(positive) - tp - fp - fn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }


def classification_report_at(
    y_true: ArrayLike, scores: ArrayLike, threshold: float, names: tuple[str, str] = ("negative", "positive")
) -> tuple[str, dict[str, Any]]:
    """scikit-learn's classification report of the predictions at ``threshold``, as text and as a dict.

    Args:
        y_true: 0/1 labels.
        scores: positive-class probabilities.
        threshold: rows scored at least this are predicted positive.
        names: the classes' names, negative first.

    Returns:
        The report's text and its dict (``output_dict=True``).
    """
    y = np.asarray(y_true).astype(int).ravel()
    predicted = (np.asarray(scores, dtype=float).ravel() >= threshold).astype(int)
    kwargs: dict[str, Any] = {"labels": [0, 1], "target_names": list(names), "zero_division": 0}
    text = skm.classification_report(y, predicted, digits=4, **kwargs)
    return str(text), dict(skm.classification_report(y, predicted, output_dict=True, **kwargs))
