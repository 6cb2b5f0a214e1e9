"""A monitoring run killed with SIGKILL mid-scoring, then run again: nothing half-written is ever
published, and the rerun gives exactly what an uninterrupted run gives. A training run killed
mid-write: its rerun, or the next run, leaves no MLflow run RUNNING and no temporary file behind.

(Killed Airflow tasks retried by the scheduler, outages of MLflow and PostgreSQL:
``tests/integration/test_faults_under_scheduler.py``.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from tests.helpers import write_config

pytestmark = pytest.mark.e2e

DAY = date(2026, 7, 1)
CHURNOPS = Path(sys.executable).parent / "churnops"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A champion and one 200,000-row day, scored 10,000 rows a chunk in 4 shards (a run of several seconds)."""
    root = tmp_path_factory.mktemp("faults")
    config = write_config(
        root / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        monitoring={"html_report": False, "chunk_rows": 10_000, "shard_rows": 50_000},
    )
    # Every command in its own process with this environment only: the embedded store under root.
    for argv in (
        ["train"],
        ["simulate", "--start", DAY.isoformat(), "--days", "1", "--rows-per-day", "200000", "--seed", "9"],
    ):
        done = subprocess.run([str(CHURNOPS), *argv], env=environment(root), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert config.is_file()
    return root


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHURNOPS_"))}
    return {**env, "CHURNOPS_HOME": str(home), "CHURNOPS_CONFIG": str(home / "config.yaml")}


def monitor(home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CHURNOPS), "monitor", "--date", DAY.isoformat(), "--json"],
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_monitoring_run_publishes_nothing_and_its_rerun_equals_an_uninterrupted_one(home):
    import pandas as pd

    predictions = home / "predictions" / f"date={DAY}" / "predictions.parquet"
    shards = home / "work" / "monitoring" / f"date={DAY}"
    victim = monitor(home)
    deadline = time.monotonic() + 120
    # Kill it while the second shard is being written: one shard done, none merged.
    while not (shards / "shard-00001").exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim.poll() is None, f"the run ended before it could be killed: {victim.communicate()}"
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)  # reaps it and closes its pipes
    assert not predictions.exists(), "a killed run must not publish predictions"
    assert not (home / "reports" / f"date={DAY}" / "drift_report.json").exists()

    rerun = monitor(home)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    first = json.loads(out)
    assert first["rows"] == 200_000 and first["shards"] == 4
    published = pd.read_parquet(predictions)
    assert len(published) == 200_000 and published["customerid"].is_unique
    assert not list(shards.rglob(".*.tmp")), "the rerun's plan cleared the killed run's half-written parts"

    again = monitor(home)  # an uninterrupted run over the same day
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]
    pd.testing.assert_frame_equal(pd.read_parquet(predictions), published)
    second = json.loads(out)
    assert {k: v for k, v in second.items() if k not in {"mlflow_run_id"}} == {
        k: v for k, v in first.items() if k not in {"mlflow_run_id"}
    }
    assert second["mlflow_run_id"] == first["mlflow_run_id"], "one MLflow run per day, reused"


# A live writer in its own process: it holds a temporary of the target (printing its path) and sleeps.
LIVE_WRITER = """
import sys, time
from pathlib import Path
from churnops.data.storage import replaced_atomically
with replaced_atomically(Path(sys.argv[1])) as temporary:
    temporary.write_text("a write in progress")
    print(temporary, flush=True)
    time.sleep(600)
"""


def train(home: Path, *argv: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = environment(home) | ({"CHURNOPS_CRASH_AT": crash_at} if crash_at else {})
    return subprocess.run([str(CHURNOPS), "train", "--json", *argv], env=env, capture_output=True, text=True)


def runs_by_status(home: Path) -> dict[str, set[tuple[str, str]]]:
    """status → {(run id of the pipeline, step)} of every churnops run in the home's store."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    found: dict[str, set[tuple[str, str]]] = {}
    for run in client.search_runs(experiments, filter_string="tags.`churnops.dag_id` = 'cli'"):
        key = (run.data.tags["churnops.run_id"], run.data.tags["churnops.step"])
        found.setdefault(run.info.status, set()).add(key)
    return found


def test_a_killed_training_leaves_no_running_run_nor_temporary_after_its_rerun_or_the_next_run(tmp_path):
    import signal

    write_config(tmp_path / "config.yaml", training={"families": ["logistic_regression"], "cv_folds": 2})
    killed = train(tmp_path, "--run-id", "first", crash_at="write:merged.parquet")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (temporary,) = tmp_path.rglob(".merged.parquet.*.tmp")
    assert runs_by_status(tmp_path)["RUNNING"] == {("first", "pipeline"), ("first", "merge")}

    live = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(temporary.parent / "merged.parquet")],
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        live_temporary = Path(live.stdout.readline().strip())
        rerun = train(tmp_path, "--run-id", "first")  # the same run again: it resumes
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "RUNNING" not in runs_by_status(tmp_path), "the resumed runs end FINISHED"
        assert not temporary.exists(), "the killed process's temporary is removed"
        assert live_temporary.exists(), "a live writer's temporary is left alone"
    finally:
        live.kill()
        live.communicate(timeout=60)

    # Killed again, in another step, and never rerun: the next run of the DAG fails its runs.
    killed = train(tmp_path, "--run-id", "second", crash_at="register:after_version")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert runs_by_status(tmp_path)["RUNNING"] == {("second", "pipeline"), ("second", "register")}
    following = train(tmp_path, "--run-id", "third")
    assert following.returncode == 0, following.stderr[-2000:]
    runs = runs_by_status(tmp_path)
    assert "RUNNING" not in runs
    assert {("second", "pipeline"), ("second", "register")} <= runs["FAILED"]


def test_a_cli_retraining_killed_after_moving_the_aliases_records_its_promotion_when_rerun(tmp_path):
    """The CLI's twin of the scheduler case: the rerun of ``retrain__<day>`` resumes its promotion."""
    from datetime import timedelta

    write_config(
        tmp_path / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        policy={"bootstrap_samples": 100},
    )
    env = environment(tmp_path) | {"CHURNOPS_STATE": "file"}
    start, stable, days = date(2026, 1, 1), 10, 40
    drift = (start + timedelta(days=stable)).isoformat()
    common = ["--rows-per-day", "1500", "--seed", "7"]
    for argv in (
        ["train"],
        ["simulate", "--start", start.isoformat(), "--days", str(stable), "--scenario", "stable", *common],
        [
            "simulate",
            "--start",
            drift,
            "--days",
            str(days - stable),
            "--scenario",
            "mixed",
            "--drift-start",
            drift,
            "--ramp-days",
            "3",
            *common,
        ],
    ):
        done = subprocess.run([str(CHURNOPS), *argv], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    retrain = [str(CHURNOPS), "retrain", "--date", (start + timedelta(days=days - 1)).isoformat(), "--json"]

    killed = subprocess.run(retrain, env=env | {"CHURNOPS_CRASH_AT": "promote:after_aliases"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    rerun = subprocess.run(retrain, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]

    outcome = json.loads(rerun.stdout)
    assert (outcome["decision"], outcome["challenger_version"], outcome["champion_version"]) == ("promoted", "2", "1")
    recorded = json.loads((tmp_path / "state" / "promotion.json").read_text())["churnops_last_promotion"]
    assert (recorded["version"], recorded["previous_version"]) == ("2", "1"), "the promotion is recorded once resumed"
