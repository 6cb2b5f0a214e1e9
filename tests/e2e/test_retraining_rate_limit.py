"""The retraining rate limit under ``dag.test()``: persistent drift whose challengers never pass the gain rule.

Every one of 20 drifted days triggers ``churn_retraining`` (as ``churn_monitoring`` does, with the
day as ``as_of``); ``policy.min_gain`` 1.0 rejects every challenger, so no promotion ever starts the
promotion cooldown. With ``policy.retraining_cooldown_days`` 3 the loop trains on days 0, 3, …, 18:
exactly 7 challengers. The attempts live in the Airflow Variable ``churnops_last_retraining`` of a
throwaway metadata DB; each stopped day is an MLflow run and an alert naming the retraining cooldown.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pendulum
import pytest

from tests.alert_sinks import HttpSink
from tests.helpers import ROOT, churnops_environment, write_config

pytestmark = pytest.mark.e2e

D0 = date(2026, 5, 1)  # the first drifted day retraining is asked for
DAYS, COOLDOWN = 20, 3
MODEL = "rate-limit-model"
STATE_VARIABLES = ("churnops_last_promotion", "churnops_last_retraining")


def clear_state() -> None:
    from airflow.models import Variable  # the test reads and clears the metadata DB, outside any task

    for key in STATE_VARIABLES:
        Variable.delete(key)  # noqa: AIR311


@pytest.fixture(scope="module")
def drifted(airflow_db, tmp_path_factory):
    """A champion, and drifted labelled days covering every as-of day's training and evaluation windows."""
    from airflow.dag_processing.dagbag import DagBag

    from churnops.config import load_config
    from churnops.devtools.simulate import write_days

    home = tmp_path_factory.mktemp("rate-limit-home")
    config = write_config(
        home / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        # min_gain 1.0: no ROC-AUC gain can pass it, every challenger is rejected.
        policy={
            "min_gain": 1.0,
            "bootstrap_samples": 0,
            "cooldown_days": 7,
            "retraining_cooldown_days": COOLDOWN,
            "eval_window_days": 2,
            "train_window_days": 2,
        },
        registry={"model_name": MODEL},
        monitoring={"html_report": False},
    )
    with (
        churnops_environment(home, config),
        HttpSink() as alerts,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("AIRFLOW_CONN_CHURNOPS_ALERTS", alerts.connection())
        cfg = load_config(config)
        # Labels mature 7 days after their day: as-of D0 evaluates on D0-8 … D0-7 and trains on D0-10 … D0-9.
        first = D0 - timedelta(days=10)
        write_days(cfg, home, first, DAYS + 10, rows_per_day=300, scenario="mixed", seed=11, ramp_days=1)
        dags = DagBag(dag_folder=str(ROOT / "dags")).dags
        clear_state()
        run = dags["churn_training"].test(logical_date=pendulum.datetime(2026, 4, 1, tz="UTC"))
        assert str(run.state) == "success"
        try:
            yield {"dags": dags, "alerts": alerts}
        finally:
            clear_state()  # other modules' DAG tests share the session's metadata DB


def retrain(dags, day: date, **conf):
    """``churn_retraining`` for ``day`` as ``churn_monitoring`` triggers it; the same day gives the same run id."""
    when = pendulum.datetime(day.year, day.month, day.day, tz="UTC")
    conf = {"as_of": day.isoformat(), "reason": "dataset drift: 14 of 19 features drifted", **conf}
    return dags["churn_retraining"].test(logical_date=when, run_after=when, run_conf=conf)


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def last_retraining() -> dict:
    from airflow.models import Variable

    return json.loads(Variable.get("churnops_last_retraining"))  # noqa: AIR311


def test_persistent_drift_with_failing_challengers_trains_once_per_retraining_cooldown(drifted):
    from mlflow import MlflowClient

    trained = []
    for offset in range(DAYS):
        day = D0 + timedelta(days=offset)
        run = retrain(drifted["dags"], day)
        tasks = states(run)
        assert str(run.state) == "success", (day, tasks)
        assert tasks["check_cooldown"] == "success"
        if tasks["start"] == "success":
            assert tasks["reject"] == "success" and tasks["promote"] == "skipped", (day, tasks)
            assert last_retraining()["date"] == day.isoformat() and last_retraining()["run_id"] == run.run_id
            trained.append(offset)
        else:
            assert tasks["start"] == "skipped" and tasks["compare"] == "skipped", (day, tasks)
    assert trained == [0, 3, 6, 9, 12, 15, 18], "one challenger per 3-day retraining cooldown"

    client = MlflowClient()
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert len(versions) == 1 + len(trained), "the champion and one challenger per attempt"
    assert {v.tags.get("churnops.decision") for v in versions if str(v.version) != "1"} == {"rejected"}
    experiment = client.get_experiment_by_name("churnops-telco")
    skipped = client.search_runs([experiment.experiment_id], "tags.`churnops.decision` = 'skipped'")
    assert len(skipped) == DAYS - len(trained)
    assert {r.data.tags["churnops.cooldown"] for r in skipped} == {"retraining"}
    assert all("last retraining attempt" in r.data.tags["churnops.decision_reason"] for r in skipped)
    stopped = [t.splitlines()[0] for t in drifted["alerts"].texts() if "Event: cooldown_stop" in t.splitlines()]
    assert len(stopped) == DAYS - len(trained)
    assert all(line.endswith(": retraining stopped by the retraining cooldown") for line in stopped)


def test_a_rerun_of_a_run_that_trained_is_not_blocked_by_its_own_attempt_and_force_overrides(drifted):
    from airflow.models import Variable

    last_day = D0 + timedelta(days=18)  # the last day that trained in the test above
    recorded = last_retraining()
    assert recorded["date"] == last_day.isoformat()

    again = retrain(drifted["dags"], last_day)  # the same run id: a rerun of that run
    assert again.run_id == recorded["run_id"]
    tasks = states(again)
    assert tasks["start"] == "success" and tasks["reject"] == "success", tasks
    assert last_retraining()["date"] == last_day.isoformat() and last_retraining()["run_id"] == again.run_id

    blocked = retrain(drifted["dags"], last_day + timedelta(days=1))
    assert states(blocked)["start"] == "skipped", "the attempt still holds the next day"
    forced = retrain(drifted["dags"], last_day + timedelta(days=1), force=True)
    assert states(forced)["start"] == "success"
    assert last_retraining()["forced"] is True and last_retraining()["date"] == str(last_day + timedelta(days=1))
    assert Variable.get("churnops_last_promotion", default_var=None) is None, "nothing was promoted"  # noqa: AIR311
