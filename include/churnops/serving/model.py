"""The served model: one registered version loaded (digest checked), with what its answers need.

:class:`ServedModel` is immutable: a request takes the current one once and uses it to the end,
so a swap to another version (:mod:`churnops.serving.follow`) never changes a request halfway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from churnops.config import ChurnopsConfig
from churnops.modeling import calibrated_scores
from churnops.serving.compiled import compile_features, fitted_categories, matches_pipeline
from churnops.serving.explain import Explainer, build_explainer, positive_column, predict_options

if TYPE_CHECKING:
    from churnops.serving.inputs import RequestRows

log = logging.getLogger(__name__)

__all__ = ["Prediction", "ServedModel", "load_served_model", "positive_probability"]


@dataclass(frozen=True)
class Prediction:
    """One request's answers, one entry per row."""

    probability: np.ndarray
    label: np.ndarray
    risk: list[str]
    reasons: list[list[dict[str, Any]]] | None


@dataclass(frozen=True)
class ServedModel:
    """A registered version in memory: its pipeline, explainer, threshold and description."""

    model_name: str
    version: str
    alias: str
    family: str
    threshold: float
    artifact_sha256: str
    input_columns: list[str]
    training_metrics: dict[str, float]
    pyfunc: Any = field(repr=False)
    """The MLflow pyfunc model, as :func:`churnops.tracking.load_registered_model` returned it."""
    pipeline: Any = field(repr=False)
    explainer: Explainer = field(repr=False)
    features: Callable[..., np.ndarray] | None = field(default=None, repr=False)
    """The pipeline's features step compiled to NumPy (:mod:`churnops.serving.compiled`), None to run the pipeline's."""
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    """Each category column's fitted labels: a request's texts among them are decoded as shared objects."""

    def info(self) -> dict[str, Any]:
        """What ``GET /model-info`` shows."""
        return {
            "model_name": self.model_name,
            "model_version": self.version,
            "alias": self.alias,
            "family": self.family,
            "threshold": self.threshold,
            "artifact_sha256": self.artifact_sha256,
            "input_columns": self.input_columns,
            "training_metrics": self.training_metrics,
            "reasons_unit": self.explainer.unit,
            "calibration": getattr(getattr(self.pipeline, "calibrator", None), "method", "none"),
        }

    def predict(self, rows: RequestRows, config: ChurnopsConfig, explain: bool) -> Prediction:
        """Probabilities, labels, risk bands and (with ``explain``) reasons for ``rows``.

        The features step runs once (compiled when :attr:`features` is set, on the request's
        columns and the numbers its check read, its output identical to the pipeline's); the
        estimator's ``predict_proba`` on its output, through the model's calibrator when it has
        one, is what the pyfunc model's ``predict`` returns (the pipeline computes exactly that),
        and the contributions are computed from the same transformed rows (the uncalibrated
        estimator's, see :mod:`churnops.serving.explain`).

        Args:
            rows: checked rows holding at least :attr:`input_columns` (:func:`~churnops.serving.inputs.check_rows`).
            config: ``serving`` (risk bands, reasons per row).
            explain: compute reasons.

        Returns:
            The prediction.
        """
        if self.features is not None:
            transformed = self.features(rows.columns, rows.numbers, rows.plain)
        else:
            transformed = self.pipeline[:-1].transform(rows.frame)
        count = len(rows)
        probability = calibrated_scores(
            self.pipeline, positive_probability(self.pipeline[-1], self.family, transformed)
        )
        label = (probability >= self.threshold).astype(int)
        serving = config.serving
        levels = np.asarray(serving.risk_levels, dtype=object)
        risk = levels[np.searchsorted(serving.risk_cut_points, probability, side="right")].tolist()
        reasons = None
        if explain:
            from churnops.serving.explain import top_reasons

            raw = self.explainer.contributions(np.asarray(transformed, dtype="float64"))
            # Filled a column at a time (contiguous), read as (rows, columns) through the transpose.
            values = np.empty((len(self.explainer.raw_columns), count), dtype=object)
            for j, column in enumerate(self.explainer.raw_columns):
                values[j] = rows.columns[column]
            reasons = top_reasons(raw, values.T, self.explainer.raw_columns, serving.reasons_top_k)
        return Prediction(probability, label, risk, reasons)


def positive_probability(estimator: Any, family: str, X: Any) -> np.ndarray:
    """The estimator's ``predict_proba`` column of the positive class, for the rows ``X`` (transformed).

    A binary LightGBM model is asked through its booster: the scikit-learn wrapper's
    ``predict_proba`` returns the booster's probabilities as its second column (and one minus
    them as the first) after re-reading its parameters by introspection, which costs more than
    the prediction of a few rows. Every other model goes through ``predict_proba``.

    Args:
        estimator: the pipeline's fitted estimator.
        family: its model family.
        X: the rows as the estimator reads them.

    Returns:
        float64 probabilities, one per row.
    """
    options = predict_options(family, len(X))
    positive = positive_column(estimator)
    if family == "lightgbm" and _plain_binary_lightgbm(estimator):
        result = np.asarray(estimator.booster_.predict(X, **options), dtype="float64")
        return result if positive == 1 else 1.0 - result
    return np.asarray(estimator.predict_proba(X, **options), dtype="float64")[:, positive]


def _plain_binary_lightgbm(estimator: Any) -> bool:
    # A custom objective makes the wrapper turn raw scores into probabilities itself.
    return len(getattr(estimator, "classes_", [])) == 2 and not callable(getattr(estimator, "objective", None))


def load_served_model(config: ChurnopsConfig, version: str) -> ServedModel:
    """Load ``version`` of the registered model for serving, its artifacts checked against their digest.

    Args:
        config: the registry section (model name, champion alias).
        version: the exact version.

    Returns:
        The served model.

    Raises:
        churnops.tracking.ModelIntegrityError: the version's artifacts do not match their digest.
        ValueError: the version has an invalid threshold tag or an unknown family.
    """
    from mlflow import MlflowClient

    from churnops.tracking import ARTIFACT_DIGEST_TAG, load_registered_model, use_tracking_store, version_threshold

    registry = config.registry
    use_tracking_store()
    model_version = MlflowClient().get_model_version(registry.model_name, version)
    tags = dict(model_version.tags)
    pyfunc = load_registered_model(registry, version)
    pipeline = pyfunc.get_raw_model()
    family = tags.get("churnops.family") or _family_of(pipeline[-1])
    explainer = build_explainer(pipeline, family)
    features = compile_features(pipeline[:-1])
    if features is not None and not matches_pipeline(features, pipeline[:-1]):
        log.warning(
            "version %s: the compiled features differ from the pipeline's; serving through the pipeline", version
        )
        features = None
    columns = (pyfunc.metadata.metadata or {}).get("churnops_input_columns") or explainer.raw_columns
    metrics = {}
    for key, value in tags.items():
        if key == "churnops.cv_roc_auc" or key.startswith("churnops.test_"):
            try:
                metrics[key.removeprefix("churnops.")] = float(value)
            except ValueError:
                continue
    return ServedModel(
        model_name=registry.model_name,
        version=str(version),
        alias=registry.champion_alias,
        family=family,
        threshold=version_threshold(tags),  # the tag churnops.threshold, else 0.5
        artifact_sha256=tags.get(ARTIFACT_DIGEST_TAG, ""),
        input_columns=[str(c) for c in columns],
        training_metrics=metrics,
        pyfunc=pyfunc,
        pipeline=pipeline,
        explainer=explainer,
        features=features,
        categories=fitted_categories(pipeline[:-1]),
    )


def _family_of(estimator: Any) -> str:
    """A version registered without a ``churnops.family`` tag: its family from the estimator's class."""
    name = type(estimator).__name__
    return {
        "LGBMClassifier": "lightgbm",
        "XGBClassifier": "xgboost",
        "LogisticRegression": "logistic_regression",
        "RandomForestClassifier": "random_forest",
    }.get(name, name)
