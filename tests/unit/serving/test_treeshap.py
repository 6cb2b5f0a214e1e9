"""LightGBM's TreeSHAP tabulated per tree: ``pred_contrib``'s contributions, however a split reads a value."""

from __future__ import annotations

import lightgbm
import numpy as np
import pytest

from churnops.serving.treeshap import tabulate


def rows(count: int, seed: int) -> np.ndarray:
    """Numbers with NaNs, exact zeros, tiny values either side of LightGBM's zero band, and repeats."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(count, 5))
    X[:, 1] = rng.integers(0, 4, count)  # few distinct values: thresholds between them
    X[rng.random((count, 5)) < 0.1] = np.nan
    X[rng.random((count, 5)) < 0.1] = 0.0
    X[rng.random((count, 5)) < 0.02] = 1e-36
    X[rng.random((count, 5)) < 0.02] = -1e-34
    return X


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 4},
        {"num_leaves": 8, "max_depth": 3},
        {"num_leaves": 4, "zero_as_missing": True},
        {"num_leaves": 4, "use_missing": False},
    ],
    ids=["missing-nan", "deeper", "zero-as-missing", "no-missing"],
)
def test_the_table_gives_lightgbms_contributions(params):
    X = rows(3000, 0)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) / 2 + np.isnan(X[:, 2]) > 0.8).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=40, learning_rate=0.2, verbose=-1, **params).fit(X, y)
    booster = model.booster_
    table = tabulate(booster, booster.num_feature())
    assert table is not None
    fresh = rows(2000, 1)
    expected = booster.predict(fresh, pred_contrib=True)[:, :-1]
    got = table(fresh)
    assert got.shape == expected.shape and np.abs(expected).sum() > 0
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_a_model_with_categorical_splits_is_not_tabulated():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 6, 2000), rng.normal(size=2000)]).astype("float64")
    y = (np.isin(X[:, 0], [1, 4]) ^ (X[:, 1] > 1)).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=4, verbose=-1, min_data_per_group=5, cat_smooth=1)
    booster = model.fit(X, y, categorical_feature=[0]).booster_
    assert tabulate(booster, booster.num_feature()) is None
