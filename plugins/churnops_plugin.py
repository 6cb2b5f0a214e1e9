"""Airflow UI ↔ MLflow UI: a link from every task instance to the MLflow run it logged to,
and an "MLflow" entry in the Airflow navigation.

Where the MLflow UI is, as the *browser* sees it (the workers may reach MLflow by another
name, e.g. ``http://mlflow:5000`` in docker-compose): ``$CHURNOPS_MLFLOW_UI_URL``, else the
``mlflow_default`` connection (``airflow_settings.yaml``), else ``http://127.0.0.1:5000``.

Tasks record ``<experiment id>/<run id>`` under the XCom key ``churnops_mlflow_run``
(``churnops.orchestration.runtime.publish_mlflow_run``); a task that logged nothing shows no link.
Runs in the api-server: light imports only.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"
CONNECTION_ID = "mlflow_default"
XCOM_KEY = "churnops_mlflow_run"  # = churnops.orchestration.runtime.MLFLOW_RUN_XCOM_KEY (not imported: api-server)


def mlflow_ui_url() -> str:
    """Base URL of the MLflow UI for links, without a trailing slash."""
    url = os.environ.get("CHURNOPS_MLFLOW_UI_URL")
    if not url:
        try:
            from airflow.models.connection import Connection

            conn = Connection.get_connection_from_secrets(CONNECTION_ID)
            if conn.host:
                host = conn.host if "://" in conn.host else f"{conn.schema or 'http'}://{conn.host}"
                url = f"{host}:{conn.port}" if conn.port else host
        except Exception:  # no such connection, or no metadata DB yet
            url = None
    return (url or DEFAULT_MLFLOW_UI).rstrip("/")


def mlflow_run_url(base: str, recorded: str | None) -> str:
    """``<base>/#/experiments/<experiment>/runs/<run>`` from a recorded ``<experiment>/<run>``; "" if none."""
    if not recorded or recorded.count("/") != 1:
        return ""
    experiment_id, run_id = recorded.split("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def _recorded_run(ti_key: Any) -> str | None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.execute(
            XComModel.get_many(
                key=XCOM_KEY,
                run_id=ti_key.run_id,
                dag_ids=ti_key.dag_id,
                task_ids=ti_key.task_id,
                map_indexes=ti_key.map_index,
            ).with_only_columns(XComModel.value)
        ).first()
    if not row:
        return None
    value = row.value
    try:
        value = json.loads(value)
    except (TypeError, ValueError):
        pass
    return value if isinstance(value, str) else None


class MlflowRunLink(BaseOperatorLink):
    """ "MLflow run" on every task instance that logged to MLflow."""

    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return mlflow_run_url(mlflow_ui_url(), _recorded_run(ti_key))


class ChurnopsPlugin(AirflowPlugin):
    name = "churnops"
    global_operator_extra_links = [MlflowRunLink()]
    external_views = [
        # Fixed when the plugin loads (in every Airflow process): from the environment only.
        {
            "name": "MLflow",
            "href": os.environ.get("CHURNOPS_MLFLOW_UI_URL", DEFAULT_MLFLOW_UI).rstrip("/"),
            "destination": "nav",
            "category": "browse",
        },
    ]
