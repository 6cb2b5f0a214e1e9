"""What every churnops DAG shares: start date, tags, run limits, ``default_args``, step timeouts and common Params.

Imported at the top of DAG files, so it stays light: Airflow's ``Param`` is imported inside
the functions and nothing here pulls in pandas, scikit-learn or MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import pendulum

from churnops.config import MODEL_FAMILIES, OrchestrationConfig, load_orchestration_config
from churnops.orchestration.runtime import config_path_param, task_defaults

if TYPE_CHECKING:
    from airflow.sdk import DAG, Param

__all__ = [
    "PROMOTION_POOL",
    "START_DATE",
    "common_params",
    "dag_settings",
    "deployment_orchestration",
    "families_param",
    "with_step_timeouts",
]

D = TypeVar("D", bound="DAG")

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
"""A fixed, timezone-aware start date (before any data churnops has): never ``now()``."""

PROMOTION_POOL = "churnops_promotion"
"""The one-slot pool (``airflow_settings.yaml``) that serialises promotions and rollbacks."""


def dag_settings(*tags: str, retries: int = 3) -> dict[str, Any]:
    """The ``@dag`` keyword arguments every churnops DAG shares.

    Args:
        *tags: the DAG's own tags, after ``churnops``.
        retries: retries of each task (see :func:`~churnops.orchestration.runtime.task_defaults`).

    Returns:
        ``start_date``, ``catchup`` (off), ``max_active_runs`` (1), ``tags`` and ``default_args``
        (with ``orchestration.default_timeout_minutes`` as every task's ``execution_timeout``;
        :func:`with_step_timeouts` then gives each task its own step's; and a
        :class:`~churnops.orchestration.notifier.ChurnopsNotifier` as ``on_failure_callback``, the
        alert of a task that failed for good).
    """
    from churnops.orchestration.notifier import ChurnopsNotifier

    default = deployment_orchestration().default_timeout_minutes
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["churnops", *tags],
        "default_args": {
            **task_defaults(retries, timeout_minutes=default),
            # Fires once a task has failed for good (a retry goes to on_retry_callback instead).
            "on_failure_callback": [ChurnopsNotifier()],
        },
    }


def deployment_orchestration() -> OrchestrationConfig:
    """The ``orchestration`` section of the deployment's config: ``$CHURNOPS_CONFIG``, else the bundled one.

    Read when a DAG file is parsed (:func:`~churnops.config.load_orchestration_config`: that
    section alone, a few milliseconds): a task's ``execution_timeout`` is fixed then, before any
    run's ``config_path`` Param is known.

    Returns:
        The section.

    Raises:
        ConfigError: that file is missing or its section invalid (the DAG file fails to import, saying so).
    """
    return load_orchestration_config()


def with_step_timeouts(dag: D) -> D:
    """Give each task of ``dag`` the ``execution_timeout`` of its step, by task id.

    The minutes come from the deployment's ``orchestration`` section
    (:meth:`~churnops.config.OrchestrationConfig.timeout_for`): a task running longer is
    stopped with Airflow's ``AirflowTaskTimeout`` and retried, instead of holding a worker slot
    for ever. A sensor keeps its own ``timeout`` for the whole wait; this bounds each poke.

    Args:
        dag: a churnops DAG, as its ``@dag`` function returns it.

    Returns:
        ``dag``, changed in place.
    """
    from datetime import timedelta

    orchestration = deployment_orchestration()
    for task in dag.tasks:
        task.execution_timeout = timedelta(minutes=orchestration.timeout_for(task.task_id))
    return dag


def common_params() -> dict[str, Any]:
    """The Params every churnops DAG takes: ``config_path``."""
    return {"config_path": config_path_param()}


def families_param() -> Param:
    """The ``families`` Param: a subset of the model families (a multi-select in the trigger form)."""
    from airflow.sdk import Param

    families = list(MODEL_FAMILIES)
    return Param(
        None,
        type=["null", "array"],
        items={"type": "string", "enum": families},
        uniqueItems=True,
        title="Model families",
        description=f"Subset of {families} to train. Empty: the config's list.",
    )
