"""A request's rows: parsed and checked, each caller's mistake a 4xx naming it."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from churnops.data import NULL_TOKENS
from churnops.serving import BadRequest, check_rows, rows_from_csv, rows_from_json
from churnops.serving.inputs import read_json_rows, read_numbers

COLUMNS = ["tenure", "totalcharges", "contract", "seniorcitizen"]
NUMERIC = {"tenure", "totalcharges"}
ROW = {"tenure": 12, "totalcharges": "29.85", "contract": "Month-to-month", "seniorcitizen": 0}


def check(rows):
    return check_rows(rows, COLUMNS, NUMERIC, "customerid")


def status(call) -> tuple[int, str]:
    with pytest.raises(BadRequest) as caught:
        call()
    return caught.value.status, caught.value.detail


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{nope", 400),
        (b"\xff\xfe", 400),
        (b"[]", 422),
        (b'{"rows": 3}', 422),
        (b'{"rows": []}', 422),
        (b'{"rows": [1]}', 422),
        (json.dumps({"rows": [ROW] * 4}).encode(), 413),
    ],
)
def test_json_bodies_of_the_wrong_shape(body, expected):
    assert status(lambda: rows_from_json(body, max_rows=3))[0] == expected


def test_a_json_body_gives_its_rows():
    assert rows_from_json(json.dumps({"rows": [ROW, ROW]}).encode(), max_rows=3) == [ROW, ROW]


def test_rows_are_framed_with_ids_and_ignored_columns_named():
    rows = [{**ROW, "customerid": "A-1", "zz": 1}, {**ROW, "aa": None}]
    checked = check(rows)
    assert list(checked.frame.columns) == [*COLUMNS, "customerid"]
    assert checked.ids == ["A-1", None] and checked.ignored == ["aa", "zz"]
    assert check([ROW]).ids is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tenure": "twelve"}, ["row 1", "tenure", "twelve"]),
        ({"tenure": True}, ["row 1", "tenure"]),
        ({"totalcharges": [1]}, ["row 1", "totalcharges"]),
        ({"contract": {"a": 1}}, ["row 1", "contract"]),
    ],
)
def test_a_value_of_the_wrong_type_names_its_row_and_column(change, words):
    code, detail = status(lambda: check([ROW, {**ROW, **change}]))
    assert code == 422 and all(w in detail for w in words), detail


@pytest.mark.parametrize(
    "change",
    [{"tenure": " 7 "}, {"totalcharges": " "}, {"totalcharges": None}, {"tenure": 3.5}, {"seniorcitizen": True}],
)
def test_what_the_model_reads_is_accepted(change):
    assert len(check([ROW, {**ROW, **change}]).frame) == 2


def test_a_missing_column_is_named_with_the_first_row_lacking_it():
    code, detail = status(lambda: check([ROW, {k: v for k, v in ROW.items() if k != "contract"}]))
    assert code == 422 and "row 1" in detail and "contract" in detail


def test_csv_bodies():
    text = "tenure,totalcharges,contract,seniorcitizen,customerid,extra\n1, ,Two year,0,X,?\n"
    checked = check(rows_from_csv(text.encode(), max_rows=5))
    assert checked.ids == ["X"] and checked.ignored == ["extra"]
    assert checked.frame["seniorcitizen"].tolist() == ["0"], "cells read as text, as a batch file's"
    assert status(lambda: rows_from_csv(b"", max_rows=5))[0] == 400
    assert status(lambda: rows_from_csv(b"tenure\n", max_rows=5))[0] == 422
    assert status(lambda: rows_from_csv(b"tenure\n1\n2\n3\n", max_rows=2))[0] == 413
    code, detail = status(lambda: check(rows_from_csv(b"tenure,contract\n1,x\n", max_rows=5)))
    assert code == 422 and "totalcharges" in detail and "seniorcitizen" in detail
    code, detail = status(lambda: check(rows_from_csv(text.replace("1, ", "one, ").encode(), max_rows=5)))
    assert code == 422 and "row 0" in detail and "tenure" in detail


def coercer_numbers(cells: list) -> np.ndarray:
    """What the registered pipeline's coercer reads from a JSON column: the rows framed as pandas frames them."""
    from churnops.features import RawInputCoercer

    frame = pd.DataFrame([{"x": cell} for cell in cells])
    return RawInputCoercer(numeric=["x"], categorical=[]).fit(frame).transform(frame)["x"].to_numpy()


@pytest.mark.parametrize("kind", ["text", "text and nulls", "numbers", "numbers and nulls", "mixed"])
def test_numbers_are_read_as_the_coercer_reads_them_and_judged_by_it(kind):
    pieces = ["", " ", "+", "-", ".", "e", "E", "1", "0", "9", "5", "e9", "e99", "e999", "x", "_", "nan", "inf"]
    pieces += ["\u00a0", "\u2003", "\t", "\x1c", "\u0660", "1_0"]  # other whitespace, an Arabic-Indic digit
    rng = random.Random(0)
    texts = [" 29.85 ", "1e999", "123456789012345678901", "1_000", "NaN", "null", "Infinity", "0x10", "1e-99"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    numbers = [rng.choice([0, 1, -7, 10**20, 0.1, 2.5e-300, 1e308, float(i)]) for i in range(3000)]
    cells = {
        "text": texts,
        "text and nulls": [None if i % 5 == 0 else t for i, t in enumerate(texts)],
        "numbers": numbers,
        "numbers and nulls": [None if i % 5 == 0 else n for i, n in enumerate(numbers)],
        "mixed": [[t, n, None][i % 3] for i, (t, n) in enumerate(zip(texts, numbers, strict=False))],
    }[kind]
    read = read_numbers(cells)
    expected = coercer_numbers(cells)
    assert np.array_equal(np.where(np.isinf(read), np.nan, read), expected, equal_nan=True), "bit for bit"
    nulls = set(NULL_TOKENS)
    wrong = [n for n, c in enumerate(cells) if isinstance(c, str) and np.isnan(expected[n]) and c.strip() not in nulls]
    wrong = [n for n in wrong if c_is_not_infinite(cells[n])]
    if wrong:
        code, detail = status(lambda: check_rows([{"x": c} for c in cells], ["x"], {"x"}, "id"))
        assert code == 422 and f"row {wrong[0]}," in detail, detail
    else:
        assert np.array_equal(
            check_rows([{"x": c} for c in cells], ["x"], {"x"}, "id").numbers["x"], read, equal_nan=True
        )


def c_is_not_infinite(text: str) -> bool:
    # Text of an infinity is a number the coercer reads (then treats as missing): not the caller's mistake.
    return not np.isinf(pd.to_numeric(pd.Series([text.strip()]), errors="coerce").iloc[0])


def test_a_request_is_checked_column_by_column_without_a_frame():
    checked = check([ROW, {**ROW, "tenure": " 7 ", "totalcharges": None}])
    assert checked.columns["tenure"] == [12, " 7 "] and checked.columns["contract"] == ["Month-to-month"] * 2
    assert checked.numbers["tenure"].tolist() == [12.0, 7.0]
    assert np.isnan(checked.numbers["totalcharges"][1]) and checked.numbers["totalcharges"][0] == 29.85
    assert "frame" not in vars(checked), "the frame is built only when asked for"
    assert checked.frame["tenure"].tolist() == [12, " 7 "]


@pytest.mark.parametrize(
    "rows",
    [
        [ROW, {**ROW, "tenure": " 7 "}],
        [{**ROW, "customerid": "A-1"}, ROW],
        [{**ROW, "customerid": 7}, {**ROW, "customerid": None}],
        [ROW, {**ROW, "zz": 1}],
        [ROW, {k: v for k, v in ROW.items() if k != "contract"}],
        [ROW, {**ROW, "tenure": "twelve"}],
        [ROW, {**ROW, "seniorcitizen": True}, {**ROW, "seniorcitizen": 1.0}],
        [ROW, {**ROW, "contract": ["a list"]}],
        [ROW, [1, 2]],
        [],
        [ROW] * 4,
    ],
    ids=[
        "plain",
        "some ids",
        "ids of any type",
        "extra column",
        "missing column",
        "wrong type",
        "booleans and fractions as categories",
        "a list as a category",
        "not an object",
        "no rows",
        "too many",
    ],
)
def test_rows_decoded_as_records_are_checked_as_rows_decoded_as_dicts(rows):
    body = json.dumps({"rows": rows}).encode()
    fast = outcome(lambda: read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid"))
    assert fast == outcome(lambda: check(rows_from_json(body, max_rows=3)))
    assert fast == outcome(lambda: read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid", CATEGORIES))
    assert outcome(lambda: read_json_rows(b"{nope", 3, COLUMNS, NUMERIC, "customerid"))[0] == 400


def outcome(call):
    """A read's result as plain values (its columns, numbers, ids, ignored columns), or its error."""
    try:
        checked = call()
    except BadRequest as exc:
        return exc.status, exc.detail
    numbers = {c: [None if np.isnan(x) else x for x in v.tolist()] for c, v in checked.numbers.items()}
    return checked.columns, numbers, checked.ids, checked.ignored


CATEGORIES = {"contract": ["Month-to-month", "Two year"], "seniorcitizen": ["0", "1"]}
"""The model's known texts of the category columns (those of ROW among them)."""

ODD = [
    {"contract": "Two year", "seniorcitizen": "1"},
    {"contract": "One year"},
    {"contract": "One year", "seniorcitizen": "2"},
    {"contract": " Two year "},
    {"contract": ""},
    {"contract": None, "seniorcitizen": None},
    {"seniorcitizen": 1},
    {"seniorcitizen": True},
    {"seniorcitizen": 1.0},
    {"seniorcitizen": 2**70},
    {"contract": 7},
    {"contract": ["Two year"]},
    {"contract": {"Two year": 1}},
    {"tenure": "12", "totalcharges": " 1e3 "},
    {"tenure": None, "totalcharges": ""},
    {"tenure": False},
    {"tenure": "twelve"},
    {"customerid": "A-1"},
    {"customerid": {"nested": [1]}},
    {"zz": 1},
    {"contract": "Two year", "zz": None},
    {"zz": {"nested": [1, {"a": None}]}, "aa": [], "churn": "Yes"},
    {"contract": "One year", "zz": 1},
    {"zz": 1, "seniorcitizen": True},
    {"we`ird - at `$.rows[0]`": 1, "\u00e9t\u00e9": 3},
    {"we`ird - at `$.rows[0]`": 1, 'quo"te': 2, "\u00e9t\u00e9\n": 3},
    {f"k{i}": i for i in range(9)},
]


@pytest.mark.parametrize("form", ["rows", "columns"])
@pytest.mark.parametrize("change", ODD, ids=[json.dumps(change) for change in ODD])
def test_the_known_texts_route_reads_odd_cells_as_the_other_routes_do(form, change):
    rows = [ROW, {**ROW, **change}, {**ROW, "contract": "Two year"}]
    body = json.dumps({"rows": rows}).encode() if form == "rows" else columnar(rows)
    known = outcome(lambda: read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid", CATEGORIES))
    assert known == outcome(lambda: read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid"))
    if form == "rows":
        assert known == outcome(lambda: check(rows_from_json(body, max_rows=3)))
    missing = [{k: v for k, v in row.items() if k != "tenure"} for row in rows]
    body = json.dumps({"rows": missing}).encode() if form == "rows" else columnar(missing)
    assert outcome(lambda: read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid", CATEGORIES))[0] == 422


@pytest.mark.parametrize("form", ["rows", "columns"])
def test_a_text_the_model_never_saw_is_read_as_any_text(form):
    rows = [{**ROW, "seniorcitizen": "1"}, {**ROW, "seniorcitizen": "1", "contract": "One year"}]
    rows.append(rows[0])
    body = json.dumps({"rows": rows}).encode() if form == "rows" else columnar(rows)
    checked = read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid", CATEGORIES)
    assert checked.columns["contract"] == ["Month-to-month", "One year", "Month-to-month"]
    assert checked.columns["seniorcitizen"] == ["1", "1", "1"]


@pytest.mark.parametrize("form", ["rows", "columns"])
def test_known_texts_are_decoded_as_one_shared_object_each(form):
    rows = [ROW, {**ROW, "contract": "Two year"}, ROW]
    body = json.dumps({"rows": rows}).encode() if form == "rows" else columnar(rows)
    contract = read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid", CATEGORIES).columns["contract"]
    assert contract == ["Month-to-month", "Two year", "Month-to-month"] and contract[0] is contract[2]
    contract = read_json_rows(body, 3, COLUMNS, NUMERIC, "customerid").columns["contract"]
    assert contract[0] is not contract[2], "any text: a string per cell"


def columnar(rows: list[dict], **extra) -> bytes:
    """The rows as a columnar body: each column's values in row order."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    return json.dumps({"columns": {name: [row.get(name) for row in rows] for name in names}, **extra}).encode()


def read(body: bytes, max_rows: int = 3):
    return read_json_rows(body, max_rows, COLUMNS, NUMERIC, "customerid")


@pytest.mark.parametrize(
    "rows",
    [
        [ROW, {**ROW, "tenure": " 7 ", "totalcharges": None}],
        [{**ROW, "customerid": "A-1"}, {**ROW, "customerid": None}],
        [{**ROW, "zz": 1}, {**ROW, "zz": 2}],
        [ROW, {**ROW, "seniorcitizen": True}, {**ROW, "seniorcitizen": 1.0}],
    ],
    ids=["plain", "ids", "extra column", "booleans and fractions as categories"],
)
def test_a_columnar_body_is_read_as_the_same_rows_would_be(rows):
    checked, as_rows = read(columnar(rows)), read(json.dumps({"rows": rows}).encode())
    assert checked.columns == as_rows.columns and checked.ids == as_rows.ids and checked.ignored == as_rows.ignored
    assert checked.numbers.keys() == as_rows.numbers.keys() == NUMERIC
    assert all(np.array_equal(checked.numbers[c], as_rows.numbers[c], equal_nan=True) for c in NUMERIC)


def test_a_columnar_body_missing_a_column_is_a_422_naming_it():
    code, detail = status(lambda: read(columnar([{k: v for k, v in ROW.items() if k != "contract"}])))
    assert code == 422 and "contract" in detail and "tenure" not in detail, detail


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tenure": "twelve"}, ["row 1", "tenure", "twelve"]),
        ({"totalcharges": True}, ["row 1", "totalcharges"]),
        ({"contract": ["a list"]}, ["row 1", "contract"]),
    ],
)
def test_a_wrong_type_in_a_columnar_body_names_its_row_and_column(change, words):
    code, detail = status(lambda: read(columnar([ROW, {**ROW, **change}])))
    assert code == 422 and all(w in detail for w in words), detail


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (json.dumps({"columns": {**{c: [v, v] for c, v in ROW.items()}, "contract": ["x"]}}).encode(), 422),
        (json.dumps({"columns": {**{c: [v] for c, v in ROW.items()}, "zz": [1, 2]}}).encode(), 422),
        (json.dumps({"columns": {c: [v] * 4 for c, v in ROW.items()}}).encode(), 413),
        (json.dumps({"columns": {c: [] for c in ROW}}).encode(), 422),
        (json.dumps({"columns": ROW}).encode(), 422),
        (json.dumps({"columns": [1]}).encode(), 422),
        (json.dumps({"columns": {c: [v] for c, v in ROW.items()}, "rows": [ROW]}).encode(), 422),
        (b'{"columns": {', 400),
    ],
    ids=[
        "ragged",
        "ragged unknown column",
        "too many",
        "no rows",
        "not lists",
        "not an object",
        "both forms",
        "not JSON",
    ],
)
def test_columnar_bodies_of_the_wrong_shape(body, expected):
    code, detail = status(lambda: read(body))
    assert code == expected, detail


def test_a_ragged_columnar_body_names_the_lengths():
    body = json.dumps({"columns": {**{c: [v, v] for c, v in ROW.items()}, "contract": ["x"]}}).encode()
    code, detail = status(lambda: read(body))
    assert code == 422 and "contract: 1" in detail and "tenure: 2" in detail, detail
