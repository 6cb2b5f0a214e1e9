"""Parsing a DAG file does nothing but define DAGs: no Variable, Connection or MLflow lookups.

The DAG processor parses every file every few minutes; a lookup there costs a metadata DB or
network round trip each time and fails the parse when the store is down (Airflow's
best-practices page; its own example DAGs are tested the same way).
"""

from __future__ import annotations

from contextlib import ExitStack
from unittest import mock

import pytest

from tests.helpers import ROOT

DAGS = ROOT / "dags"


class LookupAtParseTime(AssertionError):
    pass


def refuse(what: str):
    def lookup(*args, **kwargs):
        raise LookupAtParseTime(f"{what} looked up while parsing DAG files: {args} {kwargs}")

    return lookup


def parse_without_lookups(folder) -> dict:
    """Parse ``folder`` with every Variable and Connection getter (and MLflow's client) refusing to answer."""
    from airflow.dag_processing.dagbag import DagBag

    targets = {
        "airflow.sdk.Variable.get": "a Variable",
        "airflow.models.variable.Variable.get": "a Variable",
        "airflow.sdk.BaseHook.get_connection": "a Connection",
        "airflow.models.connection.Connection.get_connection_from_secrets": "a Connection",
        "mlflow.tracking.MlflowClient.__init__": "MLflow's client",
    }
    with ExitStack() as stack:
        for target, what in targets.items():
            stack.enter_context(mock.patch(target, refuse(what)))
        bag = DagBag(dag_folder=str(folder))
    return {"dags": sorted(bag.dags), "errors": bag.import_errors}


def test_the_dag_files_parse_without_any_lookup():
    parsed = parse_without_lookups(DAGS)
    assert parsed["errors"] == {}
    assert parsed["dags"] == sorted(p.stem for p in DAGS.glob("*.py"))


@pytest.mark.parametrize(
    "lookup",
    [
        "from airflow.sdk import Variable\nVariable.get('churnops_cooldown_days')",
        "from airflow.sdk import BaseHook\nBaseHook.get_connection('mlflow_default')",
    ],
)
def test_a_lookup_at_parse_time_fails_the_parse(tmp_path, lookup):
    (tmp_path / "probe.py").write_text(
        f"{lookup}\n"
        "import pendulum\nfrom airflow.sdk import dag\n\n"
        "@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz='UTC'))\ndef probe():\n    pass\n\nprobe()\n"
    )
    parsed = parse_without_lookups(tmp_path)
    assert parsed["dags"] == [] and "looked up while parsing" in str(parsed["errors"])
