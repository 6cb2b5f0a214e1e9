"""churnops.monitoring.drift: feature, prediction and target drift against scipy, the p-value AND effect-size rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from churnops.features import MISSING
from churnops.monitoring.drift import (
    categorical_drift,
    drift_summary,
    feature_drift,
    numeric_drift,
    prediction_drift,
    target_drift,
)
from churnops.monitoring.sampling import sample_rows

# --- numeric_drift -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        pytest.param([1.0, 2.0, 3.0, 4.0, 5.0], [3.0, 4.0, 5.0, 6.0, 7.0, 8.0], id="shifted"),
        pytest.param([1.0, 1.0, 2.0, 2.0], [1.0, 2.0, 1.0, 2.0], id="identical-distribution"),
        pytest.param([0.5, np.nan, 1.5, 2.5, np.nan], [0.7, 1.1, np.nan, 9.0], id="with-nans"),
        pytest.param(list(np.linspace(0, 1, 300)), list(np.linspace(0.2, 1.4, 400)), id="ramp"),
    ],
)
def test_numeric_drift_equals_scipy_ks_on_non_null_values(reference, current):
    stats = numeric_drift(pd.Series(reference), pd.Series(current))
    ref = np.array([v for v in reference if not np.isnan(v)])
    cur = np.array([v for v in current if not np.isnan(v)])
    expected = ks_2samp(ref, cur)
    assert stats["test"] == "ks"
    assert stats["statistic"] == expected.statistic == stats["effect_size"]
    assert stats["p_value"] == expected.pvalue
    assert (stats["n_reference"], stats["n_current"]) == (len(ref), len(cur))
    assert stats["reference_null_fraction"] == (len(reference) - len(ref)) / len(reference)
    assert stats["current_null_fraction"] == (len(current) - len(cur)) / len(current)


def test_numeric_drift_parses_text_like_the_model_does():
    as_text = numeric_drift(pd.Series(["1", " 2.5", "x", ""]), pd.Series(["3", "4"]))
    as_numbers = numeric_drift(pd.Series([1.0, 2.5, np.nan, np.nan]), pd.Series([3.0, 4.0]))
    assert as_text == as_numbers
    assert as_text["reference_null_fraction"] == 0.5


@pytest.mark.parametrize(
    ("reference", "current", "null_fractions"),
    [
        pytest.param([1.0, 2.0], [], (0.0, 0.0), id="current-empty"),
        pytest.param([], [1.0, 2.0], (0.0, 0.0), id="reference-empty"),
        pytest.param([1.0, 2.0], [np.nan, np.nan], (0.0, 1.0), id="current-all-null"),
    ],
)
def test_numeric_drift_without_values_on_a_side_is_no_evidence(reference, current, null_fractions):
    stats = numeric_drift(pd.Series(reference, dtype="float64"), pd.Series(current, dtype="float64"))
    assert (stats["statistic"], stats["p_value"], stats["effect_size"]) == (0.0, 1.0, 0.0)
    assert (stats["reference_null_fraction"], stats["current_null_fraction"]) == null_fractions


# --- categorical_drift -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current", "table"),
    [
        # columns of the expected table: categories in any fixed order (the test does not depend on it)
        pytest.param(["a"] * 6 + ["b"] * 4, ["a"] * 3 + ["b"] * 7, [[6, 4], [3, 7]], id="two-categories"),
        pytest.param(
            ["a", "a", None, np.nan, "b", "  "],
            ["a", None, "b", "b", "b"],
            [[2, 1, 3], [1, 3, 1]],  # a, b, missing (None, NaN and blank alike)
            id="missing-is-a-category",
        ),
        pytest.param(
            ["a"] * 5 + ["b"] * 5,
            ["a"] * 4 + ["b"] * 2 + ["new"] * 4,
            [[5, 5, 0], [4, 2, 4]],
            id="category-only-in-current",
        ),
        pytest.param(
            ["a", "a", "gone", "gone", "b"],
            ["a", "b", "b"],
            [[2, 1, 2], [1, 2, 0]],
            id="category-only-in-reference",
        ),
        pytest.param([1, 0, 1.0, 0.0, "1"], ["0", "0", 1], [[2, 3], [2, 1]], id="1.0-and-1-are-one-category"),
    ],
)
def test_categorical_drift_equals_scipy_contingency_on_hand_built_table(reference, current, table):
    stats = categorical_drift(pd.Series(reference, dtype=object), pd.Series(current, dtype=object))
    expected = chi2_contingency(np.array(table), correction=False)
    n_total = sum(map(sum, table))
    assert stats["test"] == "chi2_contingency"
    assert stats["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert stats["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    shares = np.array(table) / np.array(table).sum(axis=1, keepdims=True)
    balanced = math.sqrt(0.5 * np.sum((shares[0] - shares[1]) ** 2 / (shares[0] + shares[1])))
    assert stats["effect_size"] == pytest.approx(balanced, rel=1e-12)
    if sum(table[0]) == sum(table[1]):  # equal sides: Cramér's V itself
        assert stats["effect_size"] == pytest.approx(math.sqrt(expected.statistic / n_total), rel=1e-12)
    assert stats["categories"] == len(table[0])
    assert (stats["n_reference"], stats["n_current"]) == (sum(table[0]), sum(table[1]))


def test_categorical_drift_reports_missing_shares():
    stats = categorical_drift(pd.Series(["a", None, "b", "b"]), pd.Series([None, MISSING, "", "a", "a"]))
    assert stats["reference_null_fraction"] == 0.25
    assert stats["current_null_fraction"] == 0.6  # None, a literal MISSING and a blank: one category


@pytest.mark.parametrize(
    ("table", "chi2", "cramers_v"),
    [
        # expected counts 20 in every cell: chi2 = 4 * 10² / 20 = 20, n = 80, V = sqrt(20 / 80)
        ([[30, 10], [10, 30]], 20.0, 0.5),
        # perfect separation: chi2 = n, V = 1
        ([[10, 0], [0, 10]], 20.0, 1.0),
        # 2 × 3 (min(2, 3) − 1 = 1); expected row shares 1/2: chi2 = 2 * (5²/10 + 5²/10 + 0) = 10, n = 60
        ([[15, 5, 10], [5, 15, 10]], 10.0, math.sqrt(10 / 60)),
    ],
)
def test_cramers_v_and_chi2_hand_computed(table, chi2, cramers_v):
    categories = [f"c{j}" for j in range(len(table[0]))]
    reference = pd.Series([c for c, n in zip(categories, table[0], strict=True) for _ in range(n)])
    current = pd.Series([c for c, n in zip(categories, table[1], strict=True) for _ in range(n)])
    stats = categorical_drift(reference, current)
    assert stats["statistic"] == pytest.approx(chi2)
    assert stats["effect_size"] == pytest.approx(cramers_v)
    degrees = len(table[0]) - 1
    if degrees == 1:  # chi-square with 1 degree of freedom: p = erfc(sqrt(chi2 / 2))
        assert stats["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))


@pytest.mark.parametrize(
    ("reference", "current", "categories"),
    [
        pytest.param(["a"] * 5, ["a"] * 3, 1, id="single-category"),
        pytest.param([None] * 4, [np.nan] * 2, 1, id="all-missing-both-sides"),
        pytest.param(["a", "b"], [], 2, id="current-empty"),
        pytest.param([], [], 0, id="both-empty"),
    ],
)
def test_categorical_drift_degenerate_tables_are_no_evidence(reference, current, categories):
    stats = categorical_drift(pd.Series(reference, dtype=object), pd.Series(current, dtype=object))
    assert (stats["statistic"], stats["p_value"], stats["effect_size"]) == (0.0, 1.0, 0.0)
    assert stats["categories"] == categories


def test_categorical_drift_ignores_declared_but_unused_pandas_categories():
    dtype = pd.CategoricalDtype(["a", "b", "never"])
    stats = categorical_drift(pd.Series(["a", "a", "b"], dtype=dtype), pd.Series(["b", "b", "a"], dtype=dtype))
    expected = chi2_contingency(np.array([[2, 1], [1, 2]]), correction=False)
    assert stats["categories"] == 2
    assert stats["p_value"] == pytest.approx(expected.pvalue)


# --- feature_drift: the AND rule and the sampling cap -------------------------------------------------------------


def _normal_frames(n: int, shift: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(0, 1, n)}), pd.DataFrame({"x": rng.normal(shift, 1, n)})


FIVE_ROWS = (pd.DataFrame({"x": [1.0, 2, 3, 4, 5]}), pd.DataFrame({"x": [4.0, 5, 6, 7, 8]}))


@pytest.mark.parametrize(
    ("frames", "significant", "large", "drifted"),
    [
        # a million rows: a 0.01-sd shift is "significant" yet negligible (KS ≈ 0.004) → not drift
        pytest.param(lambda: _normal_frames(1_000_000, 0.01), True, False, False, id="tiny-shift-huge-sample"),
        # a one-sd shift is both → drift
        pytest.param(lambda: _normal_frames(1_000_000, 1.0), True, True, True, id="big-shift-huge-sample"),
        # five rows a side: KS 0.6 arises by chance (p ≈ 0.36) → not drift
        pytest.param(lambda: FIVE_ROWS, False, True, False, id="big-effect-tiny-sample"),
    ],
)
def test_drift_needs_small_p_value_and_large_effect(frames, significant, large, drifted, monitoring):
    reference, current = frames()
    (row,) = feature_drift(reference, current, ["x"], [], monitoring(sample_size=1_000_000))
    assert (row["p_value"] < 0.05) is significant
    assert (row["effect_size"] > 0.1) is large
    assert row["drifted"] is drifted
    assert row["sample_size"] == {"reference": len(reference), "current": len(current)}


def test_categorical_and_rule_uses_cramers_v(monitoring):
    # 50.5 % vs 49.5 % "a" on 200k rows a side: p < 0.05 but V ≈ 0.01 → not drift; 80 % vs 20 % → drift
    big = 200_000
    tiny = categorical_drift(pd.Series(["a"] * 101_000 + ["b"] * 99_000), pd.Series(["a"] * 99_000 + ["b"] * 101_000))
    assert tiny["p_value"] < 0.05 and tiny["effect_size"] < 0.1
    rows = feature_drift(
        pd.DataFrame({"small": ["a"] * 101_000 + ["b"] * 99_000, "large": ["a"] * 160_000 + ["b"] * 40_000}),
        pd.DataFrame({"small": ["a"] * 99_000 + ["b"] * 101_000, "large": ["a"] * 40_000 + ["b"] * 160_000}),
        [],
        ["small", "large"],
        monitoring(sample_size=big),
    )
    assert [(r["feature"], r["kind"], r["drifted"]) for r in rows] == [
        ("small", "categorical", False),
        ("large", "categorical", True),
    ]


def test_feature_drift_caps_each_side_and_is_deterministic(monitoring):
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 1000), "c": rng.choice(["a", "b", "c"], 1000), "extra": 1})
    current = pd.DataFrame({"x": rng.normal(0.3, 1, 700), "c": rng.choice(["a", "b"], 700), "extra": 2})
    config = monitoring(sample_size=100, seed=7)
    rows = feature_drift(reference, current, ["x"], ["c"], config)
    assert [r["feature"] for r in rows] == ["x", "c"]
    assert rows[0]["sample_size"] == {"reference": 100, "current": 100}  # KS: capped samples
    assert (rows[0]["n_reference"], rows[0]["n_current"]) == (100, 100)
    assert rows[1]["sample_size"] == {"reference": 1000, "current": 700}  # chi-square: counts of every row
    assert (rows[1]["n_reference"], rows[1]["n_current"]) == (1000, 700)

    # the documented seeds: reference with seed, current with seed + 1
    ref, cur = sample_rows(reference, 100, 7), sample_rows(current, 100, 8)
    expected = ks_2samp(ref["x"].to_numpy(), cur["x"].to_numpy())
    assert (rows[0]["statistic"], rows[0]["p_value"]) == (expected.statistic, expected.pvalue)
    sides = pd.Series(["ref"] * 1000 + ["cur"] * 700)
    counts = pd.crosstab(sides, pd.concat([reference["c"], current["c"]]).to_numpy())
    assert rows[1]["p_value"] == pytest.approx(chi2_contingency(counts.to_numpy(), correction=False).pvalue)

    assert feature_drift(reference, current, ["x"], ["c"], config) == rows
    assert feature_drift(reference, current, ["x"], ["c"], monitoring(sample_size=100, seed=8)) != rows


def test_cramers_v_of_the_balanced_table_does_not_shrink_with_the_larger_side():
    reference = pd.Series(["a"] * 600 + ["b"] * 400)
    equal = categorical_drift(reference, pd.Series(["a"] * 400 + ["b"] * 600))
    assert equal["effect_size"] == pytest.approx(0.2)  # |0.6 - 0.4| for 2 × 2 with equal sides: plain Cramér's V
    bigger = categorical_drift(reference, pd.Series(["a"] * 40_000 + ["b"] * 60_000))
    assert bigger["effect_size"] == pytest.approx(equal["effect_size"])  # plain V would be ~0.04
    assert bigger["p_value"] < equal["p_value"]
    table = np.array([[600, 400], [40_000, 60_000]])
    assert bigger["statistic"] == pytest.approx(chi2_contingency(table, correction=False).statistic)


def test_feature_drift_small_frames_are_compared_whole(monitoring):
    reference, current = _normal_frames(150, 0.0)
    (row,) = feature_drift(reference, current.iloc[:120], ["x"], [], monitoring(sample_size=50_000))
    assert row["sample_size"] == {"reference": 150, "current": 120}
    assert row["statistic"] == ks_2samp(reference["x"].to_numpy(), current["x"].to_numpy()[:120]).statistic


def test_feature_drift_names_missing_columns(monitoring):
    with pytest.raises(ValueError, match=r"current data lacks columns \['c'\]"):
        feature_drift(pd.DataFrame({"x": [1.0], "c": ["a"]}), pd.DataFrame({"x": [1.0]}), ["x"], ["c"], monitoring())


# --- drift_summary -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_features", "n_drifted", "share", "dataset_drift"),
    [
        (10, 3, 0.3, False),  # exactly the threshold share: not dataset drift
        (20, 6, 0.3, False),
        (10, 4, 0.4, True),
        (20, 7, 0.35, True),
        (19, 6, 6 / 19, True),  # 31.6 %
        (10, 0, 0.0, False),
        (0, 0, 0.0, False),
    ],
)
def test_drift_summary_share_boundary(n_features, n_drifted, share, dataset_drift, monitoring):
    rows = [{"feature": f"f{i}", "drifted": i < n_drifted} for i in range(n_features)]
    summary = drift_summary(rows, monitoring())
    assert summary == {
        "n_features": n_features,
        "drifted_features": [f"f{i}" for i in range(n_drifted)],
        "drift_share": share,
        "dataset_drift": dataset_drift,
    }


# --- prediction and target drift ---------------------------------------------------------------------------------


def test_prediction_drift_equals_scipy_and_follows_the_rule(monitoring):
    rng = np.random.default_rng(2)
    reference = rng.beta(2, 5, 5000)
    same, shifted = rng.beta(2, 5, 4000), rng.beta(5, 2, 4000)

    stable = prediction_drift(reference, same, monitoring())
    expected = ks_2samp(reference, same)
    assert (stable["statistic"], stable["p_value"]) == (expected.statistic, expected.pvalue)
    assert stable["drifted"] is False
    assert stable["sample_size"] == {"reference": 5000, "current": 4000}

    moved = prediction_drift(reference, shifted, monitoring())
    assert moved["drifted"] is True and moved["effect_size"] > 0.5

    # predict_proba's two columns are accepted; the positive class is used
    def two_columns(p):
        return np.column_stack([1 - p, p])

    assert prediction_drift(two_columns(reference), two_columns(same), monitoring()) == stable


def test_prediction_drift_tiny_shift_on_many_scores_is_not_drift(monitoring):
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0.3, 0.1, 1_000_000), rng.normal(0.301, 0.1, 1_000_000)
    stats = prediction_drift(reference, current, monitoring(sample_size=1_000_000))
    assert stats["p_value"] < 0.05 and stats["effect_size"] < 0.1 and stats["drifted"] is False


def test_prediction_drift_caps_the_sample(monitoring):
    rng = np.random.default_rng(4)
    stats = prediction_drift(rng.random(3000), rng.random(2000), monitoring(sample_size=500))
    assert stats["sample_size"] == {"reference": 500, "current": 500}
    assert (stats["n_reference"], stats["n_current"]) == (500, 500)


@pytest.mark.parametrize(
    ("reference", "current", "drifted"),
    [
        # 10 % vs 40 % positives: V ≈ 0.35 with 2000 labels a side
        pytest.param((1800, 200), (1200, 800), True, id="rate-jump"),
        # 20 % vs 21 %: neither significant nor large
        pytest.param((1600, 400), (1580, 420), False, id="stable"),
        # 20 % vs 22 % on 45k a side: significant, but V ≈ 0.024
        pytest.param((36000, 9000), (35100, 9900), False, id="significant-but-small"),
    ],
)
def test_target_drift_equals_scipy_on_the_label_table(reference, current, drifted, monitoring):
    ref = np.array([0] * reference[0] + [1] * reference[1])
    cur = np.array([0] * current[0] + [1] * current[1])
    stats = target_drift(ref, cur, monitoring())
    expected = chi2_contingency(np.array([reference, current]), correction=False)
    assert stats["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert stats["effect_size"] == pytest.approx(math.sqrt(expected.statistic / (sum(reference) + sum(current))))
    assert stats["drifted"] is drifted
    if reference == (36000, 9000):
        assert stats["p_value"] < 0.05


def test_target_drift_without_current_labels(monitoring):
    stats = target_drift(np.array([0, 1, 1, 0]), np.array([], dtype="int64"), monitoring())
    assert stats["p_value"] == 1.0 and stats["n_current"] == 0 and stats["drifted"] is False
