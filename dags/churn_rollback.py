"""
### churn_rollback

Undo the last promotion from the UI: move `@champion` back to `@previous_champion`.

`plan` reads which version goes back to `@champion`; `rollback` swaps the two aliases only if
the registry still shows that pair, so a retry finishes its own swap instead of undoing it. Both
versions are tagged `churnops.decision=rolled_back` with the reason, and the Airflow Variable
`churnops_last_promotion` records the rollback under the promotion lock (so the cooldown starts
again from the run's date). The same as `churnops rollback` on the command line.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param, dag, task

from churnops.orchestration import (
    PROMOTION_POOL,
    airflow_run_context,
    common_params,
    dag_settings,
    fail_fast_on_bad_input,
    run_config,
    with_step_timeouts,
)


@dag(
    dag_id=Path(__file__).stem,
    description="Move @champion back to @previous_champion (undo the last promotion).",
    doc_md=__doc__,
    schedule=None,
    params={
        "reason": Param(
            "manual rollback",
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason",
            description="Why the champion is rolled back; recorded on both versions.",
        ),
        **common_params(),
    },
    **dag_settings("registry"),
)
def churn_rollback():
    @task
    @fail_fast_on_bad_input
    def plan(params: dict | None = None) -> dict:
        """Which version goes back to @champion: planned once, so a retried rollback cannot swap back."""
        from churnops.retraining import rollback_plan

        return rollback_plan(run_config(params["config_path"]))

    @task(pool=PROMOTION_POOL)
    @fail_fast_on_bad_input
    def rollback(planned: dict, params: dict | None = None) -> dict:
        """Swap @champion and @previous_champion as planned; record it in the Variable; alert."""
        from churnops.orchestration.alerts import rollback_alert
        from churnops.orchestration.notifier import send_alert
        from churnops.orchestration.variables import AirflowVariableState
        from churnops.retraining import rollback_and_record

        config = run_config(params["config_path"])
        moved = rollback_and_record(config, AirflowVariableState(), airflow_run_context(), params["reason"], planned)
        send_alert(rollback_alert, moved, params["reason"])
        return moved

    rollback(plan())


with_step_timeouts(churn_rollback())
