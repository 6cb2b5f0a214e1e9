"""Bad training input: a clear error, the input quarantined, raw files unchanged, no model.

One row per case: a new case is one line in ``CASES``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from churnops.cli import main

pytestmark = pytest.mark.e2e


def edit_csv(name: str, change):
    def mutate(data: Path) -> None:
        frame = pd.read_csv(data / f"{name}.csv", dtype=str, keep_default_na=False)
        change(frame).to_csv(data / f"{name}.csv", index=False)
    return mutate


def write_bytes(name: str, payload: bytes):
    def mutate(data: Path) -> None:
        (data / f"{name}.csv").write_bytes(payload)
    return mutate


def set_cell(row: int, column: str, value: str):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame
    return change


CASES = {
    # case:               (mutation,                                                   source,      column,        rule)
    "missing_column":     (edit_csv("accounts", lambda f: f.drop(columns=["tenure"])),  "accounts",  "tenure",      "required_column"),
    "wrong_type":         (edit_csv("accounts", set_cell(3, "monthlycharges", "abc")),   "accounts",  "monthlycharges", "numeric_type"),
    "duplicate_ids":      (edit_csv("customers", lambda f: pd.concat([f, f.head(2)])),   "customers", "customerid",  "id_unique"),
    "unexpected_label":   (edit_csv("accounts", set_cell(5, "churn", "Maybe")),          "accounts",  "churn",       "label_values"),
    "empty_source":       (write_bytes("services", b""),                                 "services",  None,          "not_empty"),
    "header_only_source": (write_bytes("services", b"customerid,phoneservice\n"),        "services",  None,          "not_empty"),
    "negative_tenure":    (edit_csv("accounts", set_cell(7, "tenure", "-3")),            "accounts",  "tenure",      "range"),
    "infinite_charges":   (edit_csv("accounts", set_cell(8, "totalcharges", "inf")),     "accounts",  "totalcharges", "finite"),
    "null_storm":         (edit_csv("customers", lambda f: f.assign(gender="")),          "customers", "gender",      "max_null_fraction"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_training_input(case, telco_copy, churnops_home, capsys):
    from mlflow import MlflowClient

    mutate, source, column, rule = CASES[case]
    data = telco_copy.parent / "data"
    mutate(data)
    before = {p.name: p.read_bytes() for p in data.iterdir()}

    code = main(["train", "--config", str(telco_copy)])
    _, err = capsys.readouterr()

    assert code == 2
    assert err.count("\n") == 1, err
    assert f"source {source!r}" in err and rule in err
    if column:
        assert f"column {column!r}" in err
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before, "raw files must not change"

    reasons = list((churnops_home / "quarantine").rglob("reason.json"))
    assert [r.parent.name for r in reasons] == [source]
    reason = json.loads(reasons[0].read_text())
    assert (reason["findings"][0]["column"], reason["findings"][0]["rule"]) == (column, rule)
    assert (reasons[0].parent / f"{source}.csv").read_bytes() == before[f"{source}.csv"]

    assert MlflowClient().search_registered_models() == [], "no model may be registered from bad input"
