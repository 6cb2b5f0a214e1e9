"""Model families, the full model pipeline, and cross-validated fitting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from churnops.config import ChurnopsConfig, ModelFamily
from churnops.features import build_preprocessor

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

__all__ = [
    "FitResult",
    "build_estimator",
    "build_model",
    "cv_rows",
    "estimator_params",
    "fit_family",
    "model_signature",
]

# Chosen on Telco with 5-fold CV on the training split, within a scoring budget of 200,000 rows/s
# on 2 cores for the whole logged pipeline; every key can be overridden per family in config
# (training.params). Shallow, fast-learning boosters and a shallow forest score as well there
# (CV ROC-AUC within 0.001 of 300-500 deeper or slower trees) at a third of the prediction time:
# a tree ensemble's predict costs about the same per tree, however small.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 0.3, "max_iter": 2000},
    "random_forest": {"n_estimators": 60, "max_depth": 6, "min_samples_leaf": 10, "max_features": "sqrt", "n_jobs": 2},
    "xgboost": {
        "n_estimators": 300,
        "learning_rate": 0.03,
        "max_depth": 2,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 2,
        "tree_method": "hist",
        "n_jobs": 2,
    },
    "lightgbm": {
        "n_estimators": 150,
        "learning_rate": 0.07,
        "num_leaves": 4,
        "min_child_samples": 50,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "n_jobs": 2,
        "verbose": -1,
    },
}


def estimator_params(family: str, config: ChurnopsConfig, rows: int | None = None) -> dict[str, Any]:
    """Defaults for ``family`` with the config's overrides and the run's seed applied.

    Args:
        family: one of :data:`~churnops.config.MODEL_FAMILIES`.
        config: ``training.params``, ``training.seed`` and ``training.forest_max_samples``.
        rows: training rows; a random forest on more than ``training.forest_max_samples``
            draws that many rows per tree.

    Returns:
        The estimator's keyword arguments.

    Raises:
        ValueError: ``family`` is unknown.
    """
    if family not in DEFAULT_PARAMS:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(DEFAULT_PARAMS)}")
    # DEFAULT_PARAMS is keyed by exactly the ModelFamily names: past the check, family is one of them.
    params = {**DEFAULT_PARAMS[family], **config.training.params.get(cast(ModelFamily, family), {})}
    params.setdefault("random_state", config.training.seed)
    cap = config.training.forest_max_samples
    if family == "random_forest" and rows is not None and rows > cap and params.get("bootstrap", True):
        params.setdefault("max_samples", cap)
    return params


def build_estimator(family: str, params: dict[str, Any]) -> ClassifierMixin:
    """The unfitted estimator of ``family``.

    Args:
        family: one of :data:`~churnops.config.MODEL_FAMILIES`.
        params: its keyword arguments (:func:`estimator_params`).

    Returns:
        A scikit-learn classifier (XGBoost's and LightGBM's scikit-learn wrappers included).

    Raises:
        ValueError: ``family`` is unknown.
    """
    # Imports stay local: each family pulls in its own heavy library only when used.
    if family == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(**params)
    if family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**params)
    if family == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(eval_metric="logloss", **params)
    if family == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(**params)
    raise ValueError(f"unknown model family {family!r}")


# Linear models need one indicator column per category; trees split category codes as well
# (same CV ROC-AUC on Telco) from a third of the columns, which makes scoring several times faster.
ENCODING: dict[str, str] = {
    "logistic_regression": "onehot",
    "random_forest": "ordinal",
    "xgboost": "ordinal",
    "lightgbm": "ordinal",
}


def build_model(family: str, config: ChurnopsConfig, rows: int | None = None) -> Pipeline:
    """The unfitted pipeline logged to MLflow: raw merged rows in, class probabilities out.

    Args:
        family: one of :data:`~churnops.config.MODEL_FAMILIES`.
        config: the dataset's features and the training settings.
        rows: training rows (see :func:`estimator_params`).

    Returns:
        The pipeline: ``features`` (:func:`~churnops.features.build_preprocessor`) then ``model``.
    """
    estimator = build_estimator(family, estimator_params(family, config, rows))
    return Pipeline([("features", build_preprocessor(config, ENCODING[family])), ("model", estimator)])


@dataclass(frozen=True)
class FitResult:
    """A fitted family and its cross-validation.

    Attributes:
        model: the pipeline fitted on every training row.
        params: the estimator's parameters.
        cv_scores: ROC-AUC of each fold.
        cv_rows: rows the CV folds were cut from (all of them, or the ``cv_max_rows`` sample).
        oof_scores: each of those rows' positive-class probability from the fold's model that did not see it.
        oof_labels: their 0/1 labels.
    """

    model: Pipeline
    params: dict[str, Any]
    cv_scores: np.ndarray
    cv_rows: int
    oof_scores: np.ndarray
    oof_labels: np.ndarray

    @property
    def cv_roc_auc_mean(self) -> float:
        return float(np.mean(self.cv_scores))

    @property
    def cv_roc_auc_std(self) -> float:
        return float(np.std(self.cv_scores))


def fit_family(family: str, X: pd.DataFrame, y: np.ndarray, config: ChurnopsConfig) -> FitResult:
    """Stratified k-fold CV on (X, y), then a final fit on all of it.

    The folds' out-of-fold probabilities are kept (the decision threshold is chosen on them) and
    each fold's ROC-AUC is computed from its own rows' probabilities.

    Folds run one after another (``n_jobs=1``): the estimators already use both cores,
    mapped training tasks may run side by side, and only one fold's copy of the rows exists
    at a time. A table of more than ``training.cv_max_rows`` rows is cross-validated on a
    stratified, seeded sample of that many (:func:`cv_rows`); the final fit sees every row.

    Args:
        family: one of :data:`~churnops.config.MODEL_FAMILIES`.
        X: the training rows' feature columns, raw.
        y: their 0/1 labels.
        config: the dataset's features and the training settings.

    Returns:
        The fitted model with its parameters, CV scores and out-of-fold probabilities.
    """
    params = estimator_params(family, config, len(X))
    folds = StratifiedKFold(n_splits=config.training.cv_folds, shuffle=True, random_state=config.training.seed)
    picked = cv_rows(y, config)
    X_cv, y_cv = (X, y) if picked is None else (X.iloc[picked], np.asarray(y)[picked])
    y_cv = np.asarray(y_cv)
    oof = cross_val_predict(
        build_model(family, config, len(X)), X_cv, y_cv, cv=folds, method="predict_proba", n_jobs=1
    )[:, 1]
    # A seeded StratifiedKFold splits the same rows again: each fold is scored on its own rows.
    scores = [roc_auc_score(y_cv[test], oof[test]) for _, test in folds.split(X_cv, y_cv)]
    del X_cv
    model = build_model(family, config, len(X)).fit(X, y)
    return FitResult(
        model=model,
        params=params,
        cv_scores=np.asarray(scores, dtype=float),
        cv_rows=len(y_cv),
        oof_scores=np.asarray(oof, dtype=float),
        oof_labels=y_cv,
    )


def cv_rows(y: np.ndarray, config: ChurnopsConfig) -> np.ndarray | None:
    """Positions of the stratified, seeded CV sample when ``y`` has more than ``training.cv_max_rows`` rows, else None.

    The same for every family (same labels, same seed), so their CV scores stay comparable.

    Args:
        y: the training labels.
        config: ``training.cv_max_rows`` and ``training.seed``.

    Returns:
        The sampled row positions, sorted; None when every row is used.
    """
    cap = config.training.cv_max_rows
    if cap is None or len(y) <= cap:
        return None
    from sklearn.model_selection import train_test_split

    picked, _ = train_test_split(np.arange(len(y)), train_size=cap, stratify=y, random_state=config.training.seed)
    return np.sort(picked)


def model_signature(config: ChurnopsConfig, probabilities: np.ndarray) -> ModelSignature:
    """Signature of the logged model: its output (class probabilities); no input schema.

    Raw rows are the model's input, and raw rows come typed any way (a CSV read with default
    dtypes, Parquet, a JSON body with ``"tenure": 12`` or ``"totalcharges": " "``): the pipeline's
    first step (:class:`churnops.features.RawInputCoercer`) casts them and names any missing
    column. A typed input schema would make MLflow reject such rows (it refuses int64 → double
    and numbers → str), and an untyped one (every column ``any``) makes MLflow check each cell
    with a Python call (~3 s per 200,000 rows, several times the model's own time) to change
    nothing. The input columns are recorded in the model's metadata (``churnops_input_columns``)
    and shown by its input example instead.

    Args:
        config: the dataset's configuration.
        probabilities: ``predict_proba`` output of the model on a few rows (sets the column count).

    Returns:
        The signature, without input schema.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    outputs = Schema([TensorSpec(np.dtype("float64"), (-1, probabilities.shape[1]))])
    return ModelSignature(inputs=None, outputs=outputs)
