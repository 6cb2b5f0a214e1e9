"""The monitoring → retraining chain under a real Airflow scheduler, not ``dag.test()``.

``dag.test()`` never runs the run a ``TriggerDagRunOperator`` creates, ignores pools, and lets a
task reach the metadata DB directly. Here every task runs in a LocalExecutor worker and talks to
the api-server's execution API, as in production:

churn_training (REST trigger) registers @champion → 10 stable then 30 drifted days are
simulated → churn_monitoring for a fully drifted day (REST, with that logical date) takes the
``trigger_retraining`` branch → the scheduler runs churn_retraining ``monitoring__<day>``, which
promotes or rejects per the policy (promotion in the one-slot pool, Variable, aliases) → a second
retraining inside the cooldown stops after ``check_cooldown``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

pytestmark = pytest.mark.integration

MODEL = "it-model"
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


@pytest.fixture(scope="module")
def loop(airflow_stack):
    """A champion trained by churn_training under the scheduler, and 40 simulated days."""
    stack = airflow_stack
    stack.unpause(*DAG_IDS)
    stack.trigger("churn_training", "it_training")
    stack.run("churnops", "simulate", "--start", D0.isoformat(), "--days", str(STABLE), "--rows-per-day", "1500",
              "--scenario", "stable", "--seed", "7", "--json")
    drift_start = (D0 + timedelta(days=STABLE)).isoformat()
    stack.run("churnops", "simulate", "--start", drift_start, "--days", str(SIMULATED - STABLE),
              "--rows-per-day", "1500", "--scenario", "mixed", "--seed", "7", "--drift-start", drift_start,
              "--ramp-days", str(RAMP), "--json")
    stack.wait_for_run("churn_training", "it_training", timeout=240)
    champion = mlflow_client(stack).get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == "1", f"churn_training registered {champion.version} as @champion"
    return stack


def test_drifted_day_triggers_a_retraining_that_decides_per_policy(loop):
    stack, day = loop, DAY.isoformat()
    monitoring_run = f"it_monitoring__{day}"
    stack.trigger("churn_monitoring", monitoring_run, logical_date=f"{day}T00:00:00Z")
    stack.wait_for_run("churn_monitoring", monitoring_run, timeout=180)
    tasks = stack.task_states("churn_monitoring", monitoring_run)
    assert tasks["trigger_retraining"] == "success" and tasks["no_retraining"] == "skipped", tasks
    report = json.loads((stack.churnops_home / "reports" / f"date={day}" / "drift_report.json").read_text())
    assert report["decision"] == "retrain", report

    # The run the operator created, executed by the scheduler (dag.test would leave it queued).
    retraining_run = f"monitoring__{day}"
    run = stack.wait_for_run("churn_retraining", retraining_run, timeout=300)
    assert run["run_type"] == "operator_triggered", run
    assert run["conf"]["as_of"] == day and run["conf"]["reason"] and run["conf"]["source_run_id"] == monitoring_run
    instances = {ti["task_id"]: ti for ti in stack.task_instances("churn_retraining", retraining_run)}
    tasks = {task_id: ti["state"] for task_id, ti in instances.items()}
    assert instances["promote"]["pool"] == "churnops_promotion"

    client = mlflow_client(stack)
    registered = [v for v in client.search_model_versions(f"name = '{MODEL}'")
                  if v.tags.get("churnops.dag_run_id") == retraining_run]
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


def test_retraining_inside_the_cooldown_stops_after_check_cooldown(loop):
    stack = loop
    last_promotion = variable(stack, "churnops_last_promotion")
    if last_promotion is None:
        pytest.fail("no promotion recorded (see the previous test): there is no cooldown to be inside")
    as_of = (DAY + timedelta(days=1)).isoformat()
    run_id = f"it_cooldown__{as_of}"
    stack.trigger("churn_retraining", run_id, conf={"as_of": as_of})
    stack.wait_for_run("churn_retraining", run_id, timeout=120)
    tasks = stack.task_states("churn_retraining", run_id)
    assert tasks.pop("check_cooldown") == "success"
    assert tasks and set(tasks.values()) == {"skipped"}, tasks

    client = mlflow_client(stack)
    experiment = client.get_experiment_by_name("churnops-telco")
    skipped = client.search_runs([experiment.experiment_id],
                                 f"tags.`churnops.run_id` = '{run_id}' and tags.`churnops.decision` = 'skipped'")
    assert len(skipped) == 1 and "in cooldown" in skipped[0].data.tags["churnops.decision_reason"]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == str(last_promotion["version"])
    assert variable(stack, "churnops_last_promotion") == last_promotion
