"""
### churn_rollback

Undo the last promotion from the UI: move `@champion` back to `@previous_champion`.

The two versions swap aliases, both are tagged `churnops.decision=rolled_back` with the reason,
and the Airflow Variable `churnops_last_promotion` records the rollback (so the cooldown starts
again from the run's date). The same as `churnops rollback` on the command line.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from churnops.orchestration import (
    airflow_run_context,
    config_path_param,
    fail_fast_on_bad_input,
    run_config,
    task_defaults,
)


@dag(
    dag_id=Path(__file__).stem,
    description="Move @champion back to @previous_champion (undo the last promotion).",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["churnops", "registry"],
    default_args=task_defaults(),
    params={
        "reason": Param(
            "manual rollback",
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason",
            description="Why the champion is rolled back; recorded on both versions.",
        ),
        "config_path": config_path_param(),
    },
)
def churn_rollback():
    @task(pool="churnops_promotion")
    @fail_fast_on_bad_input
    def rollback(params: dict | None = None) -> dict:
        """Swap @champion and @previous_champion; record it in the Variable."""
        from churnops.retraining_pipeline import rollback_and_record
        from churnops.state import AirflowVariableState

        return rollback_and_record(
            run_config(params["config_path"]), AirflowVariableState(), airflow_run_context(), params["reason"]
        )

    rollback()


churn_rollback()
