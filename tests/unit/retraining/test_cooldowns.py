"""The two cooldowns of ``check_cooldown``: after a promotion and after a retraining attempt.

Real file stores (``FileState``), as-of days only: no MLflow, no Airflow.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from churnops.config import ChurnopsConfig, load_config
from churnops.retraining import LAST_RETRAINING_VAR, FileState, check_cooldown, record_attempt
from tests.helpers import TELCO_CONFIG

DAY = date(2026, 10, 10)
YESTERDAY = DAY - timedelta(days=1)


def config(cooldown_days: int = 7, retraining_cooldown_days: int = 3) -> ChurnopsConfig:
    loaded = load_config(TELCO_CONFIG)
    policy = loaded.policy.model_copy(
        update={"cooldown_days": cooldown_days, "retraining_cooldown_days": retraining_cooldown_days}
    )
    return loaded.model_copy(update={"policy": policy})


class CountingState(FileState):
    """A file store that counts its writes of the last retraining attempt."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retraining_writes = 0

    def record_retraining(self, entry: dict[str, Any]) -> None:
        self.retraining_writes += 1
        super().record_retraining(entry)


@pytest.fixture
def state(tmp_path) -> CountingState:
    return CountingState(tmp_path / "promotion.json")


def attempt(state: FileState, day: date, run_id: str | None = None) -> dict[str, Any]:
    return record_attempt(state, day, {"run_id": run_id or f"monitoring__{day}", "dag_id": "churn_retraining"}, "4")


def test_the_file_store_keeps_the_last_promotion_and_the_last_retraining_apart(state):
    assert state.last_retraining() is None
    state.record_promotion({"date": "2026-10-01", "version": "3"})
    attempt(state, DAY)
    assert state.last_promotion() == {"date": "2026-10-01", "version": "3"}
    assert state.last_retraining() == {
        "date": "2026-10-10",
        "run_id": "monitoring__2026-10-10",
        "dag_id": "churn_retraining",
        "version": "4",
        "forced": False,
    }
    assert FileState(state.path).last_retraining()["date"] == "2026-10-10", "a new store on the file reads it back"
    assert set(json.loads(state.path.read_text())) == {"churnops_last_promotion", LAST_RETRAINING_VAR}


def test_no_record_means_no_cooldown(state):
    gate = check_cooldown(config(), DAY, state, force=False)
    assert gate["proceed"] and not gate["forced"]
    assert (gate["cooldown"], gate["reason"], gate["cooldown_until"]) == (None, "no cooldown in effect", "")
    assert gate["last_promotion"] is None and gate["last_retraining"] is None


@pytest.mark.parametrize(
    ("offset", "blocked"),
    [(-1, True), (0, True), (1, True), (2, True), (3, False), (10, False)],
    ids=["earlier-day-replayed", "same-day", "day-1", "day-2", "day-3-free", "later"],
)
def test_a_retraining_attempt_blocks_its_day_and_the_next_two_by_as_of_date(state, offset, blocked):
    attempt(state, DAY)
    gate = check_cooldown(config(), DAY + timedelta(days=offset), state, force=False)
    assert gate["proceed"] is not blocked
    assert gate["cooldown"] == ("retraining" if blocked else None)
    if blocked:
        assert gate["cooldown_until"] == "2026-10-13"
        reason = "in cooldown: last retraining attempt on 2026-10-10, next allowed on 2026-10-13"
        assert gate["reason"].startswith(reason)
        assert gate["last_retraining"]["run_id"] == "monitoring__2026-10-10"


def test_a_promotion_names_the_promotion_cooldown(state):
    state.record_promotion({"date": "2026-10-08", "version": "3"})
    gate = check_cooldown(config(), DAY, state, force=False)
    assert (gate["proceed"], gate["cooldown"], gate["cooldown_until"]) == (False, "promotion", "2026-10-15")
    assert gate["reason"].startswith("in cooldown: last promotion on 2026-10-08")


def test_the_promotion_cooldown_length_stored_in_the_state_wins_over_the_config(tmp_path):
    state = FileState(tmp_path / "promotion.json", cooldown_days=1)
    state.record_promotion({"date": "2026-10-08", "version": "3"})
    assert check_cooldown(config(cooldown_days=7), DAY, state, force=False)["proceed"]


@pytest.mark.parametrize(
    ("promoted", "retrained", "named", "until"),
    [
        pytest.param(DAY, DAY, "promotion", "2026-10-17", id="same-day-promotion-lasts-longer"),
        pytest.param(DAY - timedelta(days=6), YESTERDAY, "retraining", "2026-10-12", id="retraining-ends-later"),
        pytest.param(DAY - timedelta(days=5), YESTERDAY, "promotion", "2026-10-12", id="tie-names-promotion"),
    ],
)
def test_inside_both_cooldowns_the_one_that_ends_last_is_named(state, promoted, retrained, named, until):
    state.record_promotion({"date": promoted.isoformat(), "version": "3"})
    attempt(state, retrained)
    gate = check_cooldown(config(), DAY, state, force=False)
    assert (gate["proceed"], gate["cooldown"], gate["cooldown_until"]) == (False, named, until)


@pytest.mark.parametrize("which", ["promotion", "retraining", "both"])
def test_force_overrides_either_cooldown_and_says_which_it_overrode(state, which):
    if which in ("promotion", "both"):
        state.record_promotion({"date": DAY.isoformat(), "version": "3"})
    if which in ("retraining", "both"):
        attempt(state, DAY)
    gate = check_cooldown(config(), DAY + timedelta(days=1), state, force=True)
    assert gate["proceed"] and gate["forced"]
    assert gate["cooldown"] == ("retraining" if which == "retraining" else "promotion")
    assert gate["reason"].endswith("; overridden by force")


def test_force_outside_any_cooldown_is_not_recorded_as_forced(state):
    gate = check_cooldown(config(), DAY, state, force=True)
    assert gate["proceed"] and not gate["forced"] and gate["cooldown"] is None


def test_a_run_is_not_blocked_by_its_own_attempt_but_another_run_of_the_day_is(state):
    attempt(state, DAY, run_id="monitoring__2026-10-10")
    own = check_cooldown(config(), DAY, state, force=False, run_id="monitoring__2026-10-10")
    assert own["proceed"] and own["cooldown"] is None
    assert own["reason"] == "no cooldown in effect (the last retraining attempt, on 2026-10-10, is this run's own)"
    other = check_cooldown(config(), DAY, state, force=False, run_id="manual__2026-10-10T09:00:00+00:00")
    assert not other["proceed"] and other["cooldown"] == "retraining"


def test_its_own_attempt_does_not_lift_a_promotion_cooldown(state):
    state.record_promotion({"date": DAY.isoformat(), "version": "4", "run_id": "monitoring__2026-10-10"})
    attempt(state, DAY, run_id="monitoring__2026-10-10")
    gate = check_cooldown(config(), DAY, state, force=False, run_id="monitoring__2026-10-10")
    assert not gate["proceed"] and gate["cooldown"] == "promotion"


def test_a_zero_day_retraining_cooldown_never_blocks(state):
    attempt(state, DAY)
    assert check_cooldown(config(retraining_cooldown_days=0), DAY, state, force=False)["proceed"]


def test_recording_the_same_attempt_again_writes_nothing(state):
    first = attempt(state, DAY)
    assert attempt(state, DAY) == first
    assert state.retraining_writes == 1, "a retried or rerun task must not rewrite (or double-count) its attempt"


def test_an_earlier_day_never_moves_the_last_attempt_back(state):
    attempt(state, DAY)
    kept = attempt(state, DAY - timedelta(days=4))
    assert kept["date"] == "2026-10-10" and state.last_retraining()["date"] == "2026-10-10"
    later = record_attempt(state, DAY, {"run_id": "forced__2026-10-10", "dag_id": "cli-retrain"}, "5", forced=True)
    assert state.last_retraining() == later and later["forced"] is True, "another run of the same day replaces it"


def test_persistent_drift_trains_once_per_retraining_cooldown(state):
    """Every day of 20 asks to retrain and no challenger is promoted: 7 attempts with a 3-day cooldown."""
    trained = []
    for offset in range(20):
        day = DAY + timedelta(days=offset)
        gate = check_cooldown(config(), day, state, force=False, run_id=f"monitoring__{day}")
        if gate["proceed"]:
            attempt(state, day)
            trained.append(offset)
        else:
            assert gate["cooldown"] == "retraining"
    assert trained == [0, 3, 6, 9, 12, 15, 18]
