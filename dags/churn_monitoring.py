"""
### churn_monitoring

Daily health check of the `@champion` model on the day's production batch.

`wait_for_batch → check_batch → plan_shards → score_shard[i] → merge_shards → [feature_drift, prediction_drift,`
`wait_for_matured_days → performance] → report → decide → trigger_retraining | no_retraining`

* The day is the run's **logical date**: every task reads and writes that day's partitions under
  `$CHURNOPS_HOME` (`incoming/`, `predictions/`, `reports/` with `date=YYYY-MM-DD`), so a rerun or a
  `airflow backfill create` of a day gives the same result and no duplicates. One MLflow run per
  day (experiment `churnops-<dataset>-monitoring`) is reused by reruns.
* Scale: a day of more than `monitoring.shard_rows` rows is cut into shards of whole chunks, each
  scored by one mapped `score_shard` task (run them on several workers with the CeleryExecutor);
  `merge_shards` joins their predictions and drift parts. Counts and ROC-AUC merge exactly and
  the KS samples are seeded per chunk, so the report does not depend on the number of shards.
* Feature drift: KS (numeric) and chi-square contingency (categorical) against the scoring model's
  own training data, with p < `monitoring.p_value` **and** effect size > `monitoring.min_effect_size`;
  dataset drift when more than `monitoring.drifted_feature_share` of features drift. Prediction
  drift by KS, target drift by chi-square; realized ROC-AUC on labels matured
  (`label_delay_days`) within the trailing `label_window_days`.
* `wait_for_matured_days` holds `performance` while runs of the days whose matured labels it
  reads are still running (in a backfill with `--max-active-runs` above 1, earlier days run side
  by side), so running days in parallel gives the same results as running them in order. It
  waits only for runs that exist and are running: a day that failed or was never run is not
  waited for (its predictions are simply absent, as in a sequential run).
* `decide` branches to `trigger_retraining` (run id `monitoring__<day>`: a rerun never starts a
  second one) when a signal of `monitoring.triggers` fired (default: dataset drift, the
  performance alarm, the estimated-performance alarm; prediction and target drift can be added).
  Backfill runs do not trigger retraining unless the `retrain_from_backfill` Param is set.
* `wait_for_batch` holds the day until its producer has written the arrival marker
  (`monitoring.arrival_marker`, e.g. `_SUCCESS` in `incoming/date=D/`): a batch still being
  written is waited for, never listed, judged or quarantined. Without a marker configured it
  passes at once. With `monitoring.batch_folder: serving` the batch is what `churnops serve`
  answered that day (`serving/date=D/`), waited for until the day is over and logged. A file
  that still changes after `check_batch` read it (rows appended, rewritten, replaced) fails the
  run at once with nothing published or quarantined: run the day again.
* A missing day fails at once with a clear message; an invalid batch is quarantined with its reason
  (`check_batch`: unreadable file, missing column, too few rows; `merge_shards`: the row rules
  over the shards' tallies, before any prediction is published) and the run fails without retries.
"""

from __future__ import annotations

from pathlib import Path

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, PokeReturnValue, dag, task

from churnops.orchestration import (
    airflow_run_context,
    common_params,
    dag_settings,
    fail_fast_on_bad_input,
    is_backfill,
    run_config,
    run_day,
    running_runs_on_days,
    with_step_timeouts,
)

DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"


@dag(
    dag_id=Path(__file__).stem,
    description="Score the day's batch with @champion, measure drift and realized performance, maybe retrain.",
    doc_md=__doc__,
    schedule="@daily",
    params={
        **common_params(),
        "retrain_from_backfill": Param(
            False,
            type="boolean",
            title="Retrain from backfill runs",
            description="Let a backfilled day trigger churn_retraining (off by default).",
        ),
    },
    **dag_settings("monitoring", "mlflow"),
)
def churn_monitoring():
    @task.sensor(poke_interval=60, timeout=12 * 3600, mode="reschedule")
    @fail_fast_on_bad_input
    def wait_for_batch(params: dict | None = None) -> bool:
        """Wait until the day's batch is complete (`monitoring.arrival_marker`, a served day's end)."""
        from churnops.monitoring import arrived

        return arrived(run_config(params["config_path"]), "incoming", run_day())

    @task
    @fail_fast_on_bad_input
    def check_batch(params: dict | None = None) -> dict:
        """Find the day's files; check each is readable with the required columns; count rows."""
        from churnops.monitoring import check_batch

        return check_batch(run_config(params["config_path"]), run_day())

    @task
    @fail_fast_on_bad_input
    def plan_shards(batch: dict, params: dict | None = None) -> list[dict]:
        """Cut the day into shards of at most `monitoring.shard_rows` rows; fix the @champion version."""
        from churnops.monitoring import plan_shards

        return plan_shards(run_config(params["config_path"]), batch["date"], batch)

    @task(map_index_template="{{ shard_label }}")
    @fail_fast_on_bad_input
    def score_shard(shard: dict, params: dict | None = None) -> dict:
        """Score one shard; tally its rows for validation, its counts and samples for drift."""
        from airflow.sdk import get_current_context

        from churnops.monitoring import score_shard

        # The label the UI shows for this mapped instance: "rows 0-2500000 (1/4)".
        first, last = shard["first_row"], shard["first_row"] + shard["rows"]
        get_current_context()["shard_label"] = f"rows {first}-{last} ({shard['index'] + 1}/{shard['count']})"
        return score_shard(run_config(params["config_path"]), shard["date"], shard)

    @task
    @fail_fast_on_bad_input
    def merge_shards(parts: list[dict], params: dict | None = None) -> dict:
        """Judge the merged validation tallies (quarantine on failure), then publish predictions, merge drift parts."""
        from churnops.monitoring import merge_shards

        parts = list(parts)
        return merge_shards(run_config(params["config_path"]), parts[0]["date"], parts)

    @task
    @fail_fast_on_bad_input
    def feature_drift(scored: dict, params: dict | None = None) -> dict:
        """Per-feature drift against the champion's training data."""
        from churnops.monitoring import feature_drift_step

        return feature_drift_step(run_config(params["config_path"]), scored["date"], scored)

    @task
    @fail_fast_on_bad_input
    def prediction_drift(scored: dict, params: dict | None = None) -> dict:
        """Drift of the champion's scores."""
        from churnops.monitoring import prediction_drift_step

        return prediction_drift_step(run_config(params["config_path"]), scored["date"], scored)

    @task.sensor(poke_interval=10, timeout=6 * 3600, mode="reschedule")
    @fail_fast_on_bad_input
    def wait_for_matured_days(scored: dict, params: dict | None = None) -> PokeReturnValue:
        """Hold the day while runs of the days its matured labels refer to are still running."""
        import logging

        from churnops.days import matured_days

        running = running_runs_on_days(matured_days(run_config(params["config_path"]), scored["date"]))
        if running:
            logging.getLogger(__name__).info("waiting for %d running run(s) of matured label days", running)
        return PokeReturnValue(is_done=running == 0, xcom_value=scored)

    @task
    @fail_fast_on_bad_input
    def performance(scored: dict, params: dict | None = None) -> dict:
        """Target drift and realized ROC-AUC on matured labels."""
        from churnops.monitoring import performance_step

        return performance_step(run_config(params["config_path"]), scored["date"], scored)

    @task
    @fail_fast_on_bad_input
    def report(scored: dict, features: dict, prediction: dict, perf: dict, params: dict | None = None) -> dict:
        """Decide; write the JSON + HTML report and log it to the day's MLflow run."""
        from churnops.monitoring import report_step

        context = {f"churnops.{k}": str(v) for k, v in airflow_run_context().items()}
        config = run_config(params["config_path"])
        return report_step(config, scored["date"], scored, features, prediction, perf, context)

    @task.branch
    def decide(summary: dict, params: dict | None = None) -> str:
        """Retrain (and alert) when an enabled trigger fired; not from backfills unless allowed."""
        if summary["decision"] != "retrain":
            return "no_retraining"
        if is_backfill() and not params["retrain_from_backfill"]:
            return "no_retraining"
        from churnops.orchestration.alerts import retrain_alert
        from churnops.orchestration.notifier import send_alert

        send_alert(retrain_alert, summary)
        return "trigger_retraining"

    trigger_retraining = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="churn_retraining",
        trigger_run_id="monitoring__" + DAY,
        skip_when_already_exists=True,
        conf={
            "as_of": DAY,
            "reason": "{{ ti.xcom_pull(task_ids='report')['reasons'] | join('; ') }}",
            "source_run_id": "{{ run_id }}",
            "config_path": "{{ params.config_path or '' }}",
        },
    )
    no_retraining = EmptyOperator(task_id="no_retraining")

    batch = check_batch()
    wait_for_batch() >> batch
    scored = merge_shards(score_shard.expand(shard=plan_shards(batch)))
    perf = performance(wait_for_matured_days(scored))
    summary = report(scored, feature_drift(scored), prediction_drift(scored), perf)
    decide(summary) >> [trigger_retraining, no_retraining]


with_step_timeouts(churn_monitoring())
