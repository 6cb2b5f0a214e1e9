"""
### churn_retraining

Train a challenger and promote it only if it beats `@champion` on fresh labelled data.

`check_cooldown → start → validate → merge → add_recent_days → preprocess → features → train[family]`
`→ evaluate → register → compare → decide → promote | reject`

* **As-of date**: the `as_of` Param / conf (set by `churn_monitoring` to the monitored day). A
  triggered run's own logical date is the trigger time, so every date rule uses `as_of`.
* **Cooldowns**: after a promotion, Airflow Variables `churnops_last_promotion` (JSON: date,
  version, run id) and `churnops_cooldown_days` (default `policy.cooldown_days`); after a
  retraining attempt (a challenger trained, promoted or not), `churnops_last_retraining` and
  `policy.retraining_cooldown_days`, so persistent drift with failing challengers trains at most
  once per that period. `compare` records the attempt once the challenger is registered (a rerun
  of the same run neither counts twice nor blocks itself). Inside either cooldown
  `check_cooldown` short-circuits the run; which cooldown and why are in its log, an MLflow run
  and an alert. `force` overrides both and is recorded as such.
* **Training** reuses `churn_training`'s steps: the original sources plus matured labelled days
  of the training window; nested MLflow runs under one parent run.
* **Decision**: champion and challenger are scored on the same evaluation window (the latest
  matured days, never trained on); promote only when challenger − champion ROC-AUC >
  `policy.min_gain` (a paired-bootstrap CI is logged and, if configured, required to exclude 0).
* **Promotion** runs in pool `churnops_promotion` (one slot) and re-checks that `@champion` is
  still the evaluated version before moving `@champion` / `@previous_champion`.
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
    families_param,
    run_as_of,
    run_config_path,
    tasks,
    with_step_timeouts,
)


@dag(
    dag_id=Path(__file__).stem,
    description="Train a challenger and promote it only on a real ROC-AUC gain, outside the cooldown.",
    doc_md=__doc__,
    schedule=None,
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            title="As-of date",
            description="The day whose matured labels the run uses (YYYY-MM-DD). Empty: the run's date.",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Ignore the cooldown",
            description="Run and possibly promote even inside the cooldown; recorded on the run.",
        ),
        "reason": Param(None, type=["null", "string"], title="Reason", description="Why this retraining runs."),
        **common_params(),
        "families": families_param(),
    },
    **dag_settings("retraining", "mlflow"),
)
def churn_retraining():
    @task.short_circuit
    @fail_fast_on_bad_input
    def check_cooldown(params: dict | None = None) -> bool:
        """Stop here inside either cooldown (unless forced); which and why go to the log, MLflow and an alert."""
        import logging

        from churnops.config import load_config
        from churnops.orchestration.variables import AirflowVariableState
        from churnops.retraining import check_cooldown, record_skip
        from churnops.tracking import RunContext

        config = load_config(run_config_path(params))
        context = airflow_run_context()
        verdict = check_cooldown(
            config, run_as_of(params), AirflowVariableState(), params["force"], run_id=context["run_id"]
        )
        logging.getLogger(__name__).warning("cooldown check (%s): %s", verdict["cooldown"] or "none", verdict["reason"])
        if not verdict["proceed"]:
            from churnops.orchestration.alerts import cooldown_alert
            from churnops.orchestration.notifier import send_alert

            record_skip(config, RunContext(**context), verdict)
            send_alert(cooldown_alert, verdict)
        return verdict["proceed"]

    @task
    @fail_fast_on_bad_input
    def add_recent_days(merged: dict, params: dict | None = None) -> dict:
        """Original data + matured labelled days; set aside the fresh evaluation window."""
        from churnops.retraining import add_recent_days

        return add_recent_days(merged, run_as_of(params))

    @task
    @fail_fast_on_bad_input
    def compare(registered: dict, window: dict, params: dict | None = None) -> dict:
        """Record the attempt (it starts the retraining cooldown); score champion and challenger on
        the same fresh window; apply the policy."""
        from churnops.orchestration.variables import AirflowVariableState
        from churnops.retraining import compare_on_fresh_window, record_attempt

        ctx = airflow_run_context()
        record_attempt(
            AirflowVariableState(),
            run_as_of(params),
            {"run_id": ctx["run_id"], "dag_id": ctx["dag_id"]},
            registered["model_version"],
            forced=bool(params["force"]),
        )
        config_path = window["run"]["config_path"]
        return {
            **compare_on_fresh_window(registered, window["evaluation"], config_path),
            "parent_run_id": registered["parent_run_id"],
            "config_path": config_path,
        }

    @task.branch
    def decide(comparison: dict) -> str:
        return "promote" if comparison["promote"] else "reject"

    def _record(comparison: dict, params: dict) -> dict:
        from churnops.config import load_config
        from churnops.orchestration.alerts import decision_alert
        from churnops.orchestration.notifier import send_alert
        from churnops.orchestration.variables import AirflowVariableState
        from churnops.retraining import record_decision

        ctx = airflow_run_context()
        context = {"run_id": ctx["run_id"], "dag_id": ctx["dag_id"], "parent_run_id": comparison["parent_run_id"]}
        config = load_config(comparison["config_path"])
        state = AirflowVariableState()
        result = record_decision(config, comparison, run_as_of(params), state, context, forced=bool(params["force"]))
        send_alert(decision_alert, result)  # a promotion, or a rejection (a lost race included)
        return result

    @task(pool=PROMOTION_POOL)
    @fail_fast_on_bad_input
    def promote(comparison: dict, params: dict | None = None) -> dict:
        """Move @champion (serialised by the one-slot pool, re-checked before the move)."""
        return _record(comparison, params)

    @task
    @fail_fast_on_bad_input
    def reject(comparison: dict, params: dict | None = None) -> dict:
        """Keep @champion; tag the challenger with the reason."""
        return _record(comparison, params)

    started = tasks.start()
    check_cooldown() >> started
    window = add_recent_days(tasks.merge(tasks.validate(started)))
    prepared = tasks.features(tasks.preprocess(window))
    trained = tasks.train.partial(prepared=prepared).expand(family=tasks.model_families(prepared))
    comparison = compare(tasks.register(tasks.evaluate(trained)), window)
    decide(comparison) >> [promote(comparison), reject(comparison)]


with_step_timeouts(churn_retraining())
