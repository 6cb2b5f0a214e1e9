"""Steps 1 and 3 of the loop again with the CeleryExecutor: Redis broker, a Celery worker process.

The same DAGs under the executor the docker-compose stack runs: churn_training through the REST
API, then a drifted day's churn_monitoring run triggering churn_retraining, which decides per the
policy. Skipped, with the reason, where no Redis answers on 127.0.0.1:6379.
"""

from __future__ import annotations

import pytest

from tests.airflow_stack import redis_or_reason, running_stack
from tests.integration.loop_steps import (
    drifted_day_triggers_a_retraining_that_decides_per_policy,
    report_timings,
    train_and_simulate,
)

pytestmark = pytest.mark.integration
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def celery_loop(tmp_path_factory):
    reason = redis_or_reason()
    if reason:
        pytest.skip(f"CeleryExecutor needs Redis: {reason}")
    with running_stack(tmp_path_factory.mktemp("airflow-celery-it"), executor="CeleryExecutor") as stack:
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


def test_drifted_day_triggers_a_retraining_that_decides_per_policy_on_celery(celery_loop):
    drifted_day_triggers_a_retraining_that_decides_per_policy(celery_loop, TIMINGS)
