"""The continuous-training loop with ``dag.test()`` and logical dates.

train → simulate 10 stable then drifted days → monitor 20 days (stable days never trigger,
drifted ones do, with the deterministic run id) → churn_retraining decides per policy →
a second retraining inside the cooldown stops early → ``force`` overrides it. Each event is
alerted to a local webhook receiver (the ``churnops_alerts`` connection set in the environment).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import pendulum
import pytest

from tests.alert_sinks import HttpSink
from tests.helpers import ROOT, churnops_environment, write_config

pytestmark = pytest.mark.e2e

D0 = date(2026, 9, 1)
STABLE, MONITORED, SIMULATED, RAMP = 10, 20, 40, 1  # drift at full strength from its first day


@pytest.fixture(scope="module")
def loop(airflow_db, tmp_path_factory):
    """One trained champion and 40 simulated days in a module-wide CHURNOPS_HOME."""

    from airflow.dag_processing.dagbag import DagBag

    from churnops.config import load_config
    from churnops.devtools.simulate import write_days

    home = tmp_path_factory.mktemp("loop-home")
    config = write_config(
        home / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        policy={"bootstrap_samples": 200, "cooldown_days": 7},
        registry={"model_name": "loop-model"},
        # 20 monitored days: evidently's page (~4 s of CPU a day) is checked by the CLI and
        # integration tests; here its switch is, and the decisions do not need it.
        monitoring={
            "html_report": False,
            # 1,500-row days in 3 shards: every monitored day runs mapped tasks.
            "chunk_rows": 500,
            "shard_rows": 500,
        },
    )
    with churnops_environment(home, config), HttpSink() as alerts, alerts_to(alerts):
        cfg = load_config(config)
        write_days(cfg, home, D0, STABLE, rows_per_day=1500, scenario="stable", seed=7)
        write_days(
            cfg,
            home,
            D0 + timedelta(days=STABLE),
            SIMULATED - STABLE,
            rows_per_day=1500,
            scenario="mixed",
            seed=7,
            drift_start=D0 + timedelta(days=STABLE),
            ramp_days=RAMP,
        )
        dags = DagBag(dag_folder=str(ROOT / "dags")).dags
        run = dags["churn_training"].test(logical_date=pendulum.datetime(2026, 8, 31, tz="UTC"))
        assert str(run.state) == "success"
        yield {"home": home, "config": cfg, "dags": dags, "alerts": alerts}


@contextmanager
def alerts_to(sink: HttpSink) -> Iterator[None]:
    """``churnops_alerts`` pointing at ``sink`` for the module (the previous value restored after)."""
    saved = os.environ.get("AIRFLOW_CONN_CHURNOPS_ALERTS")
    os.environ["AIRFLOW_CONN_CHURNOPS_ALERTS"] = sink.connection()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AIRFLOW_CONN_CHURNOPS_ALERTS", None)
        else:
            os.environ["AIRFLOW_CONN_CHURNOPS_ALERTS"] = saved


def alerted(loop, event: str) -> list[str]:
    """The first line of each alert of ``event`` received so far."""
    return [t.splitlines()[0] for t in loop["alerts"].texts() if f"Event: {event}" in t.splitlines()]


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def shard_indexes(dag_run) -> list[int]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return sorted(
            ti.map_index
            for ti in dag_run.get_task_instances(session=session)
            if ti.task_id == "score_shard" and str(ti.state) == "success"
        )


def retraining_runs() -> dict[str, dict]:
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            r.run_id: {"state": str(r.state), "conf": r.conf}
            for r in session.query(DagRun).filter(DagRun.dag_id == "churn_retraining")
        }


def test_monitoring_flags_drifted_days_only_and_queues_one_retraining_each(loop):
    monitoring = loop["dags"]["churn_monitoring"]
    flagged = {}
    for offset in range(MONITORED):
        day = D0 + timedelta(days=offset)
        dag_run = monitoring.test(logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"))
        tasks = states(dag_run)
        assert str(dag_run.state) == "success", (day, tasks)
        flagged[day] = tasks["trigger_retraining"] == "success"
        assert tasks["no_retraining"] == ("skipped" if flagged[day] else "success")
        report = json.loads((loop["home"] / "reports" / f"date={day}" / "drift_report.json").read_text())
        assert report["decision"] == ("retrain" if flagged[day] else "none")
        assert report["shards"] == 3 and shard_indexes(dag_run) == [0, 1, 2]
        assert not (loop["home"] / "reports" / f"date={day}" / "drift_report.html").exists()

    stable = [d for d in flagged if d < D0 + timedelta(days=STABLE)]
    drifted = [d for d in flagged if d >= D0 + timedelta(days=STABLE + RAMP - 1)]  # at full intensity
    assert not any(flagged[d] for d in stable), "false alarm on a stable day"
    assert all(flagged[d] for d in drifted), "drift missed"
    queued = retraining_runs()
    for day in (d for d, hit in flagged.items() if hit):
        run = queued[f"monitoring__{day}"]
        assert run["conf"]["as_of"] == day.isoformat() and run["conf"]["reason"]
    retrain_alerts = alerted(loop, "retrain")
    alerted_days = [line.split()[2].rstrip(":") for line in retrain_alerts]
    assert alerted_days == [d.isoformat() for d, hit in flagged.items() if hit], "one alert per retraining triggered"
    assert all(
        line.startswith("[churnops] churn_monitoring ") and ": retraining triggered: dataset drift (" in line
        for line in retrain_alerts
    )

    # A rerun of a day replaces its report and MLflow run and does not start a second retraining.
    day = drifted[0]
    again = monitoring.test(logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"))
    assert states(again)["trigger_retraining"] == "skipped"
    assert len(retraining_runs()) == len(queued)
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("churnops-telco-monitoring")
    runs = client.search_runs([experiment.experiment_id], f"tags.`churnops.monitoring_date` = '{day}'")
    assert len(runs) == 1


def test_retraining_promotes_per_policy_then_cooldown_then_force(loop):
    from airflow.models import Variable  # the test reads the metadata DB, outside any task
    from mlflow import MlflowClient

    retraining = loop["dags"]["churn_retraining"]
    as_of = D0 + timedelta(days=SIMULATED - 1)
    first = retraining.test(
        logical_date=pendulum.datetime(2026, 12, 1, tz="UTC"), run_conf={"as_of": as_of.isoformat()}
    )
    tasks = states(first)
    assert str(first.state) == "success", tasks
    client = MlflowClient()
    challenger = client.get_model_version("loop-model", "2")
    gain = float(challenger.tags["churnops.gain"])
    if gain > 0.01:
        assert tasks["promote"] == "success" and tasks["reject"] == "skipped"
        assert client.get_model_version_by_alias("loop-model", "champion").version in (2, "2")
        assert client.get_model_version_by_alias("loop-model", "previous_champion").version in (1, "1")
        state = json.loads(Variable.get("churnops_last_promotion"))  # noqa: AIR311
        assert state["date"] == as_of.isoformat() and str(state["version"]) == "2"
    else:
        assert tasks["reject"] == "success" and tasks["promote"] == "skipped"
        assert challenger.tags["churnops.decision"] == "rejected"
    assert gain > 0.01, f"the drifted window should give the challenger a real gain, got {gain}"
    assert alerted(loop, "promotion") == [
        f"[churnops] churn_retraining {as_of}: challenger promoted: version 2 is @champion"
    ]

    blocked = retraining.test(
        logical_date=pendulum.datetime(2026, 12, 2, tz="UTC"),
        run_conf={"as_of": (as_of + timedelta(days=1)).isoformat()},
    )
    tasks = states(blocked)
    assert tasks["check_cooldown"] == "success" and tasks["start"] == "skipped"
    assert tasks["promote"] == "skipped"
    experiment = client.get_experiment_by_name("churnops-telco")
    skipped = client.search_runs([experiment.experiment_id], "tags.`churnops.decision` = 'skipped'")
    assert len(skipped) == 1 and "in cooldown" in skipped[0].data.tags["churnops.decision_reason"]
    assert skipped[0].data.tags["churnops.cooldown"] == "promotion", "promoted the day before: 7 days beat 3"
    assert alerted(loop, "cooldown_stop") == [
        f"[churnops] churn_retraining {as_of + timedelta(days=1)}: retraining stopped by the promotion cooldown"
    ]

    forced = retraining.test(
        logical_date=pendulum.datetime(2026, 12, 3, tz="UTC"),
        run_conf={"as_of": (as_of + timedelta(days=1)).isoformat(), "force": True},
    )
    tasks = states(forced)
    assert str(forced.state) == "success" and tasks["start"] == "success"
    assert tasks["compare"] == "success"
    parent = client.search_runs([experiment.experiment_id], "tags.`churnops.forced` = 'true'")
    assert len(parent) == 1, [
        (r.info.run_name, r.info.start_time, {k: v for k, v in r.data.tags.items() if k.startswith("churnops.")})
        for r in parent
    ]


def test_rollback_from_the_ui_dag_swaps_the_aliases_and_records_it(loop):
    from airflow.models import Variable  # the test reads the metadata DB, outside any task
    from mlflow import MlflowClient

    client = MlflowClient()
    champion = str(client.get_model_version_by_alias("loop-model", "champion").version)
    previous = str(client.get_model_version_by_alias("loop-model", "previous_champion").version)
    run = loop["dags"]["churn_rollback"].test(
        logical_date=pendulum.datetime(2026, 12, 5, tz="UTC"), run_conf={"reason": "bad calls reported by the CRM team"}
    )
    assert str(run.state) == "success"
    assert str(client.get_model_version_by_alias("loop-model", "champion").version) == previous
    assert str(client.get_model_version_by_alias("loop-model", "previous_champion").version) == champion
    assert client.get_model_version("loop-model", previous).tags["churnops.decision"] == "rolled_back"
    state = json.loads(Variable.get("churnops_last_promotion"))  # noqa: AIR311
    assert state["rolled_back"] is True and state["version"] == previous and state["date"] == "2026-12-05"
    assert alerted(loop, "rollback") == [
        f"[churnops] churn_rollback 2026-12-05: rolled back: version {previous} is @champion again"
    ]


def test_the_day_waits_for_its_arrival_marker_and_nothing_is_quarantined_meanwhile(loop):
    """With monitoring.arrival_marker set, the sensor pokes False while the producer is still writing
    (its half-written file is never listed, judged or quarantined); once the marker exists, the day runs."""
    import pandas as pd
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    from tests.helpers import write_config

    home, day = loop["home"], D0 + timedelta(days=SIMULATED + 5)  # a day of its own, after the simulated ones
    config = write_config(home / "arrival.yaml", home / "config.yaml", monitoring={"arrival_marker": "_SUCCESS"})
    folder = home / "incoming" / f"date={day}"
    folder.mkdir(parents=True)
    complete = pd.read_parquet(home / "incoming" / f"date={D0 + timedelta(days=2)}").to_csv(index=False).encode()
    (folder / "batch.csv").write_bytes(complete[: len(complete) // 2])  # halfway through its write
    monitoring = loop["dags"]["churn_monitoring"]
    sensor = monitoring.get_task("wait_for_batch")
    interval, timeout = sensor.poke_interval, sensor.timeout
    sensor.poke_interval, sensor.timeout = 1, 5  # the producer is not done within the test's patience
    try:
        waited = monitoring.test(
            logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"),
            run_conf={"config_path": str(config)},
        )
    finally:
        sensor.poke_interval, sensor.timeout = interval, timeout
    tasks = states(waited)
    assert (tasks["wait_for_batch"], tasks["check_batch"]) == ("failed", "upstream_failed"), tasks
    with create_session() as session:
        pokes = (
            session.query(TaskReschedule)
            .join(TaskReschedule.task_instance)
            .filter_by(dag_id="churn_monitoring", run_id=waited.run_id, task_id="wait_for_batch")
        )
        assert pokes.count() >= 2, "the sensor poked and found no marker"
    for kind in ("quarantine/monitoring", "work/verdicts/incoming", "predictions"):
        assert not (home / kind / f"date={day}").exists(), f"nothing of a day still being written in {kind}"

    (folder / "batch.csv").write_bytes(complete)
    (folder / "_SUCCESS").touch()
    ran = monitoring.test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"), run_conf={"config_path": str(config)}
    )
    assert str(ran.state) == "success", states(ran)
    assert len(pd.read_parquet(home / "predictions" / f"date={day}" / "predictions.parquet")) == 1500
