"""Faults under the real scheduler on PostgreSQL: killed tasks, MLflow and PostgreSQL outages, a race.

One LocalExecutor stack whose metadata DB and MLflow store live on a PostgreSQL server of this
module's own (:class:`PrivatePostgres`), so the test can restart it without touching the machine's
shared server. Tasks retry after 1 s, 2 s, 4 s (``CHURNOPS_RETRY_DELAY_SECONDS=1`` and the DAGs'
exponential backoff) and MLflow's client does not retry by itself, so each fault costs seconds.
Crash points (:mod:`churnops.faults`) SIGKILL a task process once, where a crash hurts most:

1. churn_training: ``register`` killed after registering the version, before its alias;
2. churn_monitoring of a drifted day: a ``score_shard`` killed with its folder half written,
   ``merge_shards`` killed after publishing the predictions; the day triggers churn_retraining,
   whose ``promote`` is held back (the ``churnops_promotion`` pool at 0 slots);
3. MLflow stopped while that ``promote`` runs: retries with backoff, then a clear failure;
4. ``churnops retrain --force`` (the CLI; forced, as the DAG's attempt for that day started the
   retraining cooldown) races the DAG for the same day and promotes first, recording it in the
   DAGs' Variable; the DAG's ``promote``, cleared once MLflow is back, records ``conflict``;
5. after a CLI rollback (recorded in the same Variable, so the cooldown restarts), a forced retraining
   whose ``promote`` is killed after moving the aliases: the retry resumes it, and the Variable ends
   up matching the registry; then a ``churn_rollback`` whose ``rollback`` is killed after swapping
   the aliases: the retry finishes the swap (it does not swap back), and the Variable records one
   rollback;
6. MLflow stopped during a monitoring run: a clear failure, nothing published; the same run
   succeeds once the server is back;
7. PostgreSQL restarted while a 3-day monitoring backfill runs: every day completes, one result each.

Bad input under the scheduler (a corrupt batch) fails its task at the first try: no retries.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta

import pytest

from tests.airflow_stack import CHURNOPS, PrivatePostgres, running_stack
from tests.integration.loop_steps import D0, DAG_IDS, DAY, MODEL, RAMP, SIMULATED, STABLE, mlflow_client, variable

pytestmark = pytest.mark.integration

CRASH_POINTS = (
    "register:after_version",
    "score_shard:after_drift_parts",
    "merge_shards:after_predictions",
    "promote:after_aliases",
    "rollback:after_aliases",
)
RETRIES = 3  # churnops.orchestration.runtime.task_defaults
POOL = "churnops_promotion"
OUTAGE_DAY = D0 + timedelta(days=5)  # stable: its report does not trigger a retraining
BACKFILL_DAYS = [D0 + timedelta(days=d) for d in (1, 2, 3)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    try:
        postgres = PrivatePostgres()
    except Exception as exc:  # no server binaries, no postgres user: the shared server must not be restarted
        pytest.skip(f"needs a PostgreSQL server of its own to restart ({type(exc).__name__}: {exc})")
    env = {
        "CHURNOPS_CRASH_AT": ",".join(CRASH_POINTS),
        "CHURNOPS_RETRY_DELAY_SECONDS": "1",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    }
    try:
        with running_stack(root / "stack", extra_env=env, postgres_port=postgres.port) as running:
            if running.postgres is None:
                pytest.skip(f"no PostgreSQL metadata DB: {running.why_not_postgres}")
            running.private_postgres = postgres
            yield running
    finally:
        postgres.remove()


def crashed(stack, point: str) -> bool:
    return (stack.churnops_home / "crashes" / point).is_file()


def instances(stack, dag_id: str, run_id: str) -> dict[str, dict]:
    return {
        ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti
        for ti in stack.task_instances(dag_id, run_id)
    }


def set_pool_slots(stack, slots: int) -> None:
    stack.api(
        "PATCH",
        f"/pools/{POOL}",
        params={"update_mask": "slots"},
        json={"pool": POOL, "slots": slots, "include_deferred": False},
    )


def clear_failed(stack, dag_id: str, run_id: str) -> str:
    """Clear a failed run's failed tasks (the UI's "Clear → only failed"); its previous queued_at."""
    before = stack.dag_run(dag_id, run_id)["queued_at"]
    stack.api(
        "POST",
        f"/dags/{dag_id}/clearTaskInstances",
        json={"dry_run": False, "dag_run_id": run_id, "only_failed": True, "reset_dag_runs": True},
    )
    return before


def attempt_logs(stack, dag_id: str, run_id: str, task_id: str) -> list[str]:
    folder = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return [p.read_text(errors="replace") for p in sorted(folder.glob("attempt=*.log"))]


def wait_for_state(stack, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float) -> None:
    deadline, found = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        stack.check_alive()
        if stack.dag_run(dag_id, run_id):
            found = instances(stack, dag_id, run_id).get(task_id, {}).get("state")
            if found in states:
                return
        time.sleep(1)
    pytest.fail(
        f"{dag_id} {run_id}: {task_id} is {found}, not {states}, after {timeout:.0f} s\n"
        + stack.diagnostics(dag_id, run_id)
    )


def mlflow_outage(stack) -> None:
    stack.stop_process("mlflow")


def mlflow_back(stack) -> None:
    stack.start_mlflow()
    stack.wait_for_http("mlflow", f"{stack.mlflow_uri}/health", timeout=120)


def versions_by(stack, key: str, value: str) -> list:
    return [v for v in mlflow_client(stack).search_model_versions(f"name = '{MODEL}'") if v.tags.get(key) == value]


def alias(stack, name: str) -> str | None:
    aliases = mlflow_client(stack).get_registered_model(MODEL).aliases
    return str(aliases[name]) if name in aliases else None


def churnops_cli(stack, *args: str) -> dict:
    """The CLI in the stack's environment, without crash points: a user at a terminal."""
    env = {k: v for k, v in stack.env.items() if k != "CHURNOPS_CRASH_AT"}
    done = subprocess.run(
        [str(CHURNOPS), *args, "--json"],
        env=env,
        cwd=stack.root,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"churnops {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def trained(stack):
    """1. churn_training with ``register`` SIGKILLed after creating the version; 40 simulated days."""
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
    )
    stack.wait_for_run("churn_training", "it_training", timeout=300, allow_retries=True)
    return stack


def test_a_killed_register_task_is_retried_into_one_version_and_one_run_per_step(trained):
    stack = trained
    assert crashed(stack, "register:after_version"), "the crash point was never reached"
    tasks = instances(stack, "churn_training", "it_training")
    assert tasks["register"]["try_number"] == 2 and tasks["register"]["state"] == "success", tasks["register"]
    assert [v.version for v in versions_by(stack, "churnops.dag_run_id", "it_training")] == ["1"]
    assert alias(stack, "champion") == "1"
    client = mlflow_client(stack)
    experiment = client.get_experiment_by_name("churnops-telco")
    runs = client.search_runs([experiment.experiment_id], "tags.`churnops.run_id` = 'it_training'")
    steps = sorted(r.data.tags["churnops.step"] for r in runs)
    assert len(steps) == len(set(steps)), f"a retried step opened a second MLflow run: {steps}"
    assert {r.data.tags["churnops.step"]: r.info.status for r in runs}["register"] == "FINISHED"
    assert {r.info.status for r in runs} == {"FINISHED"}, "no run is left RUNNING by the killed attempt"
    assert all(r.data.tags.get("churnops.owner") for r in runs), "each run names the task process that ran it"


def test_bad_input_fails_at_once_is_quarantined_and_publishes_nothing(trained):
    """Bad input is not retried under the scheduler: one try, the file quarantined with its reason."""
    stack = trained
    day = D0 + timedelta(days=SIMULATED + 10)  # a day of its own, nothing simulated there
    run_id = f"it_bad_input__{day}"
    incoming = stack.churnops_home / "incoming" / f"date={day}"
    incoming.mkdir(parents=True)
    (incoming / "batch.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 4)  # corrupt Parquet
    before = (incoming / "batch.parquet").read_bytes()
    stack.trigger("churn_monitoring", run_id, logical_date=f"{day}T00:00:00Z")
    stack.wait_for_run("churn_monitoring", run_id, timeout=180, expect="failed", allow_retries=True)

    tasks = instances(stack, "churn_monitoring", run_id)
    check = tasks["check_batch"]
    assert (check["state"], check["try_number"]) == ("failed", 1), f"bad input was retried: {check}"
    assert {tasks[t]["state"] for t in ("plan_shards", "report")} == {"upstream_failed"}
    (log,) = attempt_logs(stack, "churn_monitoring", run_id, "check_batch")
    assert "readable" in log and "batch.parquet" in log, log[-3000:]
    (reason_file,) = (stack.churnops_home / "quarantine" / "monitoring" / f"date={day}").glob("*/reason.json")
    assert "readable" in {finding["rule"] for finding in json.loads(reason_file.read_text())["findings"]}
    assert (reason_file.parent / "batch.parquet").read_bytes() == before
    assert (incoming / "batch.parquet").read_bytes() == before, "raw files are never modified"
    assert not (stack.churnops_home / "predictions" / f"date={day}").exists()


@pytest.fixture(scope="module")
def monitored(trained):
    """2. churn_monitoring of a drifted day, two of its tasks SIGKILLed; promotion held back by the pool."""
    stack = trained
    set_pool_slots(stack, 0)
    run_id = f"it_monitoring__{DAY}"
    stack.trigger("churn_monitoring", run_id, logical_date=f"{DAY}T00:00:00Z")
    stack.wait_for_run("churn_monitoring", run_id, timeout=300, allow_retries=True)
    return stack


def test_killed_shard_and_merge_tasks_are_retried_into_one_result(monitored):
    stack = monitored
    run_id = f"it_monitoring__{DAY}"
    assert crashed(stack, "score_shard:after_drift_parts") and crashed(stack, "merge_shards:after_predictions")
    tasks = instances(stack, "churn_monitoring", run_id)
    assert tasks["merge_shards"]["try_number"] == 2
    assert sorted(t["try_number"] for k, t in tasks.items() if k.startswith("score_shard")) == [1, 1, 2]
    import pandas as pd

    predictions = pd.read_parquet(stack.churnops_home / "predictions" / f"date={DAY}")
    assert len(predictions) == 1500 and predictions["customerid"].is_unique
    client = mlflow_client(stack)
    experiment = client.get_experiment_by_name("churnops-telco-monitoring")
    assert len(client.search_runs([experiment.experiment_id], f"tags.`churnops.monitoring_date` = '{DAY}'")) == 1
    assert tasks["trigger_retraining"]["state"] == "success"


@pytest.fixture(scope="module")
def promotion_outage(monitored):
    """3. MLflow stops while the retraining's promote runs (released from the pool only then)."""
    stack = monitored
    run_id = f"monitoring__{DAY}"
    wait_for_state(stack, "churn_retraining", run_id, "promote", {"scheduled", "queued"}, timeout=400)
    mlflow_outage(stack)
    set_pool_slots(stack, 1)
    stack.wait_for_run("churn_retraining", run_id, timeout=240, expect="failed", allow_retries=True)
    mlflow_back(stack)
    return stack


def test_mlflow_down_during_promotion_retries_then_fails_clearly_and_changes_nothing(promotion_outage):
    stack = promotion_outage
    run_id = f"monitoring__{DAY}"
    promote = instances(stack, "churn_retraining", run_id)["promote"]
    assert (promote["state"], promote["try_number"]) == ("failed", 1 + RETRIES), promote
    logs = attempt_logs(stack, "churn_retraining", run_id, "promote")
    assert len(logs) == 1 + RETRIES
    assert all(f"MLflow tracking server {stack.mlflow_uri} is unreachable" in log for log in logs), logs[-1][-3000:]
    assert (alias(stack, "champion"), alias(stack, "previous_champion")) == ("1", None)
    assert variable(stack, "churnops_last_promotion") is None


def test_the_cli_and_the_dag_racing_to_promote_promote_exactly_once(promotion_outage):
    """4. The DAG evaluated v1 vs its challenger; the CLI does the same for the same day and moves first."""
    stack = promotion_outage
    run_id = f"monitoring__{DAY}"
    dag_challenger = versions_by(stack, "churnops.dag_run_id", run_id)
    assert len(dag_challenger) == 1
    # The DAG's run already trained for this day: without --force the retraining cooldown stops the CLI.
    cli = churnops_cli(stack, "retrain", "--date", DAY.isoformat(), "--force")
    assert cli["decision"] == "promoted" and cli["champion_version"] == "1", cli
    assert cli["forced"] is True and cli["cooldown"] == "retraining", cli
    queued_before = clear_failed(stack, "churn_retraining", run_id)
    stack.wait_for_run("churn_retraining", run_id, timeout=180, queued_after=queued_before, allow_retries=True)

    loser = mlflow_client(stack).get_model_version(MODEL, dag_challenger[0].version)
    assert loser.tags["churnops.decision"] == "conflict", loser.tags
    assert "another promotion happened" in loser.tags["churnops.decision_reason"]
    assert (alias(stack, "champion"), alias(stack, "previous_champion")) == (cli["challenger_version"], "1")
    winner = mlflow_client(stack).get_model_version(MODEL, cli["challenger_version"])
    assert (winner.tags["churnops.decision"], winner.tags["churnops.decision_run"]) == ("promoted", f"retrain__{DAY}")
    # A promotion tags the new and the old champion alike; nothing else carries "promoted".
    promoted = {v.version for v in versions_by(stack, "churnops.decision", "promoted")}
    assert promoted == {cli["challenger_version"], "1"}, "exactly one promotion"
    # The CLI shares the DAGs' store (this stack configures an Airflow): its promotion is the record.
    last = variable(stack, "churnops_last_promotion")
    assert last is not None, "the CLI's promotion is missing from the Variable the DAGs read"
    assert (str(last["version"]), last["run_id"]) == (cli["challenger_version"], f"retrain__{DAY}"), (
        "the loser overwrote the winner's record"
    )


def test_a_promote_killed_after_moving_the_aliases_resumes_and_records_one_promotion(promotion_outage):
    """5. Roll back to v1, retrain: promote is SIGKILLed between the alias moves and the Variable."""
    stack = promotion_outage
    churnops_cli(stack, "rollback", "--reason", "fault test", "--date", DAY.isoformat())
    assert alias(stack, "champion") == "1"
    rolled_back = variable(stack, "churnops_last_promotion")
    assert rolled_back is not None and (rolled_back["rolled_back"], rolled_back["version"]) == (True, "1")
    assert rolled_back["date"] == DAY.isoformat(), "the CLI's rollback restarts the DAGs' cooldown"
    run_id = "it_resume"
    # Inside the cooldown that rollback started: forced, as an operator would.
    stack.trigger("churn_retraining", run_id, conf={"as_of": DAY.isoformat(), "force": True})
    stack.wait_for_run("churn_retraining", run_id, timeout=400, allow_retries=True)

    assert crashed(stack, "promote:after_aliases")
    promote = instances(stack, "churn_retraining", run_id)["promote"]
    assert (promote["state"], promote["try_number"]) == ("success", 2), promote
    challenger = versions_by(stack, "churnops.dag_run_id", run_id)
    assert len(challenger) == 1 and challenger[0].tags["churnops.decision"] == "promoted"
    assert (alias(stack, "champion"), alias(stack, "previous_champion")) == (challenger[0].version, "1")
    assert alias(stack, "challenger") is None
    last = variable(stack, "churnops_last_promotion")
    assert last is not None, "the resumed promotion did not record itself"
    assert (str(last["version"]), str(last["previous_version"]), last["run_id"]) == (
        challenger[0].version,
        "1",
        run_id,
    ), "the Variable disagrees with the registry"
    decided = {v.version for v in versions_by(stack, "churnops.decision_run", run_id)}
    assert decided == {challenger[0].version, "1"}, "one promotion: the new champion and the one it replaced"


def test_a_rollback_killed_after_swapping_the_aliases_resumes_and_records_one_rollback(promotion_outage):
    """5, continued. churn_rollback's ``rollback`` is SIGKILLed between the alias swap and the Variable."""
    stack = promotion_outage
    champion, previous = alias(stack, "champion"), alias(stack, "previous_champion")
    assert None not in (champion, previous), "needs the promotion of the test above"
    run_id = "it_rollback_resume"
    stack.unpause("churn_rollback")
    stack.trigger("churn_rollback", run_id, conf={"reason": "fault test: rollback killed mid-way"})
    stack.wait_for_run("churn_rollback", run_id, timeout=300, allow_retries=True)

    assert crashed(stack, "rollback:after_aliases")
    tasks = instances(stack, "churn_rollback", run_id)
    assert (tasks["plan"]["state"], tasks["plan"]["try_number"]) == ("success", 1), tasks["plan"]
    assert (tasks["rollback"]["state"], tasks["rollback"]["try_number"]) == ("success", 2), tasks["rollback"]
    assert (alias(stack, "champion"), alias(stack, "previous_champion")) == (previous, champion), (
        "the aliases are not swapped exactly once"
    )
    returned = stack.api(
        "GET", f"/dags/churn_rollback/dagRuns/{run_id}/taskInstances/rollback/xcomEntries/return_value"
    )
    moved = json.loads(returned["value"]) if isinstance(returned["value"], str) else returned["value"]
    assert moved == {"champion": previous, "previous_champion": champion, "resumed": True}, moved
    last = variable(stack, "churnops_last_promotion")
    assert last is not None and last.get("rolled_back") is True, last
    assert (str(last["version"]), str(last["previous_version"]), last["run_id"]) == (previous, champion, run_id), (
        "the Variable disagrees with the registry"
    )
    rolled = {v.version for v in versions_by(stack, "churnops.decision_run", run_id)}
    assert rolled == {previous, champion}, "one rollback: both versions tagged by this run"
    assert all(
        v.tags["churnops.decision"] == "rolled_back" for v in versions_by(stack, "churnops.decision_run", run_id)
    )


def test_mlflow_down_during_monitoring_fails_clearly_publishes_nothing_and_succeeds_after(promotion_outage):
    """6."""
    stack = promotion_outage
    day, run_id = OUTAGE_DAY.isoformat(), f"it_outage__{OUTAGE_DAY}"
    champion = alias(stack, "champion")
    mlflow_outage(stack)
    try:
        stack.trigger("churn_monitoring", run_id, logical_date=f"{day}T00:00:00Z")
        stack.wait_for_run("churn_monitoring", run_id, timeout=240, expect="failed", allow_retries=True)
    finally:
        mlflow_back(stack)
    failed = {k: t for k, t in instances(stack, "churn_monitoring", run_id).items() if t["state"] == "failed"}
    assert list(failed) == ["plan_shards"] and failed["plan_shards"]["try_number"] == 1 + RETRIES, failed
    logs = attempt_logs(stack, "churn_monitoring", run_id, "plan_shards")
    assert f"MLflow tracking server {stack.mlflow_uri} is unreachable" in logs[-1], logs[-1][-3000:]
    assert not (stack.churnops_home / "predictions" / f"date={day}").exists()
    assert not (stack.churnops_home / "reports" / f"date={day}").exists()

    queued_before = clear_failed(stack, "churn_monitoring", run_id)
    stack.wait_for_run("churn_monitoring", run_id, timeout=240, queued_after=queued_before)
    import pandas as pd

    assert len(pd.read_parquet(stack.churnops_home / "predictions" / f"date={day}")) == 1500
    assert alias(stack, "champion") == champion


def test_a_postgres_restart_during_a_backfill_still_gives_one_result_per_day(trained):
    """7. The metadata DB and the MLflow store go away for a few seconds in the middle of the backfill.

    Airflow's dag-processor and scheduler exit when their database connection breaks; the stack
    starts them again as compose's ``restart: always`` does, and the backfill carries on.
    """
    stack = trained
    postgres: PrivatePostgres = stack.private_postgres
    first, last = BACKFILL_DAYS[0].isoformat(), BACKFILL_DAYS[-1].isoformat()
    stack.run(
        "airflow",
        "backfill",
        "create",
        "--dag-id",
        "churn_monitoring",
        "--from-date",
        first,
        "--to-date",
        last,
        "--max-active-runs",
        "2",
    )
    run_ids = [f"backfill__{day}T00:00:00+00:00" for day in BACKFILL_DAYS]
    wait_for_state(stack, "churn_monitoring", run_ids[0], "score_shard[0]", {"running", "success"}, timeout=180)
    restarts_before = len(stack.restarts)
    postgres.stop()
    time.sleep(5)
    postgres.start()
    for run_id in run_ids:
        stack.wait_for_run("churn_monitoring", run_id, timeout=400, allow_retries=True, supervised=True)
    stack.check_alive()
    client = mlflow_client(stack)
    experiment = client.get_experiment_by_name("churnops-telco-monitoring")
    for day in BACKFILL_DAYS:
        found = client.search_runs([experiment.experiment_id], f"tags.`churnops.monitoring_date` = '{day}'")
        assert len(found) == 1, (day, [r.info.run_id for r in found])
        files = sorted(p.name for p in (stack.churnops_home / "predictions" / f"date={day}").iterdir())
        assert files == ["predictions.parquet"], (day, files)
        report = json.loads((stack.churnops_home / "reports" / f"date={day}" / "drift_report.json").read_text())
        assert report["date"] == day.isoformat()
    retried = {
        run_id: {
            k: t["try_number"] for k, t in instances(stack, "churn_monitoring", run_id).items() if t["try_number"] > 1
        }
        for run_id in run_ids
    }
    hit = len(stack.restarts) > restarts_before or any(retried.values())
    assert hit, "the outage reached no process and no task: nothing was tested"
    print(f"\nprocesses restarted after the PostgreSQL restart: {stack.restarts}")
    print(f"tasks retried across the PostgreSQL restart: {json.dumps(retried)}")
    print(f"PostgreSQL log:\n{postgres.log_tail(8)}")
