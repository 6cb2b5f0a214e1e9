"""Holdout metrics, diagnostic figures and the choice among candidate models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline

__all__ = [
    "choose_best",
    "classification_metrics",
    "comparison_table",
    "diagnostic_figures",
    "expected_calibration_error",
    "feature_importance",
]


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean |observed rate − mean predicted probability| over equal-width bins.

    Args:
        y_true: 0/1 labels.
        proba: positive-class probabilities.
        n_bins: bins over [0, 1] (a probability of 1 falls in the last).

    Returns:
        The expected calibration error, each bin weighted by its share of the rows.
    """
    y_true, proba = np.asarray(y_true, dtype=float), np.asarray(proba, dtype=float)
    bins = np.minimum((proba * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += mask.sum() * abs(y_true[mask].mean() - proba[mask].mean())
    return float(total / len(proba))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Ranking, threshold and probability-quality metrics of positive-class probabilities.

    Args:
        y_true: 0/1 labels.
        proba: positive-class probabilities.
        threshold: the probability from which a row is predicted positive (F1, precision, recall, accuracy).

    Returns:
        ``roc_auc``, ``pr_auc``, ``f1``, ``precision``, ``recall``, ``accuracy``, ``log_loss``,
        ``brier`` and ``ece``.
    """
    y_true = np.asarray(y_true)
    predicted = (np.asarray(proba) >= threshold).astype(int)
    return {
        "roc_auc": float(skm.roc_auc_score(y_true, proba)),
        "pr_auc": float(skm.average_precision_score(y_true, proba)),
        "f1": float(skm.f1_score(y_true, predicted, zero_division=0)),
        "precision": float(skm.precision_score(y_true, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y_true, predicted, zero_division=0)),
        "accuracy": float(skm.accuracy_score(y_true, predicted)),
        "log_loss": float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y_true, proba)),
        "ece": expected_calibration_error(y_true, proba),
    }


def feature_importance(model: Pipeline) -> pd.Series:
    """Importance per encoded feature: |coefficient| for linear models, else the model's own.

    Returns:
        The importances by encoded feature name, largest first.

    Raises:
        TypeError: the estimator has neither ``feature_importances_`` nor ``coef_``.
    """
    estimator = model.named_steps["model"]
    names = model.named_steps["features"].get_feature_names_out()
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=float)
    elif hasattr(estimator, "coef_"):
        values = np.abs(np.ravel(estimator.coef_))
    else:
        raise TypeError(f"{type(estimator).__name__} exposes no feature importance")
    return pd.Series(values, index=[str(n) for n in names]).sort_values(ascending=False)


def diagnostic_figures(
    y_true: np.ndarray,
    proba: np.ndarray,
    importance: pd.Series,
    title: str,
    threshold: float = 0.5,
    uncalibrated: np.ndarray | None = None,
) -> dict[str, Any]:
    """Matplotlib figures keyed by artifact file name: ROC, PR, confusion, calibration, importance.

    Args:
        y_true: 0/1 holdout labels.
        proba: positive-class probabilities on the holdout.
        importance: :func:`feature_importance` (the top 20 are drawn).
        title: prefix of every figure's title (the family).
        threshold: the decision threshold of the confusion matrix.
        uncalibrated: the estimator's own probabilities when ``proba`` are calibrated ones: drawn
            beside them in the calibration figure.

    Returns:
        The figures by file name (``roc_curve.png``, …); the caller closes them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay

    figures: dict[str, Any] = {}

    def new(name: str) -> Any:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.set_title(f"{title}: {name.split('.')[0].replace('_', ' ')}")
        figures[name] = fig
        return ax

    skm.RocCurveDisplay.from_predictions(y_true, proba, ax=new("roc_curve.png"), plot_chance_level=True)
    skm.PrecisionRecallDisplay.from_predictions(y_true, proba, ax=new("pr_curve.png"), plot_chance_level=True)
    skm.ConfusionMatrixDisplay.from_predictions(
        y_true, (proba >= threshold).astype(int), ax=new("confusion_matrix.png"), colorbar=False
    )
    figures["confusion_matrix.png"].axes[0].set_title(f"{title}: confusion matrix at threshold {threshold:.4f}")
    ax = new("calibration.png")
    CalibrationDisplay.from_predictions(y_true, proba, n_bins=10, ax=ax, name="served")
    if uncalibrated is not None and not np.array_equal(uncalibrated, proba):
        CalibrationDisplay.from_predictions(y_true, uncalibrated, n_bins=10, ax=ax, name="uncalibrated")
    top = importance.head(20)[::-1]
    ax = new("feature_importance.png")
    ax.barh(top.index, top.to_numpy())
    ax.tick_params(axis="y", labelsize=7)
    for fig in figures.values():
        fig.tight_layout()
    return figures


def comparison_table(candidates: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per candidate, best CV ROC-AUC first.

    Args:
        candidates: the ``candidate`` dicts of the trained families.

    Returns:
        Columns ``family``, ``cv_roc_auc_mean``, ``cv_roc_auc_std``, ``test_<metric>`` and
        ``run_id``, in :func:`choose_best`'s order.
    """
    rows = [
        {
            "family": c["family"],
            "cv_roc_auc_mean": c["cv_roc_auc_mean"],
            "cv_roc_auc_std": c["cv_roc_auc_std"],
            **{f"test_{k}": v for k, v in c["test_metrics"].items()},
            "run_id": c["run_id"],
        }
        for c in candidates
    ]
    # Same order as choose_best, so the top row is always the chosen model.
    return pd.DataFrame(rows).sort_values(
        ["cv_roc_auc_mean", "cv_roc_auc_std", "family"], ascending=[False, True, True]
    )


def choose_best(candidates: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The candidate with the highest mean CV ROC-AUC (ties: lower std), and why.

    The holdout is never used to choose: it stays an unbiased estimate of the chosen model.

    Args:
        candidates: the ``candidate`` dicts of the trained families.

    Returns:
        The chosen candidate and a sentence saying why.

    Raises:
        ValueError: there is no candidate.
    """
    if not candidates:
        raise ValueError("no candidate models to choose from")
    ranked = sorted(candidates, key=lambda c: (-c["cv_roc_auc_mean"], c["cv_roc_auc_std"], c["family"]))
    best = ranked[0]
    reason = (
        f"{best['family']} has the highest mean {best['cv_folds']}-fold CV ROC-AUC "
        f"({best['cv_roc_auc_mean']:.4f} ± {best['cv_roc_auc_std']:.4f})"
    )
    if len(ranked) > 1:
        runner = ranked[1]
        reason += f", ahead of {runner['family']} ({runner['cv_roc_auc_mean']:.4f})"
    return best, reason + "; chosen on CV, not on the holdout"
