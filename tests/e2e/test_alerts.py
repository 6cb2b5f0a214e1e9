"""Alerts under ``dag.test()`` and ``airflow dags test``: a task alerts once it has failed for good
(after its last retry), the deciding tasks alert their event, and an alert that cannot be delivered
never costs a run.

The connection ``churnops_alerts`` is ``AIRFLOW_CONN_CHURNOPS_ALERTS`` pointing at a local webhook
receiver (:class:`tests.alert_sinks.HttpSink`), or at a local SMTP server for ``airflow dags test``.
The whole loop's events (retrain, promotion, cooldown stop, rollback) are checked in
``tests/e2e/test_loop.py`` and under the real scheduler in ``tests/integration/test_scheduler_loop.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

from tests.alert_sinks import HttpSink, SmtpSink
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

DAY = pendulum.datetime(2026, 10, 12, tz="UTC")
PROBE_DAG = """
from airflow.sdk import dag, task

from churnops.orchestration import dag_settings


@dag(dag_id="alert_probe", schedule=None, doc_md="probe", **dag_settings("probe", retries=2))
def alert_probe():
    @task
    def flaky():
        raise RuntimeError("the feature store said no")

    @task
    def announce():
        from churnops.orchestration.alerts import rollback_alert
        from churnops.orchestration.notifier import send_alert

        send_alert(rollback_alert, {"champion": "1", "previous_champion": "2"}, "probe")

    flaky()
    announce()


alert_probe()
"""


@pytest.fixture
def probe(airflow_db, tmp_path, monkeypatch):
    """The probe DAG, stored as the scheduler would see it; its tasks retry at once (no delay)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    monkeypatch.setenv("CHURNOPS_RETRY_DELAY_SECONDS", "0")
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "alert_probe.py").write_text(PROBE_DAG)
    bag = DagBag(dag_folder=str(tmp_path / "dags"))
    assert bag.import_errors == {}
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags["alert_probe"]


def task_states(dag_run) -> dict[str, tuple[str, int]]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances(session=session)}


def test_a_task_alerts_once_after_its_last_retry_with_dag_task_day_and_log_url(probe, monkeypatch):
    with HttpSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_CHURNOPS_ALERTS", sink.connection())
        dag_run = probe.test(logical_date=DAY)
    states = task_states(dag_run)
    assert states == {"flaky": ("failed", 3), "announce": ("success", 1)}, states
    texts = sink.texts()
    failures = [t for t in texts if "Event: task_failed" in t]
    assert len(failures) == 1, f"one alert for three tries, not one a try: {texts}"
    lines = failures[0].splitlines()
    assert lines[0] == "[churnops] alert_probe 2026-10-12: task flaky failed after try 3 of 3"
    for line in ("DAG: alert_probe", "Day: 2026-10-12", "Decision: failed", "Task: flaky"):
        assert line in lines, (line, failures[0])
    assert "Error: RuntimeError: the feature store said no" in lines
    log = next(line for line in lines if line.startswith("Log: "))
    assert "/dags/alert_probe/runs/" in log and log.endswith("/tasks/flaky?try_number=3"), log
    assert [t.splitlines()[0] for t in texts if "Event: rollback" in t] == [
        "[churnops] alert_probe 2026-10-12: rolled back: version 1 is @champion again"
    ]


def test_a_sink_that_is_down_costs_no_run(probe, monkeypatch):
    sink = HttpSink()
    with sink:
        monkeypatch.setenv("AIRFLOW_CONN_CHURNOPS_ALERTS", sink.connection())
    dag_run = probe.test(logical_date=DAY)  # the sink's port refuses every alert
    assert task_states(dag_run) == {"flaky": ("failed", 3), "announce": ("success", 1)}


def test_no_connection_no_alert_and_no_error(probe, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CHURNOPS_ALERTS", raising=False)
    dag_run = probe.test(logical_date=DAY)
    assert task_states(dag_run) == {"flaky": ("failed", 3), "announce": ("success", 1)}


def test_a_churnops_dag_failing_on_a_missing_day_alerts_at_once(airflow_db, churnops_home, monkeypatch):
    """Bad input is not retried: the first try is the last, and it alerts."""
    from airflow.dag_processing.dagbag import DagBag

    monitoring = DagBag(dag_folder=str(ROOT / "dags" / "churn_monitoring.py")).dags["churn_monitoring"]
    with HttpSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_CHURNOPS_ALERTS", sink.connection())
        dag_run = monitoring.test(logical_date=DAY)
    assert task_states(dag_run)["check_batch"] == ("failed", 1)
    (text,) = sink.texts()
    assert text.splitlines()[0] == "[churnops] churn_monitoring 2026-10-12: task check_batch failed after try 1 of 4"
    assert "Day: 2026-10-12" in text and "Decision: failed" in text and "date=2026-10-12" in text


def test_airflow_dags_test_mails_a_failed_task_to_an_smtp_server(tmp_path):
    """The CLI in a process of its own, on a fresh metadata DB, its alerts mailed to a local SMTP server."""
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "CHURNOPS_", "MLFLOW_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
            "AIRFLOW__API__BASE_URL": "http://airflow.test:8080",
            "CHURNOPS_HOME": str(tmp_path / "churnops"),
        }
    )

    def airflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bin_dir / "airflow"), *args], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300
        )

    migrated = airflow("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    with SmtpSink() as mail:
        env["AIRFLOW_CONN_CHURNOPS_ALERTS"] = mail.connection()
        done = airflow("dags", "test", "churn_monitoring", "2026-10-12")
    assert mail.received, f"no mail\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (sent,) = mail.received
    assert sent["message"]["Subject"] == (
        "[churnops] churn_monitoring 2026-10-12: task check_batch failed after try 1 of 4"
    )
    lines = mail.texts()[0].splitlines()
    assert "DAG: churn_monitoring" in lines and "Day: 2026-10-12" in lines and "Decision: failed" in lines
    log = next(line for line in lines if line.startswith("Log: "))
    assert log.startswith("Log: http://airflow.test:8080/dags/churn_monitoring/runs/manual__"), log
    assert log.endswith("/tasks/check_batch?try_number=1"), log
