"""churnops.features: raw-input coercion, derived features and the preprocessing pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from churnops.config import ChurnopsConfig, load_config
from churnops.features import (
    MISSING,
    CategoryEncoder,
    DerivedFeatures,
    RawInputCoercer,
    build_preprocessor,
    derived_columns,
    text_categorical,
)

# --- RawInputCoercer ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["29.85", " 12 ", "1e3", "-4"], [29.85, 12.0, 1000.0, -4.0]),
        ([12, 0, -3, 7], [12.0, 0.0, -3.0, 7.0]),
        ([1.5, np.nan, np.inf, -np.inf], [1.5, np.nan, np.nan, np.nan]),
        (["", " ", None, "abc"], [np.nan] * 4),
        (["inf", "-inf", "nan", "NA"], [np.nan] * 4),
        ([12, "29.85", " ", None], [12.0, 29.85, np.nan, np.nan]),
        ([True, False, True, False], [1.0, 0.0, 1.0, 0.0]),
        (pd.array([3, None, 5, 6], dtype="Int64"), [3.0, np.nan, 5.0, 6.0]),
    ],
)
def test_coercer_numeric(values, expected):
    X = pd.DataFrame({"n": values})
    out = RawInputCoercer(["n"], []).fit(X).transform(X)
    assert out["n"].dtype == np.float64
    np.testing.assert_array_equal(out["n"].to_numpy(), np.asarray(expected, dtype=float))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 0, 1], ["1", "0", "1"]),
        ([1.0, 0.0, np.nan], ["1", "0", MISSING]),
        ([0.5, 2.0, -1.0], ["0.5", "2", "-1"]),
        (["Yes", " No ", ""], ["Yes", "No", MISSING]),
        ([None, "a", "  "], [MISSING, "a", MISSING]),
        (["1.0", "01", "1"], ["1.0", "01", "1"]),
        (pd.array([1, None, 0], dtype="Int64"), ["1", MISSING, "0"]),
        (np.array([1.0, np.nan, 0.0], dtype="float32"), ["1", MISSING, "0"]),
    ],
)
def test_coercer_categorical(values, expected):
    X = pd.DataFrame({"c": values})
    out = RawInputCoercer([], ["c"]).fit(X).transform(X)
    assert out["c"].dtype == object
    assert out["c"].tolist() == expected


@pytest.mark.parametrize(
    "values",
    [
        [1, 0, 1],
        [1.0, 0.0, np.nan],
        ["Yes", " No ", "", None, "No"],
        [None, "a", "  "],
        [1, "1", True, " x "],
        pd.array([1, None, 0], dtype="Int64"),
        pd.Categorical(["b", None, " a", "a"]),
        pd.Categorical([1, 2, None]),
        pd.array(["a", None, " b"], dtype="string"),
    ],
)
def test_coercer_as_category_gives_the_same_labels_as_categories(values):
    X = pd.DataFrame({"c": values})
    as_object = RawInputCoercer([], ["c"]).fit(X).transform(X)["c"]
    as_category = RawInputCoercer([], ["c"], as_category=True).fit(X).transform(X)["c"]
    assert isinstance(as_category.dtype, pd.CategoricalDtype)
    assert as_category.astype(object).tolist() == as_object.tolist()
    assert as_category.cat.categories.tolist() == sorted(set(as_object))  # sorted, no unused category


def test_text_categorical_keeps_exotic_nulls_as_text_reads_them():
    from decimal import Decimal

    values = pd.Series(["a", Decimal("NaN"), None], dtype=object)
    assert text_categorical(values).astype(object).tolist() == ["a", "NaN", MISSING]


def test_coercer_pickled_before_as_category_keeps_object_output():
    # A registered model pickled by an earlier churnops has no ``as_category`` attribute.
    old = RawInputCoercer.__new__(RawInputCoercer)
    old.__dict__.update({"numeric": ["n"], "categorical": ["c"], "columns_": ["n", "c"]})
    out = old.transform(pd.DataFrame({"n": ["1"], "c": [" a "]}))
    assert out["c"].dtype == object and out["c"].tolist() == ["a"]


def test_coercer_categorical_pd_na_is_missing():
    X = pd.DataFrame({"c": pd.array(["a", None, "b"], dtype="string")})
    out = RawInputCoercer([], ["c"]).fit(X).transform(X)
    assert out["c"].tolist() == ["a", MISSING, "b"]


def test_coercer_drops_extra_columns_and_orders_output():
    X = pd.DataFrame({"extra": [1, 2], "c": ["x", "y"], "n": ["1", "2"], "more": ["a", "b"]}, index=[10, 20])
    coercer = RawInputCoercer(["n"], ["c"]).fit(X)
    out = coercer.transform(X)
    assert out.columns.tolist() == ["n", "c"]
    assert out.index.tolist() == [10, 20]
    assert coercer.get_feature_names_out().tolist() == ["n", "c"]
    assert X["n"].tolist() == ["1", "2"]  # input untouched


def test_coercer_raises_on_missing_columns():
    X = pd.DataFrame({"n": [1.0], "c": ["a"]})
    with pytest.raises(ValueError, match=r"lacks columns \['c'\]"):
        RawInputCoercer(["n"], ["c"]).fit(X[["n"]])
    coercer = RawInputCoercer(["n"], ["c"]).fit(X)
    with pytest.raises(ValueError, match=r"lacks columns \['n'\]"):
        coercer.transform(X[["c"]])
    with pytest.raises(NotFittedError):
        RawInputCoercer(["n"], ["c"]).transform(X)


# --- DerivedFeatures ---------------------------------------------------------------------------------------------


def derive(spec: dict, frame: pd.DataFrame) -> list:
    out = DerivedFeatures([spec]).fit(frame).transform(frame)
    return out[spec["name"]].tolist()


RATIO = {"kind": "ratio", "name": "r", "numerator": "a", "denominator": "b"}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (10.0, 4.0, 2.5),
        (0.0, 5.0, 0.0),
        (10.0, 0.0, np.nan),
        (0.0, 0.0, np.nan),
        (10.0, -0.0, np.nan),
        (np.nan, 2.0, np.nan),
        (3.0, np.nan, np.nan),
        (-6.0, 3.0, -2.0),
    ],
)
def test_ratio(a, b, expected):
    result = derive(RATIO, pd.DataFrame({"a": [a], "b": [b]}))
    np.testing.assert_array_equal(result, [expected])


def test_ratio_is_float_and_keeps_index():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 0.0]}, index=[5, 3])
    out = DerivedFeatures([RATIO]).fit(frame).transform(frame)
    assert out["r"].dtype == np.float64
    assert out.index.tolist() == [5, 3]
    assert frame.columns.tolist() == ["a", "b"]  # input untouched


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (("Yes", "Yes", "Yes"), 3.0),
        (("Yes", "No", MISSING), 1.0),
        (("No", "No internet service", "yes"), 0.0),
        ((MISSING, MISSING, MISSING), 0.0),
    ],
)
def test_count_equal(row, expected):
    frame = pd.DataFrame([row], columns=["p", "q", "s"])
    spec = {"kind": "count_equal", "name": "n", "columns": ["p", "q", "s"], "value": "Yes"}
    assert derive(spec, frame) == [expected]


def test_count_equal_value_compares_as_text():
    frame = pd.DataFrame({"p": ["1", "0"], "q": ["1", "1"]})
    spec = {"kind": "count_equal", "name": "n", "columns": ["p", "q"], "value": 1}
    assert derive(spec, frame) == [2.0, 1.0]


def test_count_equal_on_categoricals_matches_object_columns():
    spec = {"kind": "count_equal", "name": "n", "columns": ["p", "q"], "value": "Yes"}
    frame = pd.DataFrame({"p": ["Yes", "No", "Yes", MISSING], "q": ["Yes", "Yes", "no", "Yes"]})
    categorical = frame.astype("category")
    assert derive(spec, categorical) == derive(spec, frame) == [2.0, 1.0, 1.0, 1.0]
    assert derive(spec, frame.assign(q=pd.Categorical(["No"] * 4))) == [1.0, 0.0, 1.0, 0.0]  # value not a category


BINS = {"kind": "bins", "name": "band", "column": "t", "edges": [0, 6, 12, 24.5]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1.0, "<0"),
        (0.0, "[0,6)"),
        (5.99, "[0,6)"),
        (6.0, "[6,12)"),
        (24.0, "[12,24.5)"),
        (24.5, ">=24.5"),
        (1000.0, ">=24.5"),
        (np.nan, MISSING),
    ],
)
def test_bins(value, expected):
    assert derive(BINS, pd.DataFrame({"t": [value]})) == [expected]


def test_derived_features_names_and_errors():
    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "t": [3.0]})
    step = DerivedFeatures([RATIO, BINS]).fit(frame)
    assert step.get_feature_names_out().tolist() == ["a", "b", "t", "r", "band"]
    assert step.transform(frame).columns.tolist() == ["a", "b", "t", "r", "band"]
    assert DerivedFeatures().fit(frame).transform(frame).equals(frame)
    with pytest.raises(ValueError, match="unknown derived feature kind 'log'"):
        DerivedFeatures([{"kind": "log", "name": "l"}]).fit(frame)


# --- CategoryEncoder ---------------------------------------------------------------------------------------------


def categorical_frame(values_a, values_b) -> pd.DataFrame:
    X = pd.DataFrame({"a": values_a, "b": values_b})
    return RawInputCoercer([], ["a", "b"], as_category=True).fit(X).transform(X)


def test_one_hot_equals_scikit_learns_one_hot_encoder():
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    train = categorical_frame(rng.choice(["x", "y", "z", ""], 500), rng.choice([0, 1], 500))
    new = categorical_frame(rng.choice(["x", "w", "z", None], 300), rng.choice([1, 2], 300))  # w, 2: unseen
    ours = CategoryEncoder("onehot").fit(train)
    sklearn = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(train.astype(object))
    np.testing.assert_array_equal(ours.transform(new), sklearn.transform(new.astype(object)))
    assert ours.get_feature_names_out().tolist() == sklearn.get_feature_names_out().tolist()


def test_ordinal_codes_follow_sorted_categories_and_unseen_is_nan():
    train = categorical_frame(["y", "x", "", "y"], [1, 0, 0, 1])
    encoder = CategoryEncoder("ordinal").fit(train)
    out = encoder.transform(categorical_frame(["x", "y", "new", None], [0, 1, 5, 1]))
    expected = [[1, 0], [2, 1], [np.nan, np.nan], [0, 1]]  # categories: [__missing__, x, y], [0, 1]
    np.testing.assert_array_equal(out, np.asarray(expected, dtype=float))
    assert encoder.get_feature_names_out().tolist() == ["a", "b"]


def test_encoder_reads_object_columns_as_the_coercer_would():
    train = categorical_frame(["x", "y"], [0, 1])
    encoder = CategoryEncoder("ordinal").fit(train)
    raw = pd.DataFrame({"a": [" y ", None], "b": [1.0, 0.0]})
    np.testing.assert_array_equal(encoder.transform(raw), [[1, 1], [np.nan, 0]])


def test_encoder_errors():
    with pytest.raises(ValueError, match="unknown encoding 'hash'"):
        CategoryEncoder("hash").fit(categorical_frame(["x"], [0]))
    with pytest.raises(NotFittedError):
        CategoryEncoder().transform(categorical_frame(["x"], [0]))
    with pytest.raises(ValueError, match=r"input lacks columns \['b'\]"):
        CategoryEncoder().fit(categorical_frame(["x"], [0])).transform(pd.DataFrame({"a": ["x"]}))


# --- build_preprocessor ------------------------------------------------------------------------------------------


def small_config() -> ChurnopsConfig:
    return ChurnopsConfig.model_validate(
        {
            "dataset": {
                "name": "toy",
                "id_column": "id",
                "target": "y",
                "positive_label": "yes",
                "sources": [{"name": "main", "path": "/nonexistent/main.csv"}],
                "numeric_features": ["tenure", "charges"],
                "categorical_features": ["phone", "tv", "contract"],
            },
            "features": {
                "derived": [
                    {"kind": "ratio", "name": "per_month", "numerator": "charges", "denominator": "tenure"},
                    {"kind": "count_equal", "name": "n_yes", "columns": ["phone", "tv"], "value": "Yes"},
                    {"kind": "bins", "name": "tenure_band", "column": "tenure", "edges": [0, 12, 24]},
                ]
            },
        }
    )


def raw_rows() -> pd.DataFrame:
    """As read from a CSV: every cell a string, blanks included."""
    return pd.DataFrame(
        {
            "id": ["1", "2", "3", "4", "5", "6"],
            "tenure": ["0", "5", "13", "30", " ", "20"],
            "charges": ["20.5", "100", "250.25", " ", "80", "10"],
            "phone": ["Yes", "No", "Yes", "Yes", "", "No"],
            "tv": ["No", "No", "Yes", "Yes", "Yes", "No"],
            "contract": ["Monthly", "Yearly", "Monthly", "Yearly", "Monthly", "Monthly"],
            "y": ["yes", "no", "no", "yes", "no", "no"],
        }
    )


def test_derived_columns():
    assert derived_columns(small_config()) == (["per_month", "n_yes"], ["tenure_band"])
    assert derived_columns(load_config()) == (["avg_monthly_spend", "n_services"], ["tenure_band"])


def test_preprocessor_output_is_dense_numeric_without_nan():
    pre = build_preprocessor(small_config()).fit(raw_rows())
    out = pre.transform(raw_rows())
    names = pre.get_feature_names_out().tolist()
    assert out.shape == (6, len(names))
    assert not np.isnan(out).any()
    assert names[:4] == ["num__tenure", "num__charges", "num__per_month", "num__n_yes"]
    assert "cat__contract_Monthly" in names and "cat__phone___missing__" in names
    assert {n for n in names if n.startswith("cat__tenure_band_")} == {
        "cat__tenure_band_[0,12)",
        "cat__tenure_band_[12,24)",
        "cat__tenure_band_>=24",
        "cat__tenure_band___missing__",
    }
    numeric = out[:, :4]
    np.testing.assert_allclose(numeric.mean(axis=0), 0, atol=1e-9)  # standard-scaled


def test_preprocessor_unseen_category_is_all_zero_one_hot():
    pre = build_preprocessor(small_config()).fit(raw_rows())
    names = pre.get_feature_names_out().tolist()
    new = raw_rows().iloc[:2].copy()
    new.loc[new.index[0], "contract"] = "Lifetime"
    new.loc[new.index[1], "tv"] = "Maybe"
    out = pre.transform(new)
    assert not np.isnan(out).any()
    contract = [i for i, n in enumerate(names) if n.startswith("cat__contract_")]
    tv = [i for i, n in enumerate(names) if n.startswith("cat__tv_")]
    assert out[0, contract].tolist() == [0.0] * len(contract)
    assert out[1, contract].sum() == 1.0
    assert out[1, tv].tolist() == [0.0] * len(tv)
    assert out[0, tv].sum() == 1.0


def test_ordinal_preprocessor_has_one_column_per_feature():
    pre = build_preprocessor(small_config(), "ordinal").fit(raw_rows())
    names = pre.get_feature_names_out().tolist()
    assert names == [
        "num__tenure",
        "num__charges",
        "num__per_month",
        "num__n_yes",
        "cat__phone",
        "cat__tv",
        "cat__contract",
        "cat__tenure_band",
    ]
    out = pre.transform(raw_rows())
    assert out[:, 6].tolist() == [0, 1, 0, 1, 0, 0]  # contract: Monthly, Yearly


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_preprocessor_gives_the_same_matrix_for_raw_and_typed_input(encoding):
    raw = raw_rows()
    typed = raw.assign(
        tenure=[0, 5, 13, 30, None, 20],
        charges=[20.5, 100.0, 250.25, np.nan, 80.0, 10.0],
        phone=["Yes", "No", "Yes", "Yes", None, "No"],
    )
    pre = build_preprocessor(small_config(), encoding).fit(raw)
    np.testing.assert_array_equal(pre.transform(raw), pre.transform(typed))
    np.testing.assert_array_equal(pre.transform(raw), pre.transform(typed.astype({"contract": "category"})))
    refit = clone(build_preprocessor(small_config(), encoding)).fit(typed)
    np.testing.assert_array_equal(refit.transform(raw), pre.transform(raw))


def test_preprocessor_on_telco_rows(telco_copy):
    from churnops.data.sources import merge_sources, read_source
    from churnops.data.values import coerce_types

    config = load_config(telco_copy)
    frames = {s.name: coerce_types(read_source(s), config.dataset) for s in config.dataset.sources}
    merged, _ = merge_sources(frames, config.dataset.id_column)
    sample = merged.iloc[:400]
    pre = build_preprocessor(config).fit(sample)
    out = pre.transform(merged.iloc[400:800])
    assert out.shape[0] == 400
    assert not np.isnan(out).any()
    assert out.dtype == np.float64
