"""churnops.orchestration.variables: the last retraining attempt in its own Airflow Variable, beside the
last promotion, read and written through the metadata DB as the CLI does."""

from __future__ import annotations

import json

import pytest

from churnops.retraining import LAST_PROMOTION_VAR, LAST_RETRAINING_VAR


@pytest.fixture
def variables(airflow_db):
    """The session's metadata DB with neither record; both removed again afterwards."""
    from airflow.models import Variable

    for key in (LAST_PROMOTION_VAR, LAST_RETRAINING_VAR):
        Variable.delete(key)  # noqa: AIR311
    yield Variable  # noqa: AIR311
    for key in (LAST_PROMOTION_VAR, LAST_RETRAINING_VAR):
        Variable.delete(key)  # noqa: AIR311


def test_the_last_retraining_is_its_own_variable_as_json(variables):
    from churnops.orchestration.variables import MetadataVariableState

    state = MetadataVariableState()
    assert state.last_retraining() is None
    entry = {"date": "2026-10-10", "run_id": "monitoring__2026-10-10", "dag_id": "churn_retraining", "version": "4"}
    state.record_retraining(entry)
    assert state.last_retraining() == entry
    assert json.loads(variables.get(LAST_RETRAINING_VAR)) == entry
    assert state.last_promotion() is None, "an attempt is not a promotion"

    state.record_promotion({"date": "2026-10-11", "version": "5"})
    assert state.last_retraining() == entry and state.last_promotion() == {"date": "2026-10-11", "version": "5"}
