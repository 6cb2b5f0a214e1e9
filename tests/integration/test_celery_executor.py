"""Steps 1 and 3 of the loop again with the CeleryExecutor: Redis broker, a Celery worker process.

The same DAGs under the executor the docker-compose stack runs: churn_training through the REST
API, then a drifted day's churn_monitoring run triggering churn_retraining, which decides per the
policy. Skipped, with the reason, where no Redis answers on 127.0.0.1:6379. Alerts go to a local
webhook receiver (``churnops_alerts`` as an ``http`` connection), sent from the Celery worker.
"""

from __future__ import annotations

import pytest

from tests.airflow_stack import redis_or_reason, running_stack
from tests.alert_sinks import HttpSink
from tests.integration.loop_steps import (
    DAY,
    drifted_day_triggers_a_retraining_that_decides_per_policy,
    report_timings,
    train_and_simulate,
)

pytestmark = pytest.mark.integration
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def webhook():
    """The webhook receiver the stack's alerts are posted to."""
    with HttpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def celery_loop(tmp_path_factory, webhook):
    reason = redis_or_reason()
    if reason:
        pytest.skip(f"CeleryExecutor needs Redis: {reason}")
    env = {"AIRFLOW_CONN_CHURNOPS_ALERTS": webhook.connection()}
    root = tmp_path_factory.mktemp("airflow-celery-it")
    with running_stack(root, executor="CeleryExecutor", extra_env=env) as stack:
        train_and_simulate(stack, TIMINGS)
        yield stack
        report_timings(stack, TIMINGS)


def test_tasks_ran_on_the_celery_worker(celery_loop):
    stack = celery_loop
    instances = stack.task_instances("churn_training", "it_training")
    assert {ti["state"] for ti in instances} == {"success"}
    assert {ti["queue"] for ti in instances} == {stack.queue}, "tasks went to the test's own Celery queue"
    worker_log = (stack.process_logs / "celery-worker.log").read_text(errors="replace")
    assert "churn_training" in worker_log, "the Celery worker never ran a churn_training task"


def test_drifted_day_triggers_a_retraining_that_decides_per_policy_on_celery(celery_loop, webhook):
    drifted_day_triggers_a_retraining_that_decides_per_policy(celery_loop, TIMINGS)
    # The previous step asserts a promotion: the webhook got the decision that led to it, then the promotion.
    texts = webhook.wait_for(lambda got: any("Event: promotion" in t for t in got), timeout=30)
    on_day = [t.splitlines() for t in texts if f"Day: {DAY}" in t.splitlines()]
    events = [[line for line in lines if line.startswith(("DAG: ", "Event: "))] for lines in on_day]
    assert events == [
        ["Event: retrain", "DAG: churn_monitoring"],
        ["Event: promotion", "DAG: churn_retraining"],
    ], texts
    assert all(r["path"] == HttpSink.ENDPOINT and r["json"]["blocks"] for r in webhook.received)
