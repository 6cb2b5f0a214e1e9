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
