"""churnops.data.values: what a cell means: null tokens, text, and the types the config declares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.values import (
    NULL_TOKENS,
    as_text,
    as_text_series,
    blank_to_na,
    coerce_types,
    is_text,
    missing_mask,
    text_codes,
)

# --- typing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.0, "1"), (0.0, "0"), (-3.0, "-3"), (1.5, "1.5"), (1, "1"), ("1.0", "1.0"), ("Yes", "Yes"), (True, "True")],
)
def test_as_text(value, expected):
    assert as_text(value) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            ["a", "", " ", "  NA ", "N/A", "NaN", "nan", "null", "NULL", "None", None, " b "],
            ["a", None, None, None, None, None, None, None, None, None, None, " b "],
        ),
        (["0", "Nothing", "n/a"], ["0", "Nothing", "n/a"]),
    ],
)
def test_blank_to_na(values, expected):
    result = blank_to_na(pd.Series(values, dtype=object))
    assert [None if pd.isna(v) else v for v in result] == expected


def test_blank_to_na_passes_non_text_columns():
    numbers = pd.Series([1.0, np.nan, 0.0])
    pd.testing.assert_series_equal(blank_to_na(numbers), numbers)


def test_coerce_types_numeric_columns(toy_config):
    raw = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4", "5", "6"],
            "age": ["30", " 41 ", " ", "NA", "abc", "1e2"],
            "income": ["", "null", "2.5", "-1", "0", "None"],
        }
    )
    typed = coerce_types(raw, toy_config().dataset)
    assert typed["age"].dtype == typed["income"].dtype == np.float64
    np.testing.assert_array_equal(typed["age"], [30.0, 41.0, np.nan, np.nan, np.nan, 100.0])
    np.testing.assert_array_equal(typed["income"], [np.nan, np.nan, 2.5, -1.0, 0.0, np.nan])
    assert raw["age"].tolist()[2] == " "  # the input frame is not modified


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("flag", [1.0, 0.0, np.nan], ["1", "0", None]),
        ("flag", [1, 0, 1], ["1", "0", "1"]),
        ("flag", ["1", " ", "NULL"], ["1", None, None]),
        ("plan", ["basic", "", "pro"], ["basic", None, "pro"]),
        ("id", [101.0, 102.0, 103.0], ["101", "102", "103"]),
        ("id", [7, 8, 9], ["7", "8", "9"]),
        ("y", [1.0, 0.0, 1.0], ["1", "0", "1"]),
        ("y", ["yes", "no", "N/A"], ["yes", "no", None]),
    ],
)
def test_coerce_types_text_columns(column, values, expected, toy_config):
    typed = coerce_types(pd.DataFrame({column: values}), toy_config().dataset)
    assert typed[column].dtype == object
    assert [None if pd.isna(v) else v for v in typed[column]] == expected


def test_coerce_types_leaves_undeclared_columns_alone(toy_config):
    raw = pd.DataFrame({"id": ["1"], "note": ["  "], "count": [3]})
    typed = coerce_types(raw, toy_config().dataset)
    assert typed["note"].tolist() == ["  "]
    assert typed["count"].tolist() == [3]


# --- missing cells and text columns ------------------------------------------------------------------------------


def is_missing_cell(value: object) -> bool:
    """Whether one cell reads as missing: a null, or text that strips to one of the null tokens."""
    if isinstance(value, str):
        return value.strip() in NULL_TOKENS
    return bool(pd.isna(value))


def test_is_text_means_object_or_string_columns():
    assert is_text(pd.Series(["a"], dtype=object)) and is_text(pd.Series(["a"], dtype="string"))
    assert not any(is_text(pd.Series(values)) for values in ([1.5], [1], [True]))
    # pandas calls a categorical of text a string column, so its blank cells are found as in plain text
    assert is_text(pd.Series(["a", " NA "], dtype="category")) and not is_text(pd.Series([1, 2], dtype="category"))
    assert missing_mask(pd.Series(["a", " NA ", None], dtype="category")).tolist() == [False, True, True]


def test_text_codes_judge_each_distinct_value_once_and_missing_cells_as_blank():
    series = pd.Series(["a", " NA ", None, "a", "null", " b "], dtype=object)
    codes, uniques, blank = text_codes(series)
    assert codes.tolist() == [0, 1, -1, 0, 2, 3]
    assert uniques.tolist() == ["a", " NA ", "null", " b "]
    assert blank.tolist() == [False, True, True, False, True]  # one per distinct value, then code -1 (missing)
    assert blank[codes].tolist() == blank_to_na(series).isna().tolist()


# Enough distinct values for the shortcut that strips only the values that might be a token.
MANY_IDS = [f"cust-{i:05d}" for i in range(2_000)]


@pytest.mark.parametrize(
    "cells",
    [
        pytest.param(["a", " ", "NA", None, np.nan, " null ", "nan", "0", "Nothing"], id="few-values"),
        pytest.param(
            [
                *MANY_IDS,
                "   NA",
                "NULL\u00a0\u00a0\u00a0\u00a0",
                "\u3000None\u3000\u3000",
                " x NA ",
                "NAxxxx",
                "N/A\t\n",
            ],
            id="many-values-tokens-padded-with-any-whitespace",
        ),
        pytest.param([*MANY_IDS, 1.5, 7, "  NA  ", None], id="many-values-not-all-text"),
    ],
)
@pytest.mark.parametrize("distinct", [False, True], ids=["factorized", "row-by-row"])
def test_missing_mask_is_exactly_the_cells_blank_to_na_makes_missing(cells, distinct):
    series = pd.Series(cells, dtype=object)
    mask = missing_mask(series, distinct)
    assert mask.dtype == bool
    assert mask.tolist() == [is_missing_cell(value) for value in cells]
    assert mask.tolist() == blank_to_na(series).isna().tolist()
    assert blank_to_na(series, distinct).tolist() == blank_to_na(series).tolist()


@pytest.mark.parametrize(
    "series",
    [
        pytest.param(pd.Series(["a", pd.NA, " nan ", "b"], dtype="string"), id="string-dtype"),
        pytest.param(pd.Series(["a", " NA ", None], dtype="category"), id="categorical"),
        pytest.param(pd.Series([*MANY_IDS, pd.NA, pd.NaT, float("nan"), " None "], dtype=object), id="odd-nulls"),
        pytest.param(pd.Series([*MANY_IDS[:5], b"NA", 3], dtype=object), id="not-all-str"),
    ],
)
def test_missing_mask_row_by_row_equals_the_factorized_one(series):
    assert missing_mask(series, distinct=True).tolist() == missing_mask(series).tolist()


def test_coerce_types_reuses_known_missing_masks_to_the_same_frame(toy_config):
    ds = toy_config().dataset
    frame = pd.DataFrame({ds.id_column: [*MANY_IDS[:3], " NA "], ds.target: ["1", "0", " ", "1"]})
    for column in ds.numeric_features:
        frame[column] = ["1.5", " ", "x", None]
    for column in ds.categorical_features:
        frame[column] = ["a", "null", None, " b "]
    masks = {c: missing_mask(frame[c]) for c in frame.columns}
    pd.testing.assert_frame_equal(coerce_types(frame, ds, masks), coerce_types(frame, ds))


def test_missing_mask_of_typed_columns_is_their_nulls():
    assert missing_mask(pd.Series([1.0, np.nan, 0.0])).tolist() == [False, True, False]
    assert missing_mask(pd.Series(["a", pd.NA, " nan "], dtype="string")).tolist() == [False, True, True]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(pd.Series([1.0, np.nan, 2.5, 1.0], name="charges"), id="floats"),
        pytest.param(pd.Series([7, 8, 7]), id="ints"),
        pytest.param(pd.Series([True, False]), id="bools"),
        pytest.param(pd.Series(["a", None, "b"], dtype=object), id="text"),
        pytest.param(pd.Series([1, True, 1.0, "x", None], dtype=object), id="mixed-objects"),
        pytest.param(pd.Series([1, None], dtype="Int64"), id="nullable-ints"),
    ],
)
def test_as_text_series_reads_like_as_text_on_every_cell(values):
    values.index = range(10, 10 + len(values))
    result = as_text_series(values)
    pd.testing.assert_series_equal(result, values.map(as_text, na_action="ignore").astype(object))
    assert result is not values


def test_as_text_series_tells_equal_objects_written_differently_apart():
    # 1 == True == 1.0, yet they read "1", "True" and "1": distinct values cannot be converted once per class.
    mixed = pd.Series([1, True, 1.0, "x", None], dtype=object)
    assert as_text_series(mixed).tolist() == ["1", "True", "1", "x", None]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(["a", "b", "a"], id="text-without-blanks"),
        pytest.param(["a", " NA ", None], id="text-with-blanks"),
        pytest.param(pd.Categorical(["a", "b", "a"]), id="categorical-without-blanks"),
        pytest.param(pd.Categorical(["a", "null", None]), id="categorical-with-blanks"),
        pytest.param(pd.array(["a", pd.NA, " "], dtype="string"), id="string-dtype"),
        pytest.param([1, 0, 1], id="ints"),
        pytest.param([1.0, np.nan, 0.0], id="floats"),
    ],
)
def test_coerce_types_text_columns_are_blank_to_na_then_as_text_series(values, toy_config):
    ds = toy_config().dataset
    column = ds.categorical_features[0]
    frame = pd.DataFrame({column: values})
    expected = as_text_series(blank_to_na(frame[column]))
    typed = coerce_types(frame, ds)
    pd.testing.assert_series_equal(typed[column], expected)
    assert not np.shares_memory(typed[column].to_numpy(), frame[column].to_numpy()), "a copy, never the input"
