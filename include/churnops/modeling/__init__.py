"""Models: the families churnops trains and the metrics that judge them.

- :mod:`~churnops.modeling.models`: one scikit-learn pipeline per family (the preprocessing of
  :mod:`churnops.features` plus the estimator), cross-validated and fitted.
- :mod:`~churnops.modeling.metrics`: holdout metrics, calibration, plots and the choice of the best.
- :mod:`~churnops.modeling.calibration`: the probability calibration fitted on out-of-fold
  scores and logged inside the model (:class:`~churnops.modeling.calibration.CalibratedPipeline`).
- :mod:`~churnops.modeling.thresholds`: the decision threshold chosen by a rule on out-of-fold
  scores, and precision, recall, F1 and the confusion counts at it.
"""

from churnops.modeling.calibration import (
    CALIBRATION_METHODS,
    MAX_ROC_AUC_DROP,
    CalibratedPipeline,
    CalibrationChoice,
    ScoreCalibrator,
    auto_choice,
    calibrated_model,
    calibrated_scores,
    choose_calibration,
)
from churnops.modeling.metrics import (
    choose_best,
    classification_metrics,
    comparison_table,
    diagnostic_figures,
    expected_calibration_error,
    feature_importance,
)
from churnops.modeling.models import (
    FitResult,
    build_estimator,
    build_model,
    cv_rows,
    estimator_params,
    fit_family,
    model_signature,
)
from churnops.modeling.thresholds import choose_threshold, classification_report_at, threshold_metrics

__all__ = [
    "CALIBRATION_METHODS",
    "MAX_ROC_AUC_DROP",
    "CalibratedPipeline",
    "CalibrationChoice",
    "FitResult",
    "ScoreCalibrator",
    "auto_choice",
    "build_estimator",
    "build_model",
    "calibrated_model",
    "calibrated_scores",
    "choose_best",
    "choose_calibration",
    "choose_threshold",
    "classification_metrics",
    "classification_report_at",
    "comparison_table",
    "cv_rows",
    "diagnostic_figures",
    "estimator_params",
    "expected_calibration_error",
    "feature_importance",
    "fit_family",
    "model_signature",
    "threshold_metrics",
]
