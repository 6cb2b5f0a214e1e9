"""Glue between Airflow tasks and the library: run identity and failure policy.

Imported at the top of DAG files, so it must stay light: Airflow is imported inside
the functions and nothing here pulls in pandas, scikit-learn or MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

__all__ = ["airflow_run_context", "fail_fast_on_bad_input", "is_backfill", "run_day"]

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
