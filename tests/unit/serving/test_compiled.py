"""The compiled features step: the same matrix as the fitted pipeline's, bit for bit, for what callers send."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from churnops.config import MODEL_FAMILIES
from churnops.modeling import build_model
from churnops.serving.compiled import CELLWISE_BELOW_ROWS, compile_features, matches_pipeline
from tests.helpers import telco_training_rows

SMALL = {"lightgbm": {"n_estimators": 5}, "xgboost": {"n_estimators": 5}, "random_forest": {"n_estimators": 2}}


@pytest.fixture(scope="module")
def telco():
    return telco_training_rows(800, SMALL)


@pytest.fixture(scope="module")
def fitted(telco):
    config, X, y = telco
    return {family: build_model(family, config).fit(X, y) for family in MODEL_FAMILIES}


def awkward(X: pd.DataFrame) -> pd.DataFrame:
    """Rows as callers send them: text numbers with spaces, blanks, nulls, ints and floats for categories."""
    rows = X.astype(object).copy()
    rows.loc[rows.index[0::7], "tenure"] = " 12 "
    rows.loc[rows.index[1::7], "totalcharges"] = ""
    rows.loc[rows.index[2::7], "monthlycharges"] = None
    rows.loc[rows.index[3::7], "tenure"] = 0
    rows.loc[rows.index[4::7], "totalcharges"] = "not a number"
    rows.loc[rows.index[5::7], "tenure"] = float("inf")
    rows.loc[rows.index[0::5], "seniorcitizen"] = 1.0
    rows.loc[rows.index[1::5], "contract"] = "  Month-to-month "
    rows.loc[rows.index[2::5], "paymentmethod"] = "a method never seen"
    rows.loc[rows.index[3::5], "gender"] = None
    rows.loc[rows.index[4::5], "partner"] = ""
    rows.loc[rows.index[0::11], "phoneservice"] = True
    return rows


@pytest.mark.parametrize("family", MODEL_FAMILIES)
@pytest.mark.parametrize("kind", ["as read", "as text", "awkward"])
def test_the_compiled_features_equal_the_pipelines_for_one_row_and_many(telco, fitted, family, kind):
    _, X, _ = telco
    features = fitted[family][:-1]
    compiled = compile_features(features)
    assert compiled is not None
    rows = {"as read": X, "as text": X.astype(str), "awkward": awkward(X)}[kind].reset_index(drop=True)
    for batch in (rows.head(1), rows.iloc[[5]], rows.head(CELLWISE_BELOW_ROWS - 1), rows):
        expected = features.transform(batch)
        got = compiled(batch)
        assert got.shape == expected.shape
        assert np.array_equal(got, expected, equal_nan=True)


def test_a_model_whose_coercer_gives_text_compiles_to_the_same(telco, fitted):
    # Models logged before the coercer had ``as_category`` read categories as object columns of text.
    _, X, _ = telco
    features = copy.deepcopy(fitted["lightgbm"][:-1])
    del features[0].named_steps["coerce"].as_category  # the class default: False, as unpickled
    rows = awkward(X).reset_index(drop=True)
    compiled = compile_features(features)
    assert compiled is not None and matches_pipeline(compiled, features)
    assert np.array_equal(compiled(rows), features.transform(rows), equal_nan=True)


def test_a_pipeline_of_another_shape_is_not_compiled(fitted):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from churnops.serving.compiled import fitted_categories

    features = fitted["logistic_regression"][:-1]
    assert compile_features(Pipeline([("scale", FunctionTransformer())])) is None
    assert fitted_categories(Pipeline([("scale", FunctionTransformer())])) == {}, "no known texts: any text"
    changed = copy.deepcopy(features)
    changed[0].named_steps["derive"].specs_.append(
        {"kind": "ratio", "name": "r", "numerator": "gender", "denominator": "tenure"}
    )
    assert compile_features(changed) is None


def test_a_compiled_function_that_differs_is_caught(fitted):
    features = fitted["xgboost"][:-1]
    compiled = compile_features(features)
    assert compiled is not None and matches_pipeline(compiled, features)

    def off_by_a_bit(rows):
        out = compiled(rows)
        return np.nextafter(out, np.inf)

    assert not matches_pipeline(off_by_a_bit, features)


@pytest.mark.parametrize("kind", ["as text", "awkward"])
def test_rows_read_with_the_fitted_categories_get_the_pipelines_features(telco, fitted, kind):
    from churnops.features import MISSING
    from churnops.serving.compiled import fitted_categories
    from churnops.serving.inputs import read_json_rows

    config, X, _ = telco
    features = fitted["lightgbm"][:-1]
    categories = fitted_categories(features)
    assert set(categories) == set(config.dataset.categorical_features)
    assert "Month-to-month" in categories["contract"] and all(MISSING not in c for c in categories.values())
    rows = X.astype(str) if kind == "as text" else awkward(X)
    rows.loc[rows["totalcharges"].eq("not a number"), "totalcharges"] = " "  # a 422 in a request
    # JSON has no NaN or infinity: those cells are sent as null and as text.
    json_cells = {float("inf"): "inf"}
    records = [
        {k: None if v != v else json_cells.get(v, v) if isinstance(v, float) else v for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    body = json.dumps({"rows": records}).encode()
    columns, numeric = list(X.columns), set(config.dataset.numeric_features)
    checked = read_json_rows(body, len(records), columns, numeric, "customerid", categories)
    if kind == "as text":  # every text a fitted one: one object per text
        shared: dict[str, str] = {}
        assert all(shared.setdefault(cell, cell) is cell for cell in checked.columns["contract"])
    expected = features.transform(pd.DataFrame(json.loads(body)["rows"]))
    got = compile_features(features)(checked.columns, checked.numbers, checked.plain)
    assert np.array_equal(got, expected, equal_nan=True)
