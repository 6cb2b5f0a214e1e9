"""Glue between Airflow tasks and the library: run identity and failure policy.

Imported at the top of DAG files, so it must stay light: Airflow is imported inside
the functions and nothing here pulls in pandas, scikit-learn or MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

__all__ = ["MLFLOW_RUN_XCOM_KEY", "airflow_run_context", "fail_fast_on_bad_input", "is_backfill",
           "publish_mlflow_run", "run_day"]

MLFLOW_RUN_XCOM_KEY = "churnops_mlflow_run"
"""XCom key of ``<experiment id>/<run id>`` of the MLflow run a task logged to (read by the plugin's link)."""

F = TypeVar("F", bound=Callable[..., Any])


def airflow_run_context() -> dict[str, Any]:
    """The running task's DAG id, run id and date, as a ``RunContext`` dict.

    Manual runs have no logical date; their ``run_after`` stands in for it.
    """
    from airflow.sdk import get_current_context

    dag_run = get_current_context()["dag_run"]
    when = dag_run.logical_date or dag_run.run_after
    return {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "logical_date": when.isoformat() if when else None}


def fail_fast_on_bad_input(function: F) -> F:
    """Turn :class:`~churnops.errors.ChurnopsInputError` into ``AirflowFailException``.

    Bad input will not fix itself on retry, so the task fails at once (other errors,
    such as a tracking server outage, keep the task's retries).
    """

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from churnops.errors import ChurnopsInputError

        try:
            return function(*args, **kwargs)
        except ChurnopsInputError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def run_day() -> str:
    """The day a run is about, ``YYYY-MM-DD``: its logical date, else (manual runs) ``run_after``."""
    return airflow_run_context()["logical_date"][:10]


def is_backfill() -> bool:
    from airflow.sdk import get_current_context

    return get_current_context()["dag_run"].run_type == "backfill"


def publish_mlflow_run(experiment_id: str, run_id: str) -> None:
    """Inside an Airflow task, remember the MLflow run it logs to; elsewhere, do nothing.

    ``plugins/churnops_plugin.py`` turns this XCom into the task instance's "MLflow run" link.
    The library calls this whenever it opens a run, so the CLI and tests (no task context)
    are unaffected.
    """
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # not in a task (or no Airflow at all)
        return
    ti.xcom_push(key=MLFLOW_RUN_XCOM_KEY, value=f"{experiment_id}/{run_id}")
