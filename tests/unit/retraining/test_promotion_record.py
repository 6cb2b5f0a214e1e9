"""A promotion's or rollback's record is written while the promotion lock is held, with the alias move.

Otherwise another promotion can move ``@champion`` between the move and its record, and the
record (which starts the cooldown) describes a registry that no longer exists.
"""

from __future__ import annotations

import fcntl
from datetime import date
from typing import Any

import pytest

from churnops.config import RegistryConfig, load_config
from churnops.tracking import alias_version, promotion_lock_path
from tests.helpers import log_tiny_models

REGISTRY = RegistryConfig(model_name="record-test-model")


class LockProbingState:
    """A :class:`~churnops.retraining.PromotionState` that, when asked to record, tries to take the
    promotion lock without waiting and notes whether someone held it."""

    def __init__(self) -> None:
        self.records: list[tuple[dict[str, Any], bool]] = []

    def last_promotion(self) -> dict[str, Any] | None:
        return self.records[-1][0] if self.records else None

    def record_promotion(self, entry: dict[str, Any]) -> None:
        path = promotion_lock_path(REGISTRY)
        with open(path, "a+") as handle:  # a descriptor of its own: flock conflicts with the holder's
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = True
            else:
                held = False
                fcntl.flock(handle, fcntl.LOCK_UN)
        self.records.append((entry, held))

    def cooldown_days(self, default: int) -> int:
        return default


@pytest.fixture
def champion_and_challenger(churnops_home) -> tuple[str, str]:
    """Two registered versions of a tiny real model: ``@champion`` 1 and ``@challenger`` 2."""
    from churnops.tracking import assign_training_alias, register_version

    versions = []
    for run_id, model_uri in log_tiny_models(2):
        version, _ = register_version(model_uri, run_id, REGISTRY, {})
        assign_training_alias(REGISTRY, version)
        versions.append(version)
    return versions[0], versions[1]


def test_a_promotion_and_then_a_rollback_are_recorded_while_the_lock_is_held(champion_and_challenger):
    from churnops.retraining import record_decision, rollback_and_record

    champion, challenger = champion_and_challenger
    config = load_config().model_copy(update={"registry": REGISTRY})
    state = LockProbingState()
    comparison = {
        "promote": True,
        "reason": "gain 0.0200 > 0.01",
        "gain": 0.02,
        "champion_roc_auc": 0.80,
        "challenger_roc_auc": 0.82,
        "champion_version": champion,
        "challenger_version": challenger,
    }
    outcome = record_decision(config, comparison, date(2026, 6, 1), state, {"run_id": "r1", "dag_id": "d"})
    assert outcome["decision"] == "promoted"
    ((promotion, held),) = state.records
    assert held, "the promotion was recorded after the promotion lock was released"
    assert (promotion["version"], promotion["previous_version"]) == (challenger, champion)

    moved = rollback_and_record(config, state, {"run_id": "r2", "dag_id": "d", "logical_date": "2026-06-02"}, "bad")
    (rollback, held) = state.records[-1]
    assert held, "the rollback was recorded after the promotion lock was released"
    assert rollback["rolled_back"] and (rollback["version"], rollback["previous_version"]) == (champion, challenger)
    assert moved["champion"] == alias_version(REGISTRY, "champion") == champion
