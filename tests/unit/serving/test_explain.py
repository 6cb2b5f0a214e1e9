"""Reasons: each family's contributions add up to its output, and fold onto the raw columns a caller sent."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.config import MODEL_FAMILIES
from churnops.modeling import build_model
from churnops.serving import build_explainer, top_reasons
from tests.helpers import telco_training_rows

SMALL = {
    "lightgbm": {"n_estimators": 30},
    "xgboost": {"n_estimators": 30},
    "random_forest": {"n_estimators": 8},
    "logistic_regression": {},
}


@pytest.fixture(scope="module")
def telco():
    return telco_training_rows(1500, SMALL)


@pytest.fixture(scope="module")
def fitted(telco):
    config, X, y = telco
    return {family: build_model(family, config).fit(X, y) for family in MODEL_FAMILIES}


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_contributions_add_up_to_the_models_output_up_to_one_bias(telco, fitted, family):
    _, X, _ = telco
    model = fitted[family]
    explainer = build_explainer(model, family)
    rows = X.head(300)
    raw = explainer.contributions(np.asarray(model[:-1].transform(rows), dtype="float64"))
    assert raw.shape == (300, len(explainer.raw_columns))
    p = model.predict_proba(rows)[:, 1]
    output = np.log(p / (1 - p)) if explainer.unit == "log_odds" else p
    bias = output - raw.sum(axis=1)
    # One constant for every row (the expected value, the intercept, the forest's root share): exact.
    assert np.ptp(bias) < (1e-4 if family == "xgboost" else 1e-8), np.ptp(bias)
    assert np.abs(raw).sum() > 0
    assert explainer.unit == ("probability" if family == "random_forest" else "log_odds")


def test_encoded_and_derived_columns_fold_onto_the_raw_columns(fitted):
    explainer = build_explainer(fitted["logistic_regression"], "logistic_regression")
    to_raw = explainer.to_raw
    assert np.allclose(to_raw.sum(axis=1), 1.0), "each transformed column is shared out whole"
    column = explainer.raw_columns.index
    encode = fitted["logistic_regression"][0].named_steps["encode"]
    names = list(encode.get_feature_names_out())
    contract = [i for i, n in enumerate(names) if n.startswith("cat__contract_")]
    assert len(contract) == 3 and all(to_raw[i, column("contract")] == 1.0 for i in contract)
    ratio = names.index("num__avg_monthly_spend")
    assert to_raw[ratio, column("totalcharges")] == to_raw[ratio, column("tenure")] == 0.5
    services = names.index("num__n_services")
    assert to_raw[services, column("streamingtv")] == pytest.approx(1 / 8)
    band = [i for i, n in enumerate(names) if n.startswith("cat__tenure_band_")]
    assert band and all(to_raw[i, column("tenure")] == 1.0 for i in band)


def test_an_unknown_family_has_no_method(fitted):
    with pytest.raises(ValueError, match="no contribution method"):
        build_explainer(fitted["lightgbm"], "catboost")


def test_top_reasons_are_the_largest_in_absolute_value_with_the_row_values():
    contributions = np.array([[0.1, -0.5, 0.3, 0.0], [0.0, 0.0, 0.0, 2.0]])
    values = np.array([["a", 1.5, None, float("nan")], ["b", 2, "x", np.float64(7.0)]], dtype=object)
    reasons = top_reasons(contributions, values, ["w", "x", "y", "z"], 2)
    assert reasons[0] == [
        {"feature": "x", "value": 1.5, "contribution": -0.5},
        {"feature": "y", "value": None, "contribution": 0.3},
    ]
    assert reasons[1][0] == {"feature": "z", "value": 7.0, "contribution": 2.0}
    assert type(reasons[1][0]["value"]) is float
    assert [len(r) for r in top_reasons(contributions, values, ["w", "x", "y", "z"], 10)] == [4, 4]
