"""plugins/churnops_plugin.py: link building and where the MLflow UI is (no Airflow server needed)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def plugin():
    spec = importlib.util.spec_from_file_location("churnops_plugin", ROOT / "plugins" / "churnops_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_link_from_the_recorded_run(plugin):
    assert (
        plugin.mlflow_run_url("http://mlflow.example:5000", "3/abc123")
        == "http://mlflow.example:5000/#/experiments/3/runs/abc123"
    )
    assert plugin.mlflow_run_url("http://x", None) == ""
    assert plugin.mlflow_run_url("http://x", "garbage") == ""


def test_ui_url_prefers_the_environment(plugin, monkeypatch):
    monkeypatch.setenv("CHURNOPS_MLFLOW_UI_URL", "http://127.0.0.1:5999/")
    assert plugin.mlflow_ui_url() == "http://127.0.0.1:5999"


def test_ui_url_from_the_mlflow_default_connection(plugin, monkeypatch, airflow_db):
    monkeypatch.delenv("CHURNOPS_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", "http://mlflow.internal:5050")
    assert plugin.mlflow_ui_url() == "http://mlflow.internal:5050"
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT")
    assert plugin.mlflow_ui_url() == plugin.DEFAULT_MLFLOW_UI


def test_plugin_registers_the_link_and_the_nav_entry(plugin):
    assert [link.name for link in plugin.ChurnopsPlugin.global_operator_extra_links] == ["MLflow run"]
    (view,) = plugin.ChurnopsPlugin.external_views
    assert view["destination"] == "nav" and view["href"].startswith("http")


def test_publish_outside_a_task_is_a_no_op():
    from churnops.orchestration.runtime import publish_mlflow_run

    publish_mlflow_run("1", "abc")  # must not raise without a task context
