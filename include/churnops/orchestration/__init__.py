"""Airflow: the only part of the library that imports it (besides ``dags/`` and ``plugins/``).

Imported at the top of DAG files, so the package itself stays light. Its modules:

- :mod:`~churnops.orchestration.runtime`: a task's run identity, its day, the failure policy
  (bad input fails at once, other errors retry), confined config paths.
- :mod:`~churnops.orchestration.defaults`: what every DAG shares (start date, tags, Params,
  each step's ``execution_timeout``).
- :mod:`~churnops.orchestration.tasks`: the training steps as TaskFlow tasks (imports Airflow:
  DAG files import it directly).
- :mod:`~churnops.orchestration.variables`: the promotion state in Airflow Variables (imported
  by the tasks that read or write it, and by the store below).
- :mod:`~churnops.orchestration.state_store`: which store the CLI's promotion state is in (the
  Airflow Variables when an Airflow is configured, else a file), without importing Airflow.
- :mod:`~churnops.orchestration.settings`: ``airflow_settings.yaml`` applied with Airflow's CLI.
- :mod:`~churnops.orchestration.sqlite`, :mod:`~churnops.orchestration.prewarm`: Airflow
  process settings (SQLite write locks, libraries imported before tasks fork).
"""

from churnops.orchestration.defaults import (
    PROMOTION_POOL,
    START_DATE,
    common_params,
    dag_settings,
    deployment_orchestration,
    families_param,
    with_step_timeouts,
)
from churnops.orchestration.runtime import (
    CONFIG_PATH_PATTERN,
    MLFLOW_RUN_XCOM_KEY,
    airflow_run_context,
    config_path_param,
    confined_config_path,
    fail_fast_on_bad_input,
    is_backfill,
    publish_mlflow_run,
    run_as_of,
    run_config,
    run_config_path,
    run_day,
    running_runs_on_days,
    task_defaults,
)
from churnops.orchestration.settings import AirflowSettings, apply_settings, import_files, load_settings
from churnops.orchestration.state_store import (
    STATE_ENV,
    STATE_STORES,
    PromotionStore,
    airflow_configuration,
    open_promotion_state,
)

__all__ = [
    "AirflowSettings",
    "CONFIG_PATH_PATTERN",
    "MLFLOW_RUN_XCOM_KEY",
    "PROMOTION_POOL",
    "PromotionStore",
    "STATE_ENV",
    "STATE_STORES",
    "START_DATE",
    "airflow_configuration",
    "airflow_run_context",
    "apply_settings",
    "common_params",
    "config_path_param",
    "confined_config_path",
    "dag_settings",
    "deployment_orchestration",
    "fail_fast_on_bad_input",
    "import_files",
    "families_param",
    "is_backfill",
    "load_settings",
    "open_promotion_state",
    "publish_mlflow_run",
    "run_as_of",
    "run_config",
    "run_config_path",
    "run_day",
    "running_runs_on_days",
    "task_defaults",
    "with_step_timeouts",
]
