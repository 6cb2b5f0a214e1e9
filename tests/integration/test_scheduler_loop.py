"""The whole loop under a real Airflow scheduler, not ``dag.test()``, through public interfaces only.

``dag.test()`` never runs the run a ``TriggerDagRunOperator`` creates, ignores pools, and lets a
task reach the metadata DB directly. Here every task runs in a LocalExecutor worker and talks to
the api-server's execution API, as in production:

MLflow is a real tracking server (PostgreSQL store when available, served artifacts), Airflow's
objects come from ``airflow_settings.yaml`` (``churnops airflow-settings load``), and the
churnops plugin is loaded:

1. churn_training (REST trigger) registers @champion; each task links to its MLflow run; the
   champion is served by ``mlflow models serve``;
2. 10 stable then 30 drifted days are simulated; ``airflow backfill create`` monitors three
   drifted days: each succeeds, one report per day, no retraining triggered from a backfill;
   the same backfill with ``--reprocess-behavior completed`` still leaves one result per day;
3. churn_monitoring for a fully drifted day (REST, with that logical date) takes the
   ``trigger_retraining`` branch → the scheduler runs churn_retraining ``monitoring__<day>``,
   which promotes or rejects per the policy (promotion in the one-slot pool, Variable, aliases)
   → a second retraining inside the cooldown stops after ``check_cooldown``;
4. alerts: the stack's ``churnops_alerts`` connection (``AIRFLOW_CONN_CHURNOPS_ALERTS``) points at
   a local SMTP sink, which receives the retrain decision, the promotion, the cooldown stop and a
   task's failure (a day without data), each naming its DAG, day and decision.
"""

from __future__ import annotations

import json
import os
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.airflow_stack import MLFLOW, free_port, running_stack
from tests.alert_sinks import SmtpSink
from tests.helpers import telco_table
from tests.integration.loop_steps import (
    D0,
    DAG_IDS,
    DAY,
    MODEL,
    SIMULATED,
    drifted_day_triggers_a_retraining_that_decides_per_policy,
    mlflow_client,
    report_timings,
    train_and_simulate,
    variable,
)

pytestmark = pytest.mark.integration

BACKFILL_DAYS = [D0 + timedelta(days=d) for d in (SIMULATED - 5, SIMULATED - 4, SIMULATED - 3)]  # drifted too
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def mail():
    """The SMTP server alerts are mailed to."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def airflow_stack(tmp_path_factory, mail):
    """The LocalExecutor stack, its alerts going to :func:`mail` through the connection set in the environment."""
    env = {"AIRFLOW_CONN_CHURNOPS_ALERTS": mail.connection()}
    with running_stack(tmp_path_factory.mktemp("airflow-it"), extra_env=env) as stack:
        yield stack


def alerts(mail: SmtpSink, event: str, dag_id: str, day: date, timeout: float = 30) -> list[str]:
    """The texts of the mailed alerts of one event of a DAG on a day (waiting a little for them)."""

    def matching(texts: list[str]) -> list[str]:
        wanted = {f"Event: {event}", f"DAG: {dag_id}", f"Day: {day.isoformat()}"}
        return [t for t in texts if wanted <= set(t.splitlines())]

    return matching(mail.wait_for(lambda texts: bool(matching(texts)), timeout))


@pytest.fixture(scope="module")
def loop(airflow_stack):
    """A champion trained by churn_training under the scheduler, and 40 simulated days."""
    stack = airflow_stack
    train_and_simulate(stack, TIMINGS)
    yield stack
    report_timings(stack, TIMINGS)


def test_every_task_links_to_its_mlflow_run_and_the_ui_to_mlflow(loop):
    stack = loop
    client = mlflow_client(stack)
    experiment = client.get_experiment_by_name("churnops-telco")
    runs = client.search_runs([experiment.experiment_id], "tags.`churnops.run_id` = 'it_training'")
    by_step = {r.data.tags["churnops.step"]: r.info.run_id for r in runs}
    for task, step in (("start", "pipeline"), ("validate", "validate"), ("register", "register")):
        links = stack.api("GET", f"/dags/churn_training/dagRuns/it_training/taskInstances/{task}/links")
        assert (
            links["extra_links"]["MLflow run"]
            == f"{stack.mlflow_uri}/#/experiments/{experiment.experiment_id}/runs/{by_step[step]}"
        ), (task, links)
    plugins = {p["name"]: p for p in stack.api("GET", "/plugins")["plugins"]}
    assert "churnops" in plugins, sorted(plugins)
    assert [v["href"] for v in plugins["churnops"]["external_views"]] == [stack.mlflow_uri]


def raw_rows(n: int) -> dict:
    """``dataframe_split`` of raw merged Telco rows, as the CSV text has them (numbers as text included)."""
    frame = telco_table(dtype=str, keep_default_na=False).drop(columns=["customerid", "churn"]).head(n)
    frame.loc[frame.index[0], "contract"] = "Ten year"  # never seen in training
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}


def test_mlflow_models_serve_returns_probabilities_for_raw_rows(loop):
    import httpx

    stack = loop
    port = free_port()
    started = time.monotonic()
    # Started like the stack's own processes: stopped, with its workers, when the module ends.
    stack.start(
        "serve",
        "models",
        "serve",
        "-m",
        f"models:/{MODEL}@champion",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        program=MLFLOW,
    )
    stack.wait_for_http("serve", f"http://127.0.0.1:{port}/ping", timeout=120)
    TIMINGS["mlflow models serve ready"] = round(time.monotonic() - started, 1)
    response = httpx.post(f"http://127.0.0.1:{port}/invocations", json=raw_rows(5), timeout=30)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 5 and all(len(p) == 2 for p in predictions)
    assert all(0 <= p[1] <= 1 and abs(sum(p) - 1) < 1e-9 for p in predictions)
    assert len({round(p[1], 6) for p in predictions}) > 1, "probabilities should depend on the rows"


def backfill_run_id(day: date) -> str:
    return f"backfill__{day.isoformat()}T00:00:00+00:00"


def test_backfill_monitors_each_day_once_and_never_triggers_retraining(loop, mail):
    stack = loop
    first, last = BACKFILL_DAYS[0].isoformat(), BACKFILL_DAYS[-1].isoformat()
    started = time.monotonic()
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
        "3",
    )
    runs = {day: stack.wait_for_run("churn_monitoring", backfill_run_id(day), timeout=300) for day in BACKFILL_DAYS}
    TIMINGS["monitoring backfill, 3 days"] = round(time.monotonic() - started, 1)
    for day, run in runs.items():
        assert run["run_type"] == "backfill"
        tasks = stack.task_states("churn_monitoring", backfill_run_id(day))
        assert tasks["trigger_retraining"] == "skipped" and tasks["no_retraining"] == "success", (day, tasks)
        report = json.loads((stack.churnops_home / "reports" / f"date={day}" / "drift_report.json").read_text())
        assert report["date"] == day.isoformat() and report["decision"] == "retrain", report  # drifted, yet no trigger
        assert stack.dag_run("churn_retraining", f"monitoring__{day}") is None, "a backfill triggered a retraining"

    def results() -> dict:
        client = mlflow_client(stack)
        experiment = client.get_experiment_by_name("churnops-telco-monitoring")
        by_day = {}
        for day in BACKFILL_DAYS:
            found = client.search_runs(
                [experiment.experiment_id], f"tags.`churnops.monitoring_date` = '{day.isoformat()}'"
            )
            folder = stack.churnops_home / "reports" / f"date={day}"
            by_day[day] = (
                len(found),
                sorted(p.name for p in folder.iterdir()),
                sorted(p.name for p in (stack.churnops_home / "predictions" / f"date={day}").iterdir()),
            )
        return by_day

    before = results()
    assert all(count == 1 for count, _, _ in before.values()), before
    stack.wait_until_backfills_complete("churn_monitoring")  # one running backfill per DAG at a time
    started = time.monotonic()
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
        "3",
        "--reprocess-behavior",
        "completed",
    )
    for day, run in runs.items():
        rerun = stack.wait_for_run("churn_monitoring", backfill_run_id(day), timeout=300, queued_after=run["queued_at"])
        assert rerun["end_date"] > run["end_date"], "the completed day was not reprocessed"
    TIMINGS["monitoring backfill rerun (--reprocess-behavior completed)"] = round(time.monotonic() - started, 1)
    assert results() == before, "a reprocessed backfill duplicated a result"
    assert all(stack.dag_run("churn_retraining", f"monitoring__{day}") is None for day in BACKFILL_DAYS)
    retrain_mails = [t for t in mail.texts() if "Event: retrain" in t]
    assert not any(f"Day: {day}" in t for t in retrain_mails for day in BACKFILL_DAYS), "a backfill alerted a retrain"


def test_drifted_day_triggers_a_retraining_that_decides_per_policy(loop, mail):
    drifted_day_triggers_a_retraining_that_decides_per_policy(loop, TIMINGS)
    (retrain,) = alerts(mail, "retrain", "churn_monitoring", DAY)
    assert "Decision: retrain" in retrain and "Drifted features: " in retrain, retrain
    (promotion,) = alerts(mail, "promotion", "churn_retraining", DAY)  # the previous step asserts a promotion
    assert "Decision: promoted" in promotion and f"Run: monitoring__{DAY}" in promotion, promotion
    (loop.root / "alerts.txt").write_text("\n\n".join(mail.texts()))  # the mails as sent, for a reader
    print(f"\nmailed alerts (e.g.):\n{retrain}\n\n{promotion}")


def test_retraining_inside_the_cooldown_stops_after_check_cooldown(loop, mail):
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
    skipped = client.search_runs(
        [experiment.experiment_id], f"tags.`churnops.run_id` = '{run_id}' and tags.`churnops.decision` = 'skipped'"
    )
    assert len(skipped) == 1 and "in cooldown" in skipped[0].data.tags["churnops.decision_reason"]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == str(last_promotion["version"])
    assert variable(stack, "churnops_last_promotion") == last_promotion
    (stop,) = alerts(mail, "cooldown_stop", "churn_retraining", DAY + timedelta(days=1))
    assert "Decision: skipped" in stop and f"Run: {run_id}" in stop and "in cooldown" in stop, stop


def test_a_task_that_fails_for_good_is_mailed_with_its_log_url(loop, mail):
    """A day without data: check_batch fails at its first try (bad input is not retried), and alerts."""
    stack, day = loop, D0 + timedelta(days=SIMULATED + 5)
    run_id = f"it_missing__{day}"
    stack.trigger("churn_monitoring", run_id, logical_date=f"{day}T00:00:00Z")
    stack.wait_for_run("churn_monitoring", run_id, timeout=180, expect="failed")
    assert stack.task_states("churn_monitoring", run_id)["check_batch"] == "failed"
    (failure,) = alerts(mail, "task_failed", "churn_monitoring", day)
    lines = failure.splitlines()
    assert lines[0] == f"[churnops] churn_monitoring {day}: task check_batch failed after try 1 of 4", failure
    assert "Decision: failed" in lines and "Task: check_batch" in lines, failure
    assert f"Log: {stack.base_url}/dags/churn_monitoring/runs/{run_id}/tasks/check_batch?try_number=1" in lines


CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.access(p, os.X_OK)), None)
# Screenshots refresh docs/ only when asked (CHURNOPS_SCREENSHOTS=docs): a test run leaves the tree clean.
SCREENSHOTS = os.environ.get("CHURNOPS_SCREENSHOTS")


def test_both_uis_in_a_real_browser(loop, tmp_path):
    """Airflow UI: log in, the three DAGs, a successful retraining run; MLflow UI: the training's
    parent run with its step runs nested under it, and churn-predictor with its @champion alias.
    Screenshots go to $CHURNOPS_SCREENSHOTS (``docs`` refreshes the README's), else a temp dir."""
    if CHROMIUM is None:
        pytest.skip("no Chromium (apt-get install chromium); the browser check needs a real browser")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    stack = loop
    password = json.loads((stack.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    client = mlflow_client(stack)
    experiment = client.get_experiment_by_name("churnops-telco")
    parent = next(
        r
        for r in client.search_runs([experiment.experiment_id], "tags.`churnops.run_id` = 'it_training'")
        if r.data.tags.get("churnops.step") == "pipeline"
    )
    shots = Path(SCREENSHOTS).resolve() if SCREENSHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(f"{stack.base_url}/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/login" not in url)
            page.goto(f"{stack.base_url}/dags?tags=churnops")
            for dag_id in DAG_IDS:
                page.get_by_text(dag_id, exact=True).first.wait_for()
            page.screenshot(path=str(shots / "airflow-dags.png"))

            page.goto(f"{stack.base_url}/dags/churn_retraining/runs/monitoring__{DAY.isoformat()}")
            page.get_by_text(f"monitoring__{DAY.isoformat()}").first.wait_for()
            page.get_by_text("promote", exact=True).first.wait_for()
            page.get_by_text("success", exact=False).first.wait_for()
            page.screenshot(path=str(shots / "airflow-retraining-run.png"))

            page.goto(f"{stack.mlflow_uri}/#/experiments/{experiment.experiment_id}/runs/{parent.info.run_id}")
            page.get_by_text(parent.info.run_name).first.wait_for()
            page.screenshot(path=str(shots / "mlflow-parent-run.png"))

            # The runs table lists parents; expanding one shows its nested step runs.
            page.goto(f"{stack.mlflow_uri}/#/experiments/{experiment.experiment_id}/runs")
            parent_row = page.locator(".ag-row", has_text=parent.info.run_name).first
            parent_row.locator("button[data-component-id*='runnamecellrenderer']").first.click()
            for step_name in ("validate", "merge", "preprocess", "features", "evaluate", "register"):
                page.locator(".ag-row", has_text=step_name).first.wait_for()
            page.screenshot(path=str(shots / "mlflow-nested-runs.png"))

            champion = client.get_model_version_by_alias(MODEL, "champion").version
            page.goto(f"{stack.mlflow_uri}/#/models/{MODEL}")
            version_row = page.locator("[role=row], tr", has_text=f"Version {champion}").first
            version_row.get_by_text("champion").first.wait_for()
            page.screenshot(path=str(shots / "mlflow-champion.png"))
        finally:
            browser.close()
