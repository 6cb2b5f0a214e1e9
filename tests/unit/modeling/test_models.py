"""churnops.modeling.models: estimator parameters, the four families and cross-validated fitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.config import MODEL_FAMILIES, ChurnopsConfig
from churnops.modeling.models import (
    DEFAULT_PARAMS,
    FitResult,
    build_estimator,
    build_model,
    cv_rows,
    estimator_params,
    fit_family,
    model_signature,
)
from tests.helpers import toy_dataset

# Small and fast: few trees, leaves allowed on a 120-row table, one thread (OpenMP threads spin and
# crawl when other processes share the cores).
FAST_PARAMS = {
    "random_forest": {"n_estimators": 20, "min_samples_leaf": 2, "n_jobs": 1},
    "xgboost": {"n_estimators": 20, "learning_rate": 0.3, "n_jobs": 1},
    "lightgbm": {"n_estimators": 20, "learning_rate": 0.3, "min_child_samples": 5, "n_jobs": 1},
}


def make_config(**training) -> ChurnopsConfig:
    return ChurnopsConfig.model_validate(
        {
            "dataset": toy_dataset(["x1", "x2"], ["grp"]),
            "features": {"derived": [{"kind": "ratio", "name": "x_ratio", "numerator": "x1", "denominator": "x2"}]},
            "training": {"cv_folds": 3, "seed": 7, "params": FAST_PARAMS, **training},
        }
    )


def separable(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """y = 1 exactly when x1 > 0; x2 and grp are noise. Raw rows, as the model receives them."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "x1": x1,
            "x2": rng.uniform(1, 2, size=n).round(3).astype(str),  # numbers as text, as from a CSV
            "grp": rng.choice(["a", "b", "c"], size=n),
        }
    )
    return X, (x1 > 0).astype(int)


# --- parameters --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_estimator_params_defaults_and_seed(family):
    config = ChurnopsConfig.model_validate({**make_config().model_dump(mode="json"), "training": {"seed": 123}})
    assert estimator_params(family, config) == {**DEFAULT_PARAMS[family], "random_state": 123}


def test_estimator_params_merges_overrides():
    config = make_config(params={"random_forest": {"n_estimators": 20, "max_depth": 3}})
    params = estimator_params("random_forest", config)
    assert params == {
        "n_estimators": 20,
        "max_depth": 3,
        "min_samples_leaf": 10,
        "max_features": "sqrt",
        "n_jobs": 2,
        "random_state": 7,
    }  # the override replaces FAST_PARAMS, keys merge with defaults
    assert DEFAULT_PARAMS["random_forest"]["n_estimators"] == 60  # defaults are not mutated
    assert estimator_params("logistic_regression", config) == {"C": 0.3, "max_iter": 2000, "random_state": 7}


def test_estimator_params_explicit_random_state_wins():
    config = make_config(params={"xgboost": {"random_state": 99}})
    assert estimator_params("xgboost", config)["random_state"] == 99


@pytest.mark.parametrize("family", ["svm", "LogisticRegression", ""])
def test_unknown_family_is_rejected(family):
    with pytest.raises(ValueError, match="unknown model family"):
        estimator_params(family, make_config())
    with pytest.raises(ValueError, match="unknown model family"):
        build_estimator(family, {})


@pytest.mark.parametrize(
    ("family", "class_name"),
    [
        ("logistic_regression", "LogisticRegression"),
        ("random_forest", "RandomForestClassifier"),
        ("xgboost", "XGBClassifier"),
        ("lightgbm", "LGBMClassifier"),
    ],
)
def test_build_model_applies_the_params(family, class_name):
    config = make_config()
    model = build_model(family, config)
    assert list(model.named_steps) == ["features", "model"]
    assert [name for name, _ in model.named_steps["features"].steps] == ["coerce", "derive", "encode"]
    estimator = model.named_steps["model"]
    assert type(estimator).__name__ == class_name
    got = estimator.get_params()
    for key, value in estimator_params(family, config).items():
        assert got[key] == value, key


# --- fitting -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    return separable()


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_fit_family_on_separable_data(family, data):
    X, y = data
    config = make_config()
    result = fit_family(family, X, y, config)
    assert isinstance(result, FitResult)
    assert result.params == estimator_params(family, config)
    assert result.cv_scores.shape == (config.training.cv_folds,)
    assert result.cv_roc_auc_mean > 0.8
    assert result.cv_roc_auc_mean == pytest.approx(float(np.mean(result.cv_scores)))
    assert result.cv_roc_auc_std == pytest.approx(float(np.std(result.cv_scores)))
    assert ((result.cv_scores >= 0) & (result.cv_scores <= 1)).all()
    proba = result.model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert ((proba >= 0) & (proba <= 1)).all()
    # the fitted model takes raw rows with extra and reordered columns, and ranks them correctly
    new = pd.DataFrame({"grp": ["a", "zzz"], "x2": [1.5, "1.5"], "x1": ["3.0", -3.0], "note": ["x", "y"]})
    positive = result.model.predict_proba(new)[:, 1]
    assert positive[0] > positive[1]


def test_fit_family_is_reproducible_with_the_seed(data):
    X, y = data
    first = fit_family("random_forest", X, y, make_config())
    second = fit_family("random_forest", X, y, make_config())
    np.testing.assert_array_equal(first.cv_scores, second.cv_scores)
    np.testing.assert_array_equal(first.model.predict_proba(X), second.model.predict_proba(X))


@pytest.mark.parametrize("family", ["logistic_regression", "random_forest"])
def test_fit_family_keeps_the_out_of_fold_probabilities_its_cv_scores_come_from(family, data):
    from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_validate

    X, y = data
    config = make_config()
    result = fit_family(family, X, y, config)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=7)
    np.testing.assert_array_equal(result.oof_labels, y)
    expected = cross_val_predict(build_model(family, config, len(X)), X, y, cv=folds, method="predict_proba")[:, 1]
    np.testing.assert_allclose(result.oof_scores, expected)
    assert not np.allclose(result.oof_scores, result.model.predict_proba(X)[:, 1]), "not the final model's scores"
    # the same fold ROC-AUCs as scikit-learn's own cross-validation
    auc = cross_validate(build_model(family, config, len(X)), X, y, cv=folds, scoring="roc_auc")["test_score"]
    np.testing.assert_allclose(result.cv_scores, auc, atol=1e-12)


def test_fit_family_uses_cv_folds(data):
    X, y = data
    result = fit_family("logistic_regression", X, y, make_config(cv_folds=4))
    assert result.cv_scores.shape == (4,)


def test_big_tables_cross_validate_on_a_stratified_sample_and_fit_every_row():
    X, y = separable(n=3_000, seed=1)
    config = make_config(cv_max_rows=1_000)
    picked = cv_rows(y, config)
    assert len(picked) == 1_000 and (np.diff(picked) > 0).all()
    assert abs(y[picked].mean() - y.mean()) < 0.002, "stratified"
    np.testing.assert_array_equal(picked, cv_rows(y, config))
    assert cv_rows(y, make_config(cv_max_rows=None)) is None and cv_rows(y[:900], config) is None
    result = fit_family("logistic_regression", X, y, config)
    assert result.cv_rows == 1_000 and len(result.oof_scores) == len(result.oof_labels) == 1_000
    np.testing.assert_array_equal(result.oof_labels, y[picked])
    # the CV is that of the sample, the model that of every row
    sample = fit_family("logistic_regression", X.iloc[picked], y[picked], make_config(cv_max_rows=None))
    np.testing.assert_allclose(result.cv_scores, sample.cv_scores)
    everything = build_model("logistic_regression", config, len(X)).fit(X, y)
    np.testing.assert_allclose(result.model.predict_proba(X), everything.predict_proba(X))


def test_forests_on_big_tables_draw_at_most_forest_max_samples_rows_per_tree():
    config = make_config(forest_max_samples=500)
    assert "max_samples" not in estimator_params("random_forest", config, 500)
    assert estimator_params("random_forest", config, 5_000)["max_samples"] == 500
    assert "max_samples" not in estimator_params("xgboost", config, 5_000)
    own = make_config(
        forest_max_samples=500, params={"random_forest": {**FAST_PARAMS["random_forest"], "max_samples": 0.3}}
    )
    assert estimator_params("random_forest", own, 5_000)["max_samples"] == 0.3
    whole_rows = make_config(
        forest_max_samples=500, params={"random_forest": {**FAST_PARAMS["random_forest"], "bootstrap": False}}
    )
    assert "max_samples" not in estimator_params("random_forest", whole_rows, 5_000)
    X, y = separable(n=2_000)
    result = fit_family("random_forest", X, y, config)
    assert result.model.named_steps["model"].max_samples == 500 and result.params["max_samples"] == 500


# --- signature ---------------------------------------------------------------------------------------------------


def test_model_signature_has_probability_outputs_and_no_input_schema():
    # No input schema: MLflow would reject raw rows against a typed one and check every cell of an untyped
    # one; the pipeline's coercer names missing columns itself (tests/e2e/test_churn_training_dag.py).
    signature = model_signature(make_config(), np.zeros((3, 2)))
    assert signature.inputs is None
    assert signature.outputs.inputs[0].shape == (-1, 2)
    assert signature.outputs.inputs[0].type == np.dtype("float64")


@pytest.mark.parametrize(
    ("family", "encoding"),
    [("logistic_regression", "onehot"), ("random_forest", "ordinal"), ("xgboost", "ordinal"), ("lightgbm", "ordinal")],
)
def test_linear_models_get_one_hot_and_trees_ordinal_codes(data, family, encoding):
    X, y = data
    model = build_model(family, make_config()).fit(X, y)
    encoder = model.named_steps["features"].named_steps["encode"].named_transformers_["cat"]
    assert encoder.encoding == encoding
    names = model.named_steps["features"].get_feature_names_out().tolist()
    assert ("cat__grp" in names) == (encoding == "ordinal")
