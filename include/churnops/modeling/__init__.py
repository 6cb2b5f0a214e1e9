"""Models: the families churnops trains and the metrics that judge them.

- :mod:`~churnops.modeling.models`: one scikit-learn pipeline per family (the preprocessing of
  :mod:`churnops.features` plus the estimator), cross-validated and fitted.
- :mod:`~churnops.modeling.metrics`: holdout metrics, calibration, plots and the choice of the best.
"""

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

__all__ = [
    "FitResult",
    "build_estimator",
    "build_model",
    "choose_best",
    "classification_metrics",
    "comparison_table",
    "cv_rows",
    "diagnostic_figures",
    "estimator_params",
    "expected_calibration_error",
    "feature_importance",
    "fit_family",
    "model_signature",
]
