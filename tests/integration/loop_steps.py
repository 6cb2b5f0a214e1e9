"""Steps of the loop shared by the integration tests (LocalExecutor and CeleryExecutor stacks)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

MODEL = "churn-predictor"  # the Telco config's; each stack has its own MLflow server
DAG_IDS = ("churn_training", "churn_monitoring", "churn_retraining")
# On or after the DAGs' start_date, and always in the past: the run the scheduler creates for
# today when churn_monitoring is unpaused can never land on a simulated day.
D0 = date(2026, 1, 1)
STABLE, SIMULATED, RAMP = 10, 40, 3
DAY = D0 + timedelta(days=SIMULATED - 1)  # fully drifted, with a month of matured labels behind it
MIN_GAIN = 0.01


def mlflow_client(stack):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)


def variable(stack, key: str) -> dict | None:
    response = stack.http.get(f"/api/v2/variables/{key}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, f"GET variable {key}: {response.status_code} {response.text}"
    return json.loads(response.json()["value"])


def seconds_between(start: str, end: str) -> float:
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)


def train_and_simulate(stack, timings: dict[str, float]) -> None:
    """churn_training through the REST API (→ @champion v1) while 40 days are simulated."""
    stack.unpause(*DAG_IDS)
    stack.trigger("churn_training", "it_training")
    stack.run(
        "churnops",
        "simulate",
        "--start",
        D0.isoformat(),
        "--days",
        str(STABLE),
        "--rows-per-day",
        "1500",
        "--scenario",
        "stable",
        "--seed",
        "7",
        "--json",
    )
    drift_start = (D0 + timedelta(days=STABLE)).isoformat()
    stack.run(
        "churnops",
        "simulate",
        "--start",
        drift_start,
        "--days",
        str(SIMULATED - STABLE),
        "--rows-per-day",
        "1500",
        "--scenario",
        "mixed",
        "--seed",
        "7",
        "--drift-start",
        drift_start,
        "--ramp-days",
        str(RAMP),
        "--json",
    )
    run = stack.wait_for_run("churn_training", "it_training", timeout=240)
    timings["churn_training (queued → success)"] = seconds_between(run["queued_at"], run["end_date"])
    champion = mlflow_client(stack).get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == "1", f"churn_training registered {champion.version} as @champion"


def drifted_day_triggers_a_retraining_that_decides_per_policy(stack, timings: dict[str, float]) -> None:
    day = DAY.isoformat()
    monitoring_run = f"it_monitoring__{day}"
    stack.trigger("churn_monitoring", monitoring_run, logical_date=f"{day}T00:00:00Z")
    run = stack.wait_for_run("churn_monitoring", monitoring_run, timeout=180)
    timings["churn_monitoring, one day (queued → success)"] = seconds_between(run["queued_at"], run["end_date"])
    tasks = stack.task_states("churn_monitoring", monitoring_run)
    assert tasks["trigger_retraining"] == "success" and tasks["no_retraining"] == "skipped", tasks
    report = json.loads((stack.churnops_home / "reports" / f"date={day}" / "drift_report.json").read_text())
    assert report["decision"] == "retrain", report
    # The stack's config cuts a 1,500-row day into 3 shards: three mapped score_shard task instances.
    assert {k: v for k, v in tasks.items() if k.startswith("score_shard")} == {
        f"score_shard[{k}]": "success" for k in range(3)
    }, tasks
    assert report["shards"] == 3

    # The run the operator created, executed by the scheduler (dag.test would leave it queued).
    retraining_run = f"monitoring__{day}"
    run = stack.wait_for_run("churn_retraining", retraining_run, timeout=300)
    timings["churn_retraining (queued → success)"] = seconds_between(run["queued_at"], run["end_date"])
    assert run["run_type"] == "operator_triggered", run
    assert run["conf"]["as_of"] == day and run["conf"]["reason"] and run["conf"]["source_run_id"] == monitoring_run
    instances = {ti["task_id"]: ti for ti in stack.task_instances("churn_retraining", retraining_run)}
    tasks = {task_id: ti["state"] for task_id, ti in instances.items()}
    assert instances["promote"]["pool"] == "churnops_promotion"

    client = mlflow_client(stack)
    registered = [
        v
        for v in client.search_model_versions(f"name = '{MODEL}'")
        if v.tags.get("churnops.dag_run_id") == retraining_run
    ]
    assert len(registered) == 1, f"{retraining_run} should register one version: {[v.version for v in registered]}"
    challenger = registered[0]
    assert challenger.tags["churnops.decision_run"] == retraining_run
    gain = float(challenger.tags["churnops.gain"])
    champion = client.get_model_version_by_alias(MODEL, "champion")
    last_promotion = variable(stack, "churnops_last_promotion")
    if gain > MIN_GAIN:
        assert tasks["promote"] == "success" and tasks["reject"] == "skipped", tasks
        assert challenger.tags["churnops.decision"] == "promoted"
        assert str(champion.version) == str(challenger.version)
        assert str(client.get_model_version_by_alias(MODEL, "previous_champion").version) == "1"
        assert last_promotion is not None, "promoted, but Variable churnops_last_promotion was not set"
        assert last_promotion["date"] == day and str(last_promotion["version"]) == str(challenger.version)
        assert str(last_promotion["previous_version"]) == "1" and last_promotion["run_id"] == retraining_run
        assert last_promotion["forced"] is False
    else:
        assert tasks["reject"] == "success" and tasks["promote"] == "skipped", tasks
        assert challenger.tags["churnops.decision"] == "rejected"
        assert str(champion.version) == "1"
        assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == str(challenger.version)
        assert last_promotion is None
    assert gain > MIN_GAIN, f"the drifted window should give the challenger a real gain, got {gain}"


def report_timings(stack, timings: dict[str, float]) -> None:
    (stack.root / "timings.json").write_text(json.dumps(timings, indent=2))
    print(f"\nintegration stage timings ({stack.database}, {stack.executor}): {json.dumps(timings)}")
