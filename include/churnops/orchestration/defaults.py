"""What every churnops DAG shares: start date, tags, run limits, ``default_args`` and common Params.

Imported at the top of DAG files, so it stays light: Airflow's ``Param`` is imported inside
the functions and nothing here pulls in pandas, scikit-learn or MLflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pendulum

from churnops.config import MODEL_FAMILIES
from churnops.orchestration.runtime import config_path_param, task_defaults

if TYPE_CHECKING:
    from airflow.sdk import Param

__all__ = ["PROMOTION_POOL", "START_DATE", "common_params", "dag_settings", "families_param"]

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
        ``start_date``, ``catchup`` (off), ``max_active_runs`` (1), ``tags`` and ``default_args``.
    """
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["churnops", *tags],
        "default_args": task_defaults(retries),
    }


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
