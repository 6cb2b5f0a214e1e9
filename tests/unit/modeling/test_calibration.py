"""Calibration: the maps, the ``auto`` rule, and the calibrated pipeline that is logged and served."""

from __future__ import annotations

import pickle

import cloudpickle
import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from churnops.modeling import (
    MAX_ROC_AUC_DROP,
    CalibratedPipeline,
    ScoreCalibrator,
    auto_choice,
    build_model,
    calibrated_model,
    calibrated_scores,
    choose_calibration,
    expected_calibration_error,
    feature_importance,
)
from tests.helpers import telco_training_rows


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a true probability, and scores pushed away from it toward 0 and 1 (ranking kept)."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.02, 0.98, size=n)
    y = (rng.uniform(size=n) < truth).astype(int)
    logit = np.log(truth / (1 - truth))
    return y, 1 / (1 + np.exp(-3 * logit))


def calibrated_two_levels() -> tuple[np.ndarray, np.ndarray]:
    """Holdout scores whose ECE is exactly 0: 0.25 for 400 rows (100 churn), 0.75 for 400 (300 churn)."""
    scores = np.r_[np.full(400, 0.25), np.full(400, 0.75)]
    y = np.r_[np.ones(100), np.zeros(300), np.ones(300), np.zeros(100)].astype(int)
    return y, scores


# --- the maps ----------------------------------------------------------------------------------------------------


def test_the_isotonic_map_is_scikit_learns_isotonic_regression_bit_for_bit():
    y, scores = overconfident(3000, 0)
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    calibrator = ScoreCalibrator("isotonic").fit(scores, y)
    probe = np.r_[overconfident(2000, 1)[1], -0.5, 0.0, 1.0, 1.5, scores.min(), scores.max()]
    assert np.array_equal(calibrator.transform(probe), fitted.predict(probe))


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_a_map_fitted_on_overconfident_scores_lowers_the_ece_of_new_ones(method):
    y, scores = overconfident(4000, 0)
    y_new, new = overconfident(4000, 1)
    calibrator = ScoreCalibrator(method).fit(scores, y)
    after = calibrator.transform(new)
    assert expected_calibration_error(y_new, after) < expected_calibration_error(y_new, new) / 2
    assert after.dtype == np.float64 and after.shape == new.shape
    assert np.all((after >= 0) & (after <= 1))


def test_the_sigmoid_map_keeps_the_order_and_so_the_roc_auc():
    y, scores = overconfident(4000, 0)
    calibrator = ScoreCalibrator("sigmoid").fit(scores, y)
    after = calibrator.transform(scores)
    assert 0 < calibrator.coef_ < 1, "overconfident scores are tempered"
    assert np.array_equal(np.argsort(after, kind="stable"), np.argsort(scores, kind="stable"))
    assert roc_auc_score(y, after) == roc_auc_score(y, scores)
    assert np.isfinite(calibrator.transform(np.array([0.0, 1.0]))).all()


@pytest.mark.parametrize(
    ("method", "scores", "y", "match"),
    [
        ("platt", [0.1, 0.9], [0, 1], "unknown calibration method"),
        ("isotonic", [0.1, 0.9], [0, 1, 1], "3 labels but 2 scores"),
        ("sigmoid", [0.1, 0.9], [1, 1], "both classes"),
    ],
)
def test_a_map_refuses_what_it_cannot_fit(method, scores, y, match):
    with pytest.raises(ValueError, match=match):
        ScoreCalibrator(method).fit(scores, y)


# --- the auto rule -----------------------------------------------------------------------------------------------

NONE = {"ece": 0.030, "roc_auc": 0.860}


@pytest.mark.parametrize(
    ("sigmoid", "isotonic", "expected"),
    [
        ({"ece": 0.020, "roc_auc": 0.860}, {"ece": 0.025, "roc_auc": 0.860}, "sigmoid"),
        ({"ece": 0.025, "roc_auc": 0.860}, {"ece": 0.020, "roc_auc": 0.859}, "isotonic"),
        # isotonic is better calibrated but costs more than MAX_ROC_AUC_DROP: the sigmoid is kept
        ({"ece": 0.025, "roc_auc": 0.860}, {"ece": 0.010, "roc_auc": 0.8579}, "sigmoid"),
        ({"ece": 0.035, "roc_auc": 0.860}, {"ece": 0.010, "roc_auc": 0.860 - MAX_ROC_AUC_DROP}, "isotonic"),
        ({"ece": 0.030, "roc_auc": 0.860}, {"ece": 0.010, "roc_auc": 0.850}, "none"),  # an equal ECE is no gain
        ({"ece": 0.031, "roc_auc": 0.870}, {"ece": 0.040, "roc_auc": 0.870}, "none"),
        ({"ece": 0.020, "roc_auc": 0.860}, {"ece": 0.020, "roc_auc": 0.860}, "sigmoid"),  # a tie: the sigmoid
    ],
)
def test_auto_keeps_the_best_calibrated_map_only_when_it_lowers_the_ece_within_the_roc_auc_drop(
    sigmoid, isotonic, expected
):
    assert auto_choice({"none": NONE, "sigmoid": sigmoid, "isotonic": isotonic}) == expected


def test_auto_calibrates_overconfident_scores_and_measures_every_map_on_the_holdout():
    y, scores = overconfident(4000, 0)
    y_test, test = overconfident(2000, 1)
    choice = choose_calibration("auto", y, scores, y_test, test)
    assert choice.setting == "auto" and choice.method in {"isotonic", "sigmoid"}
    assert set(choice.holdout) == {"none", "isotonic", "sigmoid"}
    after = choice.calibrator.transform(test)
    assert choice.holdout[choice.method]["ece"] == expected_calibration_error(y_test, after)
    assert choice.holdout[choice.method]["ece"] < choice.holdout["none"]["ece"]
    assert choice.holdout["none"]["roc_auc"] - choice.holdout[choice.method]["roc_auc"] <= MAX_ROC_AUC_DROP
    assert choice.method in choice.reason


def test_auto_leaves_a_calibrated_holdout_alone_and_an_explicit_map_is_applied_anyway():
    y, scores = overconfident(4000, 0)
    y_test, test = calibrated_two_levels()
    assert expected_calibration_error(y_test, test) == 0.0
    auto = choose_calibration("auto", y, scores, y_test, test)
    assert auto.method == "none" and auto.calibrator is None and "kept" in auto.reason
    assert set(auto.holdout) == {"none", "isotonic", "sigmoid"}
    isotonic = choose_calibration("isotonic", y, scores, y_test, test)
    assert isotonic.method == "isotonic" and isinstance(isotonic.calibrator, ScoreCalibrator)
    assert set(isotonic.holdout) == {"none", "isotonic"}
    assert isotonic.holdout["isotonic"]["ece"] > 0 == isotonic.holdout["none"]["ece"]


def test_none_fits_nothing():
    y, scores = overconfident(1000, 0)
    choice = choose_calibration("none", y, scores, y, scores)
    assert choice.method == "none" and choice.calibrator is None and set(choice.holdout) == {"none"}


# --- the calibrated pipeline -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def telco():
    return telco_training_rows(1200, {"lightgbm": {"n_estimators": 20}})


@pytest.fixture(scope="module")
def fitted(telco):
    config, X, y = telco
    return build_model("lightgbm", config).fit(X[:800], y[:800])


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_the_calibrated_pipeline_serves_the_calibrated_probability_of_its_estimator(telco, fitted, method):
    _, X, y = telco
    calibrator = ScoreCalibrator(method).fit(fitted.predict_proba(X[800:1000])[:, 1], y[800:1000])
    model = calibrated_model(fitted, calibrator)
    rows = X[1000:]
    raw = fitted.predict_proba(rows)
    proba = model.predict_proba(rows)
    assert isinstance(model, CalibratedPipeline) and model.steps == fitted.steps
    assert np.array_equal(proba[:, 1], calibrator.transform(raw[:, 1]))
    assert np.array_equal(
        proba[:, 1], calibrated_scores(model, model[-1].predict_proba(model[:-1].transform(rows))[:, 1])
    )
    assert not np.array_equal(proba[:, 1], raw[:, 1])
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.predict(rows), np.argmax(proba, axis=1))
    assert np.allclose(np.exp(model.predict_log_proba(rows)), proba)
    assert feature_importance(model).equals(feature_importance(fitted)), "the estimator is read as before"
    # pickled by reference (cloudpickle, as MLflow logs it, and plain pickle): the same scores after a round trip
    for dumps in (pickle.dumps, cloudpickle.dumps):
        again = pickle.loads(dumps(model))
        assert type(again) is CalibratedPipeline and again.calibrator.method == method
        assert np.array_equal(again.predict_proba(rows), proba)


def test_without_a_calibrator_the_model_is_left_as_it_is(telco, fitted):
    _, X, _ = telco
    assert calibrated_model(fitted, None) is fitted
    raw = fitted.predict_proba(X[1000:])[:, 1]
    assert np.array_equal(calibrated_scores(fitted, raw), raw)
    assert np.array_equal(CalibratedPipeline(fitted.steps).predict_proba(X[1000:])[:, 1], raw)
    assert type(fitted) is Pipeline


def test_the_pyfunc_of_a_calibrated_model_returns_the_calibrated_probabilities(telco, fitted, tmp_path):
    import mlflow

    _, X, y = telco
    calibrator = ScoreCalibrator("isotonic").fit(fitted.predict_proba(X[800:1000])[:, 1], y[800:1000])
    model = calibrated_model(fitted, calibrator)
    mlflow.sklearn.save_model(
        model, str(tmp_path / "model"), serialization_format="cloudpickle", pyfunc_predict_fn="predict_proba"
    )
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    rows = X[1000:]
    assert np.array_equal(np.asarray(loaded.predict(rows)), model.predict_proba(rows))
    assert type(loaded.get_raw_model()) is CalibratedPipeline


def test_the_calibration_figure_draws_the_uncalibrated_curve_beside_the_served_one():
    import matplotlib.pyplot as plt
    import pandas as pd

    from churnops.modeling import diagnostic_figures

    y, raw = overconfident(2000, 0)
    served = ScoreCalibrator("sigmoid").fit(raw, y).transform(raw)
    importance = pd.Series([1.0], index=["x"])

    def labels(uncalibrated):
        figures = diagnostic_figures(y, served, importance, "toy", 0.5, uncalibrated)
        shown = [text.get_text() for text in figures["calibration.png"].axes[0].get_legend().get_texts()]
        for figure in figures.values():
            plt.close(figure)
        return shown

    assert [label for label in labels(raw) if label != "Perfectly calibrated"] == ["served", "uncalibrated"]
    assert [label for label in labels(served) if label != "Perfectly calibrated"] == ["served"]
    assert [label for label in labels(None) if label != "Perfectly calibrated"] == ["served"]
