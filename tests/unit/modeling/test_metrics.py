"""churnops.modeling.metrics: calibration error, holdout metrics, importance and the choice among candidates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churnops.config import ChurnopsConfig
from churnops.modeling.metrics import (
    choose_best,
    classification_metrics,
    comparison_table,
    expected_calibration_error,
    feature_importance,
)
from churnops.modeling.models import build_model
from tests.helpers import toy_dataset

# --- expected calibration error ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "proba"),
    [
        pytest.param([0, 0, 0, 1, 1, 1, 1, 0], [0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75], id="two-bins"),
        pytest.param([0, 0, 0, 0], [0.0, 0.0, 0.0, 0.0], id="all-zero"),
        pytest.param([1, 1], [1.0, 1.0], id="all-one-in-last-bin"),
        pytest.param([0, 1] * 5, [0.5] * 10, id="coin"),
    ],
)
def test_ece_is_zero_when_calibrated(y, proba):
    assert expected_calibration_error(np.array(y), np.array(proba)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("y", "proba", "n_bins", "expected"),
    [
        # bin [0.1,0.2): rate 0.5 vs 0.1 on 2 rows; bin [0.9,1]: rate 1 vs 0.9 on 2 rows -> (2*0.4 + 2*0.1) / 4
        ([0, 1, 1, 1], [0.1, 0.1, 0.9, 0.9], 10, 0.25),
        # two bins: 0.2 and 0.4 share [0,0.5), 0.8 is alone in [0.5,1] -> (2*|0.5-0.3| + 1*|0-0.8|) / 3
        ([1, 0, 0], [0.2, 0.4, 0.8], 2, (2 * 0.2 + 0.8) / 3),
        # every row in its own bin: mean |y - p|
        ([1, 0, 1, 0], [0.05, 0.35, 0.65, 0.95], 10, (0.95 + 0.35 + 0.35 + 0.95) / 4),
        # 1.0 falls in the last bin with 0.95
        ([0, 1], [1.0, 0.95], 10, abs(0.5 - 0.975)),
    ],
)
def test_ece_hand_computed(y, proba, n_bins, expected):
    assert expected_calibration_error(np.array(y), np.array(proba), n_bins=n_bins) == pytest.approx(expected)


# --- classification metrics --------------------------------------------------------------------------------------


METRIC_KEYS = {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier", "ece"}


def test_classification_metrics_hand_checked():
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.6, 0.4, 0.9])
    result = classification_metrics(y, proba)
    assert set(result) == METRIC_KEYS
    assert all(type(v) is float for v in result.values())
    expected = {
        "roc_auc": 0.75,  # 3 of 4 (positive, negative) pairs ranked right
        "pr_auc": 0.5 * 1 + 0.5 * 2 / 3,  # precision 1 at recall 0.5, 2/3 at recall 1
        "f1": 0.5,
        "precision": 0.5,
        "recall": 0.5,
        "accuracy": 0.5,  # one each of TP, FP, FN, TN
        "log_loss": -(2 * math.log(0.9) + 2 * math.log(0.4)) / 4,
        "brier": (0.01 + 0.36 + 0.36 + 0.01) / 4,
        "ece": (0.1 + 0.6 + 0.6 + 0.1) / 4,
    }
    assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("threshold", "precision", "recall", "accuracy"),
    [(0.5, 0.5, 0.5, 0.5), (0.35, 2 / 3, 1.0, 0.75), (0.95, 0.0, 0.0, 0.5), (0.9, 1.0, 0.5, 0.75)],
)
def test_classification_metrics_threshold(threshold, precision, recall, accuracy):
    result = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]), threshold=threshold)
    assert (result["precision"], result["recall"], result["accuracy"]) == pytest.approx((precision, recall, accuracy))
    assert result["roc_auc"] == pytest.approx(0.75)  # ranking metrics ignore the threshold


def test_classification_metrics_perfect_and_clipped():
    result = classification_metrics(np.array([0, 1, 0, 1]), np.array([0.0, 1.0, 0.0, 1.0]))
    assert result["roc_auc"] == result["pr_auc"] == result["f1"] == result["accuracy"] == 1.0
    assert result["brier"] == 0.0 and result["ece"] == 0.0
    assert 0 <= result["log_loss"] < 1e-12  # probabilities 0/1 are clipped, not log(0)


# --- choosing ----------------------------------------------------------------------------------------------------


def candidate(family: str, mean: float, std: float, test_roc_auc: float) -> dict:
    return {
        "family": family,
        "cv_roc_auc_mean": mean,
        "cv_roc_auc_std": std,
        "cv_folds": 5,
        "test_metrics": {"roc_auc": test_roc_auc, "ece": 0.02},
        "run_id": f"run-{family}",
    }


@pytest.mark.parametrize(
    ("candidates", "best"),
    [
        pytest.param(
            [candidate("logistic_regression", 0.84, 0.01, 0.90), candidate("xgboost", 0.85, 0.01, 0.80)],
            "xgboost",
            id="cv-beats-holdout",
        ),
        pytest.param(
            [candidate("lightgbm", 0.85, 0.03, 0.99), candidate("random_forest", 0.85, 0.01, 0.70)],
            "random_forest",
            id="tie-lower-std",
        ),
        pytest.param(
            [candidate("xgboost", 0.85, 0.01, 0.8), candidate("lightgbm", 0.85, 0.01, 0.8)],
            "lightgbm",
            id="full-tie-by-name",
        ),
        pytest.param([candidate("random_forest", 0.7, 0.2, 0.5)], "random_forest", id="single"),
    ],
)
def test_choose_best(candidates, best):
    chosen, reason = choose_best(candidates)
    assert chosen["family"] == best
    assert chosen is next(c for c in candidates if c["family"] == best)
    assert reason.startswith(f"{best} has the highest mean 5-fold CV ROC-AUC")
    assert reason.endswith("chosen on CV, not on the holdout")
    assert ("ahead of" in reason) == (len(candidates) > 1)


def test_choose_best_reason_names_the_runner_up():
    _, reason = choose_best(
        [
            candidate("logistic_regression", 0.80, 0.02, 0.9),
            candidate("xgboost", 0.8512, 0.0123, 0.8),
            candidate("lightgbm", 0.83, 0.01, 0.8),
        ]
    )
    assert "(0.8512 ± 0.0123)" in reason
    assert "ahead of lightgbm (0.8300)" in reason


def test_choose_best_without_candidates():
    with pytest.raises(ValueError, match="no candidate"):
        choose_best([])


def test_comparison_table_best_first():
    candidates = [
        candidate("logistic_regression", 0.80, 0.02, 0.95),
        candidate("xgboost", 0.85, 0.03, 0.81),
        candidate("random_forest", 0.85, 0.01, 0.82),
        candidate("lightgbm", 0.83, 0.01, 0.83),
    ]
    table = comparison_table(candidates)
    assert table["family"].tolist() == ["random_forest", "xgboost", "lightgbm", "logistic_regression"]
    assert table.columns.tolist() == [
        "family",
        "cv_roc_auc_mean",
        "cv_roc_auc_std",
        "test_roc_auc",
        "test_ece",
        "run_id",
    ]
    assert table.iloc[0]["run_id"] == "run-random_forest"
    assert table.iloc[0]["family"] == choose_best(candidates)[0]["family"]


def test_comparison_table_top_row_is_the_chosen_model_on_a_full_tie():
    candidates = [candidate("xgboost", 1.0, 0.0, 0.9), candidate("lightgbm", 1.0, 0.0, 0.9)]
    assert comparison_table(candidates).iloc[0]["family"] == choose_best(candidates)[0]["family"]


# --- feature importance ------------------------------------------------------------------------------------------


def toy_config() -> ChurnopsConfig:
    return ChurnopsConfig.model_validate(
        {
            "dataset": toy_dataset(["signal", "noise"], ["grp"]),
            "features": {"derived": [{"kind": "bins", "name": "signal_band", "column": "signal", "edges": [-1, 0, 1]}]},
            "training": {"params": {"random_forest": {"n_estimators": 20, "n_jobs": 1}}},
        }
    )


@pytest.fixture(scope="module")
def toy_data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 150
    signal = rng.normal(size=n)
    X = pd.DataFrame(
        {
            "signal": signal + rng.normal(scale=0.3, size=n),
            "noise": rng.normal(size=n),
            "grp": rng.choice(["a", "b"], size=n),
        }
    )
    return X, (signal > 0).astype(int)


def test_feature_importance_linear_uses_abs_coefficients(toy_data):
    X, y = toy_data
    model = build_model("logistic_regression", toy_config()).fit(X, y)
    importance = feature_importance(model)
    names = model.named_steps["features"].get_feature_names_out().tolist()
    coef = model.named_steps["model"].coef_.ravel()
    assert sorted(importance.index) == sorted(names)
    assert len(names) == len(coef)
    pd.testing.assert_series_equal(importance.sort_index(), pd.Series(np.abs(coef), index=names).sort_index())
    assert importance.is_monotonic_decreasing
    assert importance.index[0] == "num__signal"
    assert (coef < 0).any()  # so |coef| differs from coef somewhere


def test_feature_importance_tree(toy_data):
    X, y = toy_data
    model = build_model("random_forest", toy_config()).fit(X, y)
    importance = feature_importance(model)
    forest = model.named_steps["model"]
    assert len(importance) == forest.n_features_in_
    assert importance.sum() == pytest.approx(1.0)
    assert (importance >= 0).all() and importance.is_monotonic_decreasing
    assert importance["num__noise"] < importance["num__signal"]
    assert importance.to_dict() == pytest.approx(
        dict(zip(model.named_steps["features"].get_feature_names_out(), forest.feature_importances_, strict=True))
    )
