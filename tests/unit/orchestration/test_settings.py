"""churnops.orchestration.settings: ``airflow_settings.yaml`` read, checked and turned into import files."""

import json

import pytest

from churnops.errors import ChurnopsInputError
from churnops.orchestration.settings import import_files, load_settings
from tests.helpers import ROOT


def test_shipped_file_has_what_the_dags_need(tmp_path):
    settings = load_settings(ROOT / "airflow_settings.yaml")
    files = import_files(settings, tmp_path)
    pools = json.loads(files["pools"].read_text())
    assert pools["churnops_promotion"]["slots"] == 1 and pools["churnops_promotion"]["description"]
    variables = json.loads(files["variables"].read_text())
    assert variables["churnops_cooldown_days"]["value"] == "7"
    assert "churnops_last_promotion" not in variables, "promotion state is the DAG's to write, never a default"
    connection = json.loads(files["connections"].read_text())["mlflow_default"]
    assert connection == {
        "conn_type": "http",
        "host": "127.0.0.1",
        "schema": "http",
        "port": 5000,
        "extra": json.dumps({"description": "MLflow tracking server / UI as the browser reaches it"}),
    }


def test_the_pool_and_variable_names_are_the_ones_the_code_uses():
    from churnops.orchestration import PROMOTION_POOL
    from churnops.retraining import COOLDOWN_DAYS_VAR

    settings = load_settings(ROOT / "airflow_settings.yaml")
    assert COOLDOWN_DAYS_VAR in {v.variable_name for v in settings.airflow.variables}
    assert PROMOTION_POOL in {p.pool_name for p in settings.airflow.pools}
    for dag_file in ("churn_retraining.py", "churn_rollback.py"):
        text = (ROOT / "dags" / dag_file).read_text()
        assert "pool=PROMOTION_POOL" in text, f"{dag_file} does not run its promotion task in {PROMOTION_POOL}"


def test_non_string_values_are_stored_as_json(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "airflow:\n  variables:\n    - variable_name: a\n      variable_value: {k: [1, 2]}\n"
        "    - variable_name: b\n      variable_value: 3\n"
    )
    variables = json.loads(import_files(load_settings(path), tmp_path / "out")["variables"].read_text())
    assert variables["a"]["value"] == '{"k": [1, 2]}' and variables["b"]["value"] == "3"


@pytest.mark.parametrize(
    "text, message",
    [
        ("airflow:\n  pools:\n    - pool_name: p\n      pool_slots: 1\n", "pool_slots"),
        ("airflow:\n  pools:\n    - pool_name: p\n      pool_slot: -1\n", "pool_slot"),
        (
            "airflow:\n  variables:\n    - {variable_name: a, variable_value: 1}\n"
            "    - {variable_name: a, variable_value: 2}\n",
            "variable listed twice: a",
        ),
        ("airflow: [1, 2\n", "not a valid airflow_settings file"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ChurnopsInputError, match=message):
        load_settings(path)


def test_missing_file(tmp_path):
    with pytest.raises(ChurnopsInputError, match="no such settings file"):
        load_settings(tmp_path / "nope.yaml")
