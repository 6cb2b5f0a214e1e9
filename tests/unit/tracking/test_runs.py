"""churnops.tracking.runs: parent and step runs against a real (SQLite) MLflow store: found again, never
duplicated, and announced to the listeners."""

from __future__ import annotations

import pytest

from churnops.config import load_config
from churnops.tracking.runs import (
    RunContext,
    announce_run,
    configure_mlflow,
    finish_parent_run,
    get_or_create_parent_run,
    listening_for_runs,
    step_run,
    tracking_uri,
)


@pytest.fixture
def experiment_id(churnops_home):
    return configure_mlflow(load_config())


def child_runs(experiment_id, parent_id):
    from mlflow import MlflowClient

    runs = MlflowClient().search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    return sorted(runs, key=lambda r: r.data.tags["churnops.step"])


def test_tracking_uri_defaults_to_sqlite_under_home_and_env_wins(churnops_home, monkeypatch):
    assert tracking_uri() == f"sqlite:///{churnops_home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking_uri() == "http://mlflow.example:5000"


def test_embedded_store_keeps_artifacts_under_home(experiment_id, churnops_home):
    from mlflow import MlflowClient

    location = MlflowClient().get_experiment(experiment_id).artifact_location
    assert location == (churnops_home / "mlartifacts").as_uri()
    assert configure_mlflow(load_config()) == experiment_id, "a second call reuses the experiment"


def test_context_slug_is_one_safe_path_component():
    ctx = RunContext("churn_training", "manual__2026-11-23T17:37:21.307392+00:00", None)
    assert "/" not in ctx.slug and ":" not in ctx.slug and "+" not in ctx.slug
    assert RunContext("d", "../../etc").slug == "etc"


def test_parent_run_is_created_once_per_dag_run(experiment_id):
    ctx = RunContext("churn_training", "scheduled__2026-11-20", "2026-11-20T00:00:00+00:00")
    first = get_or_create_parent_run(experiment_id, ctx, "a name")
    assert get_or_create_parent_run(experiment_id, ctx, "a name") == first
    other = get_or_create_parent_run(experiment_id, RunContext("churn_training", "scheduled__2026-11-21"), "x")
    assert other != first


def test_retried_step_resumes_its_run_and_failure_marks_parent_failed(experiment_id):
    import mlflow
    from mlflow import MlflowClient

    ctx = RunContext("churn_training", "manual__1")
    parent = get_or_create_parent_run(experiment_id, ctx, "p")
    with pytest.raises(RuntimeError), step_run(experiment_id, parent, ctx, "train/xgboost") as run:
        mlflow.log_metric("attempt", 1)
        raise RuntimeError("worker lost")
    client = MlflowClient()
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert client.get_run(parent).info.status == "FAILED"
    assert "worker lost" in client.get_run(parent).data.tags["churnops.error"]

    with step_run(experiment_id, parent, ctx, "train/xgboost") as retried:
        mlflow.log_metric("attempt", 2)
    assert retried.info.run_id == run.info.run_id, "the retry resumed the same step run"
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert client.get_run(parent).info.status == "RUNNING"
    assert [r.data.tags["churnops.step"] for r in child_runs(experiment_id, parent)] == ["train/xgboost"]

    finish_parent_run(parent)
    finished = client.get_run(parent)
    assert finished.info.status == "FINISHED"
    assert "churnops.error" not in finished.data.tags


def test_step_runs_carry_context_tags(experiment_id):
    ctx = RunContext("churn_training", "scheduled__2026-11-20", "2026-11-20T00:00:00+00:00")
    parent = get_or_create_parent_run(experiment_id, ctx, "p")
    with step_run(experiment_id, parent, ctx, "validate"):
        pass
    with step_run(experiment_id, parent, ctx, "merge"):
        pass
    runs = child_runs(experiment_id, parent)
    assert [r.data.tags["churnops.step"] for r in runs] == ["merge", "validate"]
    for run in runs:
        assert run.data.tags["churnops.dag_id"] == "churn_training"
        assert run.data.tags["churnops.run_id"] == "scheduled__2026-11-20"
        assert run.data.tags["churnops.logical_date"] == "2026-11-20T00:00:00+00:00"


# --- runs of killed processes ------------------------------------------------------------------------------------

# A task process of its own: it opens (or finds) the pipeline's parent run and a step run, prints their
# ids, then SIGKILLs itself inside the step (as the OOM killer would) or sleeps there (a live task).
TASK = """
import os, signal, sys, time
from churnops.config import load_config
from churnops.tracking.runs import RunContext, configure_mlflow, get_or_create_parent_run, step_run
dag_id, run_id, step, how = sys.argv[1:]
experiment_id = configure_mlflow(load_config())
ctx = RunContext(dag_id, run_id)
parent = get_or_create_parent_run(experiment_id, ctx, "p")
with step_run(experiment_id, parent, ctx, step) as run:
    print(parent, run.info.run_id, flush=True)
    if how == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(600)
"""


def task_process(ctx: RunContext, step: str, how: str):
    """Start the task; return the process and its (parent run, step run) once the step is open."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", TASK, ctx.dag_id, ctx.run_id, step, how], stdout=subprocess.PIPE, text=True
    )
    parent, step_run_id = process.stdout.readline().split()
    if how == "die":
        process.communicate(timeout=60)
    return process, parent, step_run_id


def status(run_id: str) -> str:
    from mlflow import MlflowClient

    return MlflowClient().get_run(run_id).info.status


def test_a_killed_tasks_run_is_failed_by_the_next_step_its_retry_resumes_it_and_a_live_ones_is_kept(experiment_id):
    from mlflow import MlflowClient

    from churnops.processes import process_owner

    ctx = RunContext("churn_training", "manual__killed")
    live, parent, live_run = task_process(ctx, "train/xgboost", "sleep")
    try:
        killed, same_parent, killed_run = task_process(ctx, "train/lightgbm", "die")
        assert same_parent == parent and killed.returncode < 0
        assert status(killed_run) == "RUNNING" == status(live_run), "a SIGKILL cleans nothing up"

        with step_run(experiment_id, parent, ctx, "evaluate"):  # the next step, in another process
            pass

        client = MlflowClient()
        abandoned = client.get_run(killed_run)
        assert abandoned.info.status == "FAILED"
        assert abandoned.data.tags["churnops.error"].startswith("abandoned: its process ")
        assert status(live_run) == "RUNNING", "a live task's run is never touched"
        assert status(parent) == "RUNNING", "the pipeline run goes on"

        with step_run(experiment_id, parent, ctx, "train/lightgbm") as retried:  # the killed task's retry
            pass
        assert retried.info.run_id == killed_run
        resumed = client.get_run(killed_run)
        assert resumed.info.status == "FINISHED" and resumed.data.tags["churnops.owner"] == process_owner()
    finally:
        live.kill()
        live.communicate(timeout=60)


def test_the_next_pipeline_run_of_the_dag_fails_a_dead_ones_runs_only(experiment_id):
    dead = RunContext("churn_retraining", "monitoring__2026-07-01")
    _, dead_parent, dead_step = task_process(dead, "merge", "die")
    _, other_dag_parent, other_dag_step = task_process(RunContext("churn_training", "manual__1"), "merge", "die")
    assert {status(r) for r in (dead_parent, dead_step, other_dag_parent, other_dag_step)} == {"RUNNING"}

    parent = get_or_create_parent_run(experiment_id, RunContext("churn_retraining", "monitoring__2026-07-02"), "p")

    assert status(dead_parent) == "FAILED" == status(dead_step)
    assert status(parent) == "RUNNING"
    assert status(other_dag_parent) == "RUNNING" == status(other_dag_step), "another DAG's runs: its own next run"


# --- listeners ---------------------------------------------------------------------------------------------------


def test_a_listener_hears_the_runs_announced_inside_its_block_only():
    heard = []
    announce_run("0", "before")  # nobody listens: nothing happens
    with listening_for_runs(lambda *run: heard.append(run)):
        announce_run("1", "abc")
        announce_run("2", "def")
    announce_run("3", "after")
    assert heard == [("1", "abc"), ("2", "def")]


def test_nested_blocks_stack_their_listeners():
    heard = []
    with listening_for_runs(lambda _experiment_id, run_id: heard.append(("outer", run_id))):
        announce_run("1", "a")
        with listening_for_runs(lambda _experiment_id, run_id: heard.append(("inner", run_id))):
            announce_run("1", "b")
        announce_run("1", "c")
    assert heard == [("outer", "a"), ("outer", "b"), ("inner", "b"), ("outer", "c")]


def test_the_listener_is_removed_when_the_block_raises():
    heard = []
    with (
        pytest.raises(RuntimeError, match="step failed"),
        listening_for_runs(lambda *run: heard.append(run)),
    ):
        announce_run("1", "abc")
        raise RuntimeError("step failed")
    announce_run("1", "after the failure")
    assert heard == [("1", "abc")]


def test_parent_runs_are_announced_when_created_and_when_found_again(experiment_id):
    ctx = RunContext("churn_training", "manual__announced")
    heard = []
    with listening_for_runs(lambda *run: heard.append(run)):
        parent = get_or_create_parent_run(experiment_id, ctx, "p")
        again = get_or_create_parent_run(experiment_id, ctx, "p")
    assert again == parent
    assert heard == [(experiment_id, parent), (experiment_id, parent)]


def test_step_runs_are_announced_before_the_step_runs_and_again_when_resumed(experiment_id):
    ctx = RunContext("churn_training", "manual__announced")
    parent = get_or_create_parent_run(experiment_id, ctx, "p")
    heard = []
    with listening_for_runs(lambda *run: heard.append(run)):
        with pytest.raises(RuntimeError), step_run(experiment_id, parent, ctx, "train/xgboost") as run:
            assert heard == [(experiment_id, run.info.run_id)], "a step that dies mid-way is linked already"
            raise RuntimeError("worker lost")
        with step_run(experiment_id, parent, ctx, "train/xgboost") as retried:
            pass
    assert retried.info.run_id == run.info.run_id != parent
    assert heard == [(experiment_id, run.info.run_id)] * 2
