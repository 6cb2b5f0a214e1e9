"""A request's rows: parsed and checked, each caller's mistake a 4xx naming it."""

from __future__ import annotations

import json

import pytest

from churnops.data import NULL_TOKENS
from churnops.serving import BadRequest, check_rows, rows_from_csv, rows_from_json

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


def test_number_text_is_judged_as_the_coercer_reads_it():
    # The regular expression settles plain decimals; whatever it accepts, pd.to_numeric reads
    # as a number, and every other text is judged by pd.to_numeric itself.
    import random

    import pandas as pd

    from churnops.serving.inputs import _first_bad_number_text

    pieces = ["", " ", "+", "-", ".", "e", "E", "1", "0", "9", "5", "e9", "e99", "e999", "x", "_", "nan", "inf"]
    rng = random.Random(0)
    cells = [" 29.85 ", "1e999", "123456789012345678901", "1_000", "NaN", "null", "Infinity", "0x10", "1e-99"]
    cells += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    for cell in cells:
        stripped = pd.Series([cell], dtype=object).str.strip()
        expected_bad = bool(
            pd.to_numeric(stripped.where(~stripped.isin(NULL_TOKENS)), errors="coerce").isna().iloc[0]
            and not stripped.isin(NULL_TOKENS).iloc[0]
        )
        assert (_first_bad_number_text([cell]) is not None) == expected_bad, cell
    assert _first_bad_number_text(["1", " 2.5", "NA", "oops", "x"]) == (3, "oops")
