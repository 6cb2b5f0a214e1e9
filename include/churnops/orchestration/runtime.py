"""Glue between Airflow tasks and the library: run identity and failure policy.

Imported at the top of DAG files, so it must stay light: Airflow is imported inside
the functions and nothing here pulls in pandas, scikit-learn or MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from airflow.sdk import Param

    from churnops.config import ChurnopsConfig

__all__ = [
    "CONFIG_PATH_PATTERN",
    "MLFLOW_RUN_XCOM_KEY",
    "airflow_run_context",
    "config_path_param",
    "confined_config_path",
    "fail_fast_on_bad_input",
    "is_backfill",
    "publish_mlflow_run",
    "run_as_of",
    "run_config",
    "run_config_path",
    "run_day",
    "running_runs_on_days",
    "task_defaults",
]

MLFLOW_RUN_XCOM_KEY = "churnops_mlflow_run"
"""XCom key of ``<experiment id>/<run id>`` of the MLflow run a task logged to (read by the plugin's link)."""

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_PATH_PATTERN = r"^$|^[^\x00]+\.ya?ml$"
"""What the UI accepts as a config path (checked by the Param's JSON schema before a run starts);
empty means the default, as ``churn_monitoring`` passes it on to the retraining it triggers."""


RETRY_DELAY_ENV = "CHURNOPS_RETRY_DELAY_SECONDS"
"""First retry delay in seconds (default 30), read when a DAG file is parsed; the fault tests use 2."""


def task_defaults(retries: int = 3, timeout_minutes: float | None = None) -> dict[str, Any]:
    """``default_args`` of every churnops DAG: retries with exponential backoff, a time limit.

    A transient failure (the tracking server restarting, a metadata DB failover, a killed
    worker) is retried after the first delay, then twice and four times that, capped at ten
    minutes; bad input is not retried at all (:func:`fail_fast_on_bad_input`). Every step is
    idempotent, so a retry after a crash at any point redoes or resumes it without duplicates.
    A task running past ``timeout_minutes`` fails with Airflow's ``AirflowTaskTimeout`` (and is
    retried), so a hung step gives its worker slot back.

    Args:
        retries: retries of each task.
        timeout_minutes: each task's ``execution_timeout`` (None: no limit).

    Returns:
        ``owner``, ``retries``, ``retry_delay`` (``$CHURNOPS_RETRY_DELAY_SECONDS``, default 30 s),
        ``retry_exponential_backoff``, ``max_retry_delay`` and ``execution_timeout``.
    """
    import os
    from datetime import timedelta

    return {
        "owner": "churnops",
        "retries": retries,
        "retry_delay": timedelta(seconds=float(os.environ.get(RETRY_DELAY_ENV) or 30)),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": None if timeout_minutes is None else timedelta(minutes=timeout_minutes),
    }


def config_path_param() -> Param:
    """The ``config_path`` Param every churnops DAG takes (a YAML path, or empty for the default)."""
    from airflow.sdk import Param

    return Param(
        None,
        type=["null", "string"],
        pattern=CONFIG_PATH_PATTERN,
        title="Config file",
        description="A churnops YAML config inside the project or $CHURNOPS_HOME (or a folder in "
        "$CHURNOPS_ALLOWED_PATHS). Empty: $CHURNOPS_CONFIG, else the bundled Telco config.",
    )


def allowed_config_roots() -> list[Path]:
    """Folders a config path from a Param or a run's conf may point into."""
    import os
    from pathlib import Path

    from churnops.config import churnops_home

    project = Path(__file__).resolve().parents[3]  # include/churnops/orchestration/runtime.py → the project
    roots = [project, churnops_home()]
    if os.environ.get("CHURNOPS_CONFIG"):
        roots.append(Path(os.environ["CHURNOPS_CONFIG"]).expanduser().resolve().parent)
    roots += [
        Path(p).expanduser().resolve() for p in os.environ.get("CHURNOPS_ALLOWED_PATHS", "").split(os.pathsep) if p
    ]
    return roots


def confined_config_path(value: str | None) -> str | None:
    """A config path from a Param or a run's conf, resolved and confined to :func:`allowed_config_roots`.

    Empty means the default (None: ``$CHURNOPS_CONFIG`` or the bundled config, both chosen by the
    operator). A path that resolves (symlinks and ``..`` included) outside those folders, that is
    not a ``.yaml``/``.yml`` file name, or whose config names a data source outside them, is bad
    input: a UI user cannot make a worker read an arbitrary file, directly or through a config.

    Args:
        value: the path as given, or None or empty for the default.

    Returns:
        The resolved path, or None for the default.

    Raises:
        ChurnopsInputError: the path is not a YAML file name, lies outside the allowed folders,
            or names a config that is invalid or has a source outside them.
    """
    from pathlib import Path

    from churnops.config import load_config
    from churnops.errors import ChurnopsInputError

    if not value:
        return None
    resolved = Path(value).expanduser().resolve()
    if resolved.suffix.lower() not in {".yaml", ".yml"}:
        raise ChurnopsInputError(f"config_path must name a .yaml or .yml file, not {value!r}")
    roots = allowed_config_roots()
    hint = f"the allowed folders ({', '.join(map(str, roots))}); add its folder to $CHURNOPS_ALLOWED_PATHS"
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ChurnopsInputError(f"config_path {value!r} is outside {hint}")
    for source in load_config(resolved).dataset.sources:  # load_config made source paths absolute
        if not any(source.path.resolve().is_relative_to(root) for root in roots):
            raise ChurnopsInputError(f"config {value!r}: source {source.name!r} ({source.path}) is outside {hint}")
    return str(resolved)


def run_config(value: str | None) -> ChurnopsConfig:
    """The config a task runs with: :func:`confined_config_path`, loaded.

    Args:
        value: the ``config_path`` Param (None or empty: the default config).

    Returns:
        The validated config.

    Raises:
        ChurnopsInputError: the path or the config is bad input, which
            :func:`fail_fast_on_bad_input` turns into a failure without retries.
    """
    from churnops.config import load_config

    return load_config(confined_config_path(value))


def run_config_path(params: dict[str, Any]) -> str | None:
    """The config path of a run: its ``config_path`` Param, else its conf's (a triggered run), confined.

    Args:
        params: the task's Params.

    Returns:
        :func:`confined_config_path` of that path.
    """
    return confined_config_path(_param_or_conf(params, "config_path"))


def run_as_of(params: dict[str, Any]) -> str:
    """The day a retraining run is about, ``YYYY-MM-DD``: its ``as_of`` Param, else its conf's, else its date.

    A triggered run's logical date is the trigger time, so ``churn_monitoring`` passes the
    monitored day as ``as_of``; the text is checked to be a date.

    Args:
        params: the task's Params.

    Returns:
        The day as ``YYYY-MM-DD``.

    Raises:
        ChurnopsInputError: the chosen value is not a date.
    """
    from churnops.days import parse_day

    return parse_day(_param_or_conf(params, "as_of") or airflow_run_context()["logical_date"]).isoformat()


def _param_or_conf(params: dict[str, Any], key: str) -> Any:
    # A triggered run (churn_monitoring's) carries its values in the conf as well as the Params.
    from airflow.sdk import get_current_context

    conf = get_current_context()["dag_run"].conf or {}
    return params.get(key) or conf.get(key)


def airflow_run_context() -> dict[str, Any]:
    """The running task's DAG id, run id and date, as a ``RunContext`` dict.

    Manual runs have no logical date; their ``run_after`` stands in for it.
    """
    from airflow.sdk import get_current_context

    dag_run = get_current_context()["dag_run"]
    when = dag_run.logical_date or dag_run.run_after
    return {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "logical_date": when.isoformat() if when else None}


def fail_fast_on_bad_input(function: F) -> F:
    """Churnops' failure policy for a task: stack it under ``@task`` (``@task`` then
    ``@fail_fast_on_bad_input`` on the task function; Airflow still sees the function's own
    signature, name and docstring).

    :class:`~churnops.errors.ChurnopsInputError` becomes ``AirflowFailException``: bad input will
    not fix itself on retry, so the task fails at once. Other errors keep the
    task's retries (with exponential backoff, :func:`task_defaults`); one raised while the
    MLflow tracking server is down becomes :class:`~churnops.errors.TrackingServerUnavailable`,
    a one-line message naming the server instead of a page about HTTP retries. Every MLflow
    run the task opens is published for the UI's "MLflow run" link (:func:`publish_mlflow_run`).

    Args:
        function: the task function.

    Returns:
        The function wrapped with the policy (marked ``churnops_failure_policy``).
    """

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from churnops.errors import ChurnopsInputError
        from churnops.tracking import listening_for_runs, tracking_outage

        try:
            with listening_for_runs(publish_mlflow_run):
                return function(*args, **kwargs)
        except ChurnopsInputError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc
        except Exception as exc:
            outage = tracking_outage(exc)
            if outage is None:
                raise
            raise outage from exc

    wrapper.churnops_failure_policy = True  # type: ignore[attr-defined]  # checked by the DAG integrity tests
    return wrapper  # type: ignore[return-value]


def run_day() -> str:
    """The day a run is about, ``YYYY-MM-DD``: its logical date, else (manual runs) ``run_after``."""
    return airflow_run_context()["logical_date"][:10]


def running_runs_on_days(days: list[date]) -> int:
    """How many runs of the running task's DAG with these logical days are still running.

    Asked through the execution API (a task may not touch the metadata DB). A day's logical
    date is its midnight UTC, as for scheduled and backfill runs.

    Args:
        days: the days.

    Returns:
        The number of running DAG runs among them.
    """
    from datetime import UTC, datetime

    from airflow.sdk import get_current_context

    context = get_current_context()
    midnights = [datetime(day.year, day.month, day.day, tzinfo=UTC) for day in days]
    return context["ti"].get_dr_count(dag_id=context["dag"].dag_id, logical_dates=midnights, states=["running"])


def is_backfill() -> bool:
    """Whether the running task belongs to a backfill run."""
    from airflow.sdk import get_current_context

    return get_current_context()["dag_run"].run_type == "backfill"


def publish_mlflow_run(experiment_id: str, run_id: str) -> None:
    """Inside an Airflow task, remember the MLflow run it logs to; elsewhere, do nothing.

    ``plugins/churnops_plugin.py`` turns this XCom into the task instance's "MLflow run" link.
    :func:`fail_fast_on_bad_input` makes it a listener of every run the library opens
    (:func:`churnops.tracking.listening_for_runs`) for the duration of the task.

    Args:
        experiment_id: the run's experiment.
        run_id: the run.
    """
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # not in a task (or no Airflow at all)
        return
    ti.xcom_push(key=MLFLOW_RUN_XCOM_KEY, value=f"{experiment_id}/{run_id}")
