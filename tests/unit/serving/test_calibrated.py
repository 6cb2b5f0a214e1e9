"""A calibrated model served: the probability is the logged pipeline's, bit for bit; reasons stay the estimator's."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.config import MODEL_FAMILIES
from churnops.modeling import ScoreCalibrator, build_model, calibrated_model
from churnops.serving import build_explainer, check_rows
from churnops.serving.compiled import compile_features
from churnops.serving.model import ServedModel
from tests.helpers import telco_training_rows

# One thread for the forest: its predict_proba adds the trees' votes in thread order, so two calls
# with two threads may differ in the last bit (as pyfunc calls do), whatever serving computes.
SMALL = {
    "lightgbm": {"n_estimators": 10},
    "xgboost": {"n_estimators": 10},
    "random_forest": {"n_estimators": 4, "n_jobs": 1},
}


@pytest.fixture(scope="module")
def telco():
    return telco_training_rows(1200, SMALL)


@pytest.fixture(scope="module")
def fitted(telco):
    config, X, y = telco
    return {family: build_model(family, config).fit(X[:800], y[:800]) for family in MODEL_FAMILIES}


def served(pipeline, family: str, compiled: bool) -> ServedModel:
    return ServedModel(
        model_name="churn-predictor",
        version="1",
        alias="champion",
        family=family,
        threshold=0.5,
        artifact_sha256="",
        input_columns=list(pipeline[0].named_steps["coerce"].columns_),
        training_metrics={},
        pyfunc=None,
        pipeline=pipeline,
        explainer=build_explainer(pipeline, family),
        features=compile_features(pipeline[:-1]) if compiled else None,
    )


def request(config, service: ServedModel, rows):
    """The rows as the service receives them, checked as a request's are."""
    numeric = set(config.dataset.numeric_features)
    return check_rows(rows, service.input_columns, numeric, config.dataset.id_column)


@pytest.mark.parametrize("family", MODEL_FAMILIES)
@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_a_served_calibrated_model_answers_the_pipelines_probability_bit_for_bit(telco, fitted, family, method):
    config, X, y = telco
    plain = fitted[family]
    calibrator = ScoreCalibrator(method).fit(plain.predict_proba(X[800:1000])[:, 1], y[800:1000])
    model = calibrated_model(plain, calibrator)
    rows = X[1000:].reset_index(drop=True)
    expected = model.predict_proba(rows)[:, 1]  # what the pyfunc returns (pyfunc_predict_fn="predict_proba")
    assert not np.array_equal(expected, plain.predict_proba(rows)[:, 1])
    for compiled in (True, False):
        service = served(model, family, compiled)
        assert service.info()["calibration"] == method
        for batch in (rows.head(1), rows.iloc[[7]], rows):
            prediction = service.predict(request(config, service, batch), config, explain=True)
            assert np.array_equal(prediction.probability, model.predict_proba(batch)[:, 1])
        assert np.array_equal(
            service.predict(request(config, service, rows), config, explain=False).probability, expected
        )
    # Reasons are the estimator's contributions, the same as the uncalibrated model's.
    calibrated, uncalibrated = served(model, family, True), served(plain, family, True)
    calibrated_reasons = calibrated.predict(request(config, calibrated, rows), config, explain=True).reasons
    assert calibrated_reasons == uncalibrated.predict(request(config, uncalibrated, rows), config, explain=True).reasons


def test_an_uncalibrated_model_is_served_as_before(telco, fitted):
    config, X, _ = telco
    model = fitted["lightgbm"]
    service = served(model, "lightgbm", True)
    assert service.info()["calibration"] == "none"
    assert np.array_equal(
        service.predict(request(config, service, X[1000:]), config, explain=False).probability,
        model.predict_proba(X[1000:])[:, 1],
    )
