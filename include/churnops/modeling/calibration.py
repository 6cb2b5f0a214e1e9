"""Probability calibration of a fitted model, learnt from its out-of-fold scores.

A model's scores rank customers well before they are probabilities: a booster's 0.3 may be a
20 % churn rate. Calibrated scores make the expected number of churners the sum of the scores,
which the estimated performance of unlabelled days and the business thresholds rely on.

:func:`choose_calibration` fits an isotonic and a sigmoid map on the cross-validation's
out-of-fold probabilities (rows no fold model saw while fitting) and keeps one only when it
lowers the holdout's expected calibration error without costing more than
:data:`MAX_ROC_AUC_DROP` of holdout ROC-AUC. :func:`calibrated_model` puts the chosen map inside
the logged pipeline, so the pyfunc model, monitoring and serving all see calibrated scores.

:class:`ScoreCalibrator` and :class:`CalibratedPipeline` are pickled into registered models by
reference: their import path and fitted attributes stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from churnops.modeling.metrics import expected_calibration_error

__all__ = [
    "CALIBRATION_METHODS",
    "MAX_ROC_AUC_DROP",
    "CalibratedPipeline",
    "CalibrationChoice",
    "ScoreCalibrator",
    "auto_choice",
    "calibrated_model",
    "calibrated_scores",
    "choose_calibration",
]

CALIBRATION_METHODS = ("sigmoid", "isotonic")
"""The maps ``training.calibration: auto`` tries, in the order that wins a tie of holdout ECE
(the sigmoid first: it keeps the scores' order)."""

MAX_ROC_AUC_DROP = 0.002
"""``auto`` keeps a map only if the holdout ROC-AUC falls by at most this (isotonic steps tie
neighbouring scores, which can cost ranking; the sigmoid map keeps the order)."""

_LOGIT_EPS = 1e-12
"""Scores are clipped to [eps, 1 - eps] before the logit, so 0 and 1 map to finite values."""


def _logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, _LOGIT_EPS, 1 - _LOGIT_EPS)
    return np.log(clipped) - np.log1p(-clipped)


class ScoreCalibrator(BaseEstimator):
    """A monotone map of positive-class probabilities to calibrated ones, fitted on scores and 0/1 labels.

    Fitted with scikit-learn and kept as plain arrays and floats, so a pickled model does not
    depend on the fitted internals of a scikit-learn class, and applying it is one NumPy call:

    - ``isotonic``: :class:`~sklearn.isotonic.IsotonicRegression` (``out_of_bounds="clip"``),
      applied as ``np.interp`` between its fitted thresholds (constant beyond both ends, as clip is);
    - ``sigmoid``: a logistic regression on the score's logit (Platt scaling on the log-odds, as
      scikit-learn's sigmoid calibration does on a decision function), applied as
      ``expit(coef * logit(score) + intercept)``.

    Args:
        method: ``isotonic`` or ``sigmoid``.
    """

    def __init__(self, method: str = "isotonic") -> None:
        self.method = method

    def fit(self, scores: ArrayLike, y: ArrayLike) -> ScoreCalibrator:
        """Fit the map on positive-class probabilities and their 0/1 labels.

        Args:
            scores: probabilities of rows the scoring model did not fit on (out-of-fold).
            y: their labels.

        Returns:
            self.

        Raises:
            ValueError: the method is unknown, the lengths differ, or the labels hold one class.
        """
        s = np.asarray(scores, dtype="float64").ravel()
        labels = np.asarray(y).astype(int).ravel()
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}; known: {list(CALIBRATION_METHODS)}")
        if len(s) != len(labels):
            raise ValueError(f"{len(labels)} labels but {len(s)} scores")
        if len(np.unique(labels)) < 2:
            raise ValueError("calibration needs both classes among the labels")
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, labels)
            self.x_thresholds_ = np.asarray(fitted.X_thresholds_, dtype="float64")
            self.y_thresholds_ = np.asarray(fitted.y_thresholds_, dtype="float64")
        else:
            from sklearn.linear_model import LogisticRegression

            # C=inf: no penalty; the one feature's scale is the fitted temperature.
            logistic = LogisticRegression(C=np.inf).fit(_logit(s)[:, None], labels)
            self.coef_ = float(logistic.coef_[0, 0])
            self.intercept_ = float(logistic.intercept_[0])
        return self

    def transform(self, scores: ArrayLike) -> np.ndarray:
        """The calibrated probabilities of ``scores`` (float64, same shape, NaN stays NaN).

        Args:
            scores: positive-class probabilities of the uncalibrated model.

        Returns:
            The calibrated probabilities.
        """
        s = np.asarray(scores, dtype="float64")
        if self.method == "isotonic":
            check_is_fitted(self, "x_thresholds_")
            return np.interp(s, self.x_thresholds_, self.y_thresholds_)
        check_is_fitted(self, "coef_")
        from scipy.special import expit

        return np.asarray(expit(self.coef_ * _logit(s) + self.intercept_), dtype="float64")


def _positive_column(classes: Any) -> int:
    listed = list(classes)
    return listed.index(1) if 1 in listed else len(listed) - 1


class CalibratedPipeline(Pipeline):
    """A churnops model pipeline whose probabilities pass through a fitted :class:`ScoreCalibrator`.

    The steps are the uncalibrated pipeline's (``features`` then ``model``), so whatever reads
    the estimator (feature importance, reasons, compiled serving features) reads it as before;
    ``predict_proba``, ``predict_log_proba`` and ``predict`` answer with the calibrated
    probabilities. ``decision_function`` stays the estimator's margin. Without a calibrator
    (``None``, e.g. a slice ``pipeline[:-1]``), it is a plain pipeline.

    Args:
        steps: the fitted pipeline's steps.
        calibrator: the fitted calibrator of the positive class's probability.
        transform_input: as :class:`~sklearn.pipeline.Pipeline`.
        memory: as :class:`~sklearn.pipeline.Pipeline`.
        verbose: as :class:`~sklearn.pipeline.Pipeline`.
    """

    def __init__(
        self,
        steps: list[tuple[str, Any]],
        *,
        calibrator: ScoreCalibrator | None = None,
        transform_input: list[str] | None = None,
        memory: Any = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(steps, transform_input=transform_input, memory=memory, verbose=verbose)
        self.calibrator = calibrator

    def predict_proba(self, X: Any, **params: Any) -> np.ndarray:
        """The two classes' calibrated probabilities (the positive one calibrated, the other its complement)."""
        proba = np.array(super().predict_proba(X, **params), dtype="float64")
        if self.calibrator is None:
            return proba
        positive = _positive_column(self.classes_)
        proba[:, positive] = self.calibrator.transform(proba[:, positive])
        proba[:, 1 - positive] = 1.0 - proba[:, positive]
        return proba

    def predict_log_proba(self, X: Any, **params: Any) -> np.ndarray:
        """The log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X, **params))

    def predict(self, X: Any, **params: Any) -> np.ndarray:
        """The class of the higher calibrated probability."""
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(X, **params), axis=1)]


def calibrated_model(model: Pipeline, calibrator: ScoreCalibrator | None) -> Pipeline:
    """The model to log: ``model`` itself without a calibrator, else a :class:`CalibratedPipeline` of its steps.

    Args:
        model: the fitted pipeline.
        calibrator: the fitted calibrator, or None.

    Returns:
        The pipeline whose ``predict_proba`` is the served probability.
    """
    if calibrator is None:
        return model
    return CalibratedPipeline(model.steps, calibrator=calibrator, memory=model.memory, verbose=model.verbose)


def calibrated_scores(model: Any, positive: ArrayLike) -> np.ndarray:
    """The model's calibrator applied to its estimator's positive-class probabilities.

    What the model's own ``predict_proba`` computes after its estimator, for callers that run
    the estimator themselves (serving); the scores unchanged for a model without a calibrator.

    Args:
        model: a logged churnops pipeline, calibrated or not.
        positive: its estimator's positive-class probabilities.

    Returns:
        The probabilities the model serves, float64.
    """
    calibrator = getattr(model, "calibrator", None)
    scores = np.asarray(positive, dtype="float64")
    return scores if calibrator is None else calibrator.transform(scores)


@dataclass(frozen=True)
class CalibrationChoice:
    """Which calibration a model got, and the holdout measures it was chosen on.

    Attributes:
        setting: ``training.calibration`` (``auto``, ``isotonic``, ``sigmoid`` or ``none``).
        method: the map applied: ``isotonic``, ``sigmoid`` or ``none``.
        calibrator: the fitted map (None for ``none``).
        holdout: ``{"ece", "roc_auc"}`` on the holdout for each map fitted and for ``none``.
        reason: one sentence saying why.
    """

    setting: str
    method: str
    calibrator: ScoreCalibrator | None
    holdout: dict[str, dict[str, float]] = field(default_factory=dict)
    reason: str = ""


def _holdout(y_test: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"ece": expected_calibration_error(y_test, scores), "roc_auc": float(roc_auc_score(y_test, scores))}


def choose_calibration(
    setting: Literal["auto", "isotonic", "sigmoid", "none"],
    oof_labels: ArrayLike,
    oof_scores: ArrayLike,
    y_test: ArrayLike,
    test_scores: ArrayLike,
) -> CalibrationChoice:
    """Fit the calibration ``setting`` asks for on out-of-fold scores and measure it on the holdout.

    ``auto`` fits every map of :data:`CALIBRATION_METHODS` and keeps the one of the lowest
    holdout ECE if that ECE is below the uncalibrated model's and its holdout ROC-AUC is at
    most :data:`MAX_ROC_AUC_DROP` below; otherwise ``none``. An explicit method is applied
    whatever it measures (and measured all the same); ``none`` fits nothing.

    Args:
        setting: ``training.calibration``.
        oof_labels: the cross-validation rows' 0/1 labels.
        oof_scores: their out-of-fold positive-class probabilities.
        y_test: the holdout's 0/1 labels.
        test_scores: the uncalibrated model's positive-class probabilities on the holdout.

    Returns:
        The choice: the method, the fitted calibrator, the holdout measures and the reason.
    """
    y, scores = np.asarray(y_test).astype(int).ravel(), np.asarray(test_scores, dtype="float64").ravel()
    measured = {"none": _holdout(y, scores)}
    if setting == "none":
        return CalibrationChoice(setting, "none", None, measured, "calibration is off (training.calibration: none)")
    methods = CALIBRATION_METHODS if setting == "auto" else (setting,)
    fitted = {m: ScoreCalibrator(m).fit(oof_scores, oof_labels) for m in methods}
    measured |= {m: _holdout(y, calibrator.transform(scores)) for m, calibrator in fitted.items()}
    before = measured["none"]
    if setting != "auto":
        after = measured[setting]
        reason = (
            f"{setting} as configured: holdout ECE {before['ece']:.4f} → {after['ece']:.4f}, "
            f"ROC-AUC {before['roc_auc']:.4f} → {after['roc_auc']:.4f}"
        )
        return CalibrationChoice(setting, setting, fitted[setting], measured, reason)
    tried = ", ".join(f"{m} ECE {measured[m]['ece']:.4f} / ROC-AUC {measured[m]['roc_auc']:.4f}" for m in methods)
    best = auto_choice(measured)
    if best == "none":
        reason = (
            f"uncalibrated (ECE {before['ece']:.4f}, ROC-AUC {before['roc_auc']:.4f}) kept: no map lowers the "
            f"holdout ECE within a ROC-AUC drop of {MAX_ROC_AUC_DROP} ({tried})"
        )
        return CalibrationChoice(setting, "none", None, measured, reason)
    reason = (
        f"{best} lowers the holdout ECE {before['ece']:.4f} → {measured[best]['ece']:.4f} "
        f"(ROC-AUC {before['roc_auc']:.4f} → {measured[best]['roc_auc']:.4f}; {tried})"
    )
    return CalibrationChoice(setting, best, fitted[best], measured, reason)


def auto_choice(measured: dict[str, dict[str, float]]) -> str:
    """``training.calibration: auto``'s rule on holdout measures: the map to keep, or ``none``.

    A map is eligible when its ECE is below ``none``'s and its ROC-AUC at most
    :data:`MAX_ROC_AUC_DROP` below ``none``'s; the eligible map of the lowest ECE is kept
    (ties: the first of :data:`CALIBRATION_METHODS`).

    Args:
        measured: ``{"ece", "roc_auc"}`` per map, ``none`` (uncalibrated) included.

    Returns:
        The map's name, or ``none``.
    """
    before = measured["none"]
    # A rounding error's tolerance: a drop of exactly MAX_ROC_AUC_DROP is allowed.
    eligible = [
        m
        for m in CALIBRATION_METHODS
        if m in measured
        and measured[m]["ece"] < before["ece"]
        and before["roc_auc"] - measured[m]["roc_auc"] <= MAX_ROC_AUC_DROP + 1e-12
    ]
    return min(eligible, key=lambda m: measured[m]["ece"]) if eligible else "none"
