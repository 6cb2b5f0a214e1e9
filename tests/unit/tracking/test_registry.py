"""churnops.tracking.registry: registration is idempotent per source run; training never displaces a champion."""

from __future__ import annotations

import pytest

from churnops.config import RegistryConfig, load_config
from churnops.tracking.registry import alias_version, assign_training_alias, model_aliases, register_version
from churnops.tracking.runs import configure_mlflow

REGISTRY = RegistryConfig(model_name="unit-test-model")


@pytest.fixture
def logged_models(churnops_home):
    """Two tiny real sklearn models, each logged in its own run: [(run_id, model_uri)]."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    experiment_id = configure_mlflow(load_config())
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    logged = []
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(X, y), name="model", serialization_format="cloudpickle"
            )
            logged.append((run.info.run_id, info.model_uri))
    return logged


def test_register_twice_for_the_same_run_gives_one_version(logged_models):
    from mlflow import MlflowClient

    run_id, uri = logged_models[0]
    version, created = register_version(uri, run_id, REGISTRY, {"churnops.family": "lr"})
    again, created_again = register_version(uri, run_id, REGISTRY, {"churnops.family": "lr"})
    assert (version, created) == ("1", True)
    assert (again, created_again) == ("1", False)
    versions = MlflowClient().search_model_versions(f"name = '{REGISTRY.model_name}'")
    assert len(versions) == 1
    assert versions[0].tags["churnops.family"] == "lr"


def test_first_version_is_champion_later_ones_challenger(logged_models):
    (run_a, uri_a), (run_b, uri_b) = logged_models
    assert alias_version(REGISTRY, "champion") is None
    first, _ = register_version(uri_a, run_a, REGISTRY, {})
    assert assign_training_alias(REGISTRY, first) == "champion"
    assert assign_training_alias(REGISTRY, first) == "champion", "re-assigning the champion is a no-op"
    second, _ = register_version(uri_b, run_b, REGISTRY, {})
    assert assign_training_alias(REGISTRY, second) == "challenger"
    assert alias_version(REGISTRY, "champion") == first
    assert alias_version(REGISTRY, "challenger") == second
    assert model_aliases(REGISTRY, first) == ["champion"]
    assert model_aliases(REGISTRY, second) == ["challenger"]


def test_promotion_moves_champion_and_previous_champion_and_refuses_a_stale_champion(logged_models):
    from churnops.tracking.registry import PromotionConflict, promote_version, rollback_champion, version_tags

    (run_a, uri_a), (run_b, uri_b) = logged_models
    first, _ = register_version(uri_a, run_a, REGISTRY, {})
    assign_training_alias(REGISTRY, first)
    second, _ = register_version(uri_b, run_b, REGISTRY, {})
    assign_training_alias(REGISTRY, second)

    with pytest.raises(PromotionConflict):
        promote_version(REGISTRY, second, expected_champion="7", tags={})
    assert alias_version(REGISTRY, "champion") == first, "a refused promotion moves nothing"

    promote_version(REGISTRY, second, expected_champion=first, tags={"churnops.decision": "promoted"})
    assert alias_version(REGISTRY, "champion") == second
    assert alias_version(REGISTRY, "previous_champion") == first
    assert alias_version(REGISTRY, "challenger") is None
    assert version_tags(REGISTRY, second)["churnops.decision"] == "promoted"
    assert version_tags(REGISTRY, first)["churnops.decision"] == "promoted"

    rollback_champion(REGISTRY, {"churnops.decision": "rolled_back"})
    assert (alias_version(REGISTRY, "champion"), alias_version(REGISTRY, "previous_champion")) == (first, second)


def test_a_promotion_retried_after_a_crash_finishes_instead_of_conflicting(logged_models):
    """Killed after moving @champion (before @challenger was dropped or the state written): the retry
    of the same decision resumes; a different challenger evaluated against the old champion still loses."""
    from churnops.tracking.registry import PromotionConflict, _client, promote_version, version_tags

    (run_a, uri_a), (run_b, uri_b) = logged_models
    first, _ = register_version(uri_a, run_a, REGISTRY, {})
    assign_training_alias(REGISTRY, first)
    second, _ = register_version(uri_b, run_b, REGISTRY, {})
    assign_training_alias(REGISTRY, second)
    client = _client()  # the first attempt's two alias moves, then the crash
    client.set_registered_model_alias(REGISTRY.model_name, "previous_champion", first)
    client.set_registered_model_alias(REGISTRY.model_name, "champion", second)

    moved = promote_version(REGISTRY, second, expected_champion=first, tags={"churnops.decision": "promoted"})
    assert moved == {"champion": second, "previous_champion": first, "resumed": True}
    assert (alias_version(REGISTRY, "champion"), alias_version(REGISTRY, "previous_champion")) == (second, first)
    assert alias_version(REGISTRY, "challenger") is None, "the retry finishes what the crash left undone"
    assert version_tags(REGISTRY, second)["churnops.decision"] == "promoted"
    with pytest.raises(PromotionConflict):  # a rival judged against the old champion is still refused
        promote_version(REGISTRY, first, expected_champion=first, tags={})
    assert alias_version(REGISTRY, "champion") == second


def test_a_fresh_process_finds_the_registry_without_configuring_mlflow(logged_models, churnops_home):
    """A task process starts with MLflow unconfigured: registry calls must still use churnops' store."""
    import os
    import subprocess
    import sys

    run_id, uri = logged_models[0]
    version, _ = register_version(uri, run_id, REGISTRY, {"churnops.family": "lr"})
    assign_training_alias(REGISTRY, version)
    probe = (
        "from churnops.config import RegistryConfig; from churnops.tracking.registry import alias_version; "
        "print(alias_version(RegistryConfig(model_name='unit-test-model'), 'champion'))"
    )
    # mlflow.set_tracking_uri() exported MLFLOW_TRACKING_URI in this process; a task process has none.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=churnops_home.parent, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == version
    assert not (churnops_home.parent / "mlflow.db").exists(), "MLflow fell back to ./mlflow.db"


def _race(promote: str, challenger: str, barrier, results) -> None:
    """One contender (a forked process): champion read, a slow network, then the move."""
    import time

    from churnops.tracking import registry

    read = registry.alias_version

    def slow(registry_config, alias):  # widens the check-to-move window to half a second
        found = read(registry_config, alias)
        if alias == "champion":
            time.sleep(0.5)
        return found

    registry.alias_version = slow
    barrier.wait()
    try:
        getattr(registry, promote)(REGISTRY, challenger, "1", {})
        results.put((challenger, "won"))
    except registry.PromotionConflict as exc:
        results.put((challenger, f"conflict: {exc}"))
    except Exception as exc:  # e.g. SQLite refusing two simultaneous writes: past the check all the same
        results.put((challenger, f"error after the check: {type(exc).__name__}"))


def _contend(promote: str) -> dict[str, str]:
    import multiprocessing

    context = multiprocessing.get_context("fork")  # the children inherit CHURNOPS_HOME and the store
    barrier, results = context.Barrier(2), context.Queue()
    racers = [context.Process(target=_race, args=(promote, v, barrier, results)) for v in ("2", "3")]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    return dict(results.get(timeout=5) for _ in racers)


def test_two_racing_promotions_promote_exactly_one(churnops_home):
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    experiment_id = configure_mlflow(load_config())
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    for _ in range(3):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(X, y), name="model", serialization_format="cloudpickle"
            )
        assign_training_alias(REGISTRY, register_version(info.model_uri, run.info.run_id, REGISTRY, {})[0])

    # Without the lock both contenders pass the check (neither sees a conflict): the window is real.
    unlocked = _contend("_promote")
    assert not any(outcome.startswith("conflict") for outcome in unlocked.values()), unlocked

    # Put the champion back on 1, then race through the public path, which takes the lock.
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(REGISTRY.model_name, "champion", "1")
    locked = _contend("promote_version")
    winners = [v for v, outcome in locked.items() if outcome == "won"]
    assert len(winners) == 1, locked
    (loser,) = set(locked) - set(winners)
    assert "another promotion happened meanwhile" in locked[loser]
    assert alias_version(REGISTRY, "champion") == winners[0]
    assert alias_version(REGISTRY, "previous_champion") == "1"

    # The loser's retraining records why it did not promote, and changes nothing else.
    from datetime import date

    from churnops.retraining.decision import record_decision
    from churnops.retraining.state import FileState

    state = FileState(churnops_home / "state" / "promotion.json")
    comparison = {
        "promote": True,
        "reason": "gain 0.0200 > 0.01",
        "gain": 0.02,
        "champion_roc_auc": 0.80,
        "challenger_roc_auc": 0.82,
        "champion_version": "1",
        "challenger_version": loser,
    }
    outcome = record_decision(
        load_config().model_copy(update={"registry": REGISTRY}),
        comparison,
        date(2026, 6, 1),
        state,
        {"run_id": "loser-run"},
    )
    assert outcome["decision"] == "conflict" and outcome["champion"] == winners[0]
    assert outcome["challenger_tags"]["churnops.decision"] == "conflict"
    assert "another promotion happened meanwhile" in outcome["challenger_tags"]["churnops.decision_reason"]
    assert state.last_promotion() is None, "a lost race records no promotion (the cooldown is untouched)"
    assert alias_version(REGISTRY, "champion") == winners[0]

    # A rollback waits for the lock too.
    import threading

    from churnops.tracking.registry import promotion_lock, rollback_champion

    done = threading.Event()
    with promotion_lock(REGISTRY):
        worker = threading.Thread(target=lambda: (rollback_champion(REGISTRY, {}), done.set()))
        worker.start()
        assert not done.wait(1.0), "a rollback moved @champion while a promotion held the lock"
    worker.join(30)
    assert done.is_set() and alias_version(REGISTRY, "champion") == "1"
