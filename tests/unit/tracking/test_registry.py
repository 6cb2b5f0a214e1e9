"""churnops.tracking.registry: registration is idempotent per source run; training never displaces a champion."""

from __future__ import annotations

import pytest

from churnops.config import RegistryConfig, load_config
from churnops.tracking.registry import alias_version, assign_training_alias, model_aliases, register_version
from churnops.tracking.runs import configure_mlflow
from tests.helpers import log_tiny_models

REGISTRY = RegistryConfig(model_name="unit-test-model")


@pytest.fixture
def logged_models(churnops_home):
    """Two tiny real sklearn models, each logged in its own run: [(run_id, model_uri)]."""
    return log_tiny_models(2)


@pytest.fixture
def registered(logged_models):
    """The two models registered as trainings do: version 1 ``@champion``, version 2 ``@challenger``."""
    (run_a, uri_a), (run_b, uri_b) = logged_models
    first, _ = register_version(uri_a, run_a, REGISTRY, {})
    assign_training_alias(REGISTRY, first)
    second, _ = register_version(uri_b, run_b, REGISTRY, {})
    assign_training_alias(REGISTRY, second)
    return first, second


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


def test_promotion_moves_champion_and_previous_champion_and_refuses_a_stale_champion(registered):
    from churnops.tracking.registry import (
        PromotionConflict,
        plan_rollback,
        promote_version,
        rollback_champion,
        version_tags,
    )

    first, second = registered

    with pytest.raises(PromotionConflict):
        promote_version(REGISTRY, second, expected_champion="7", tags={})
    assert alias_version(REGISTRY, "champion") == first, "a refused promotion moves nothing"

    promote_version(REGISTRY, second, expected_champion=first, tags={"churnops.decision": "promoted"})
    assert alias_version(REGISTRY, "champion") == second
    assert alias_version(REGISTRY, "previous_champion") == first
    assert alias_version(REGISTRY, "challenger") is None
    assert version_tags(REGISTRY, second)["churnops.decision"] == "promoted"
    assert version_tags(REGISTRY, first)["churnops.decision"] == "promoted"

    plan = plan_rollback(REGISTRY)
    assert plan == {"champion": second, "rollback_to": first}
    moved = rollback_champion(REGISTRY, plan, {"churnops.decision": "rolled_back"})
    assert moved == {"champion": first, "previous_champion": second, "resumed": False}
    assert (alias_version(REGISTRY, "champion"), alias_version(REGISTRY, "previous_champion")) == (first, second)


def test_a_promotion_retried_after_a_crash_finishes_instead_of_conflicting(registered):
    """Killed after moving @champion (before @challenger was dropped or the state written): the retry
    of the same decision resumes; a different challenger evaluated against the old champion still loses."""
    from churnops.tracking.registry import PromotionConflict, _client, promote_version, version_tags

    first, second = registered
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

    from churnops.tracking.locks import promotion_lock
    from churnops.tracking.registry import plan_rollback, rollback_champion

    done = threading.Event()
    plan = plan_rollback(REGISTRY)
    with promotion_lock(REGISTRY):
        worker = threading.Thread(target=lambda: (rollback_champion(REGISTRY, plan, {}), done.set()))
        worker.start()
        assert not done.wait(1.0), "a rollback moved @champion while a promotion held the lock"
    worker.join(30)
    assert done.is_set() and alias_version(REGISTRY, "champion") == "1"


# --- rollback: a compare-and-set on the planned pair ------------------------------------------------------------


@pytest.fixture
def promoted(registered):
    """Version 2 promoted over version 1: ``@champion`` 2, ``@previous_champion`` 1."""
    from churnops.tracking.registry import promote_version

    first, second = registered
    promote_version(REGISTRY, second, expected_champion=first, tags={})
    return first, second


def champions() -> tuple[str | None, str | None]:
    return alias_version(REGISTRY, "champion"), alias_version(REGISTRY, "previous_champion")


@pytest.mark.parametrize(
    "done_before_the_crash",
    [("champion", "previous_champion"), ("champion",)],
    ids=["both-aliases-moved", "only-champion-moved"],
)
def test_a_rollback_retried_after_its_aliases_moved_finishes_instead_of_swapping_back(promoted, done_before_the_crash):
    """The first attempt died after moving both aliases, or between the two: the retry, with the same plan,
    ends with the aliases swapped exactly once and reports that it resumed."""
    from churnops.tracking.registry import _client, plan_rollback, rollback_champion, version_tags

    first, second = promoted
    plan = plan_rollback(REGISTRY)
    client = _client()  # the first attempt's alias moves, in its order, then the crash
    moves = {"champion": first, "previous_champion": second}
    for alias in done_before_the_crash:
        client.set_registered_model_alias(REGISTRY.model_name, alias, moves[alias])

    recorded = []
    moved = rollback_champion(REGISTRY, plan, {"churnops.decision": "rolled_back"}, recorded.append)
    assert moved == {"champion": first, "previous_champion": second, "resumed": True}
    assert champions() == (first, second), "the retry swapped the aliases back"
    assert recorded == [moved]
    assert version_tags(REGISTRY, first)["churnops.decision"] == "rolled_back"
    assert version_tags(REGISTRY, second)["churnops.decision"] == "rolled_back"
    again = rollback_champion(REGISTRY, plan, {})
    assert (again["resumed"], champions()) == (True, (first, second)), "the same plan never swaps twice"


def test_a_rollback_whose_planned_pair_was_moved_by_a_rival_conflicts_and_changes_nothing(promoted, logged_models):
    """Planned "2 back to 1"; before it runs, another promotion (3 over 2) moves @champion."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from churnops.tracking.registry import PromotionConflict, plan_rollback, promote_version, rollback_champion

    first, second = promoted
    plan = plan_rollback(REGISTRY)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(np.array([[0.0], [1.0]]), np.array([0, 1])),
            name="model",
            serialization_format="cloudpickle",
        )
    third, _ = register_version(info.model_uri, run.info.run_id, REGISTRY, {})
    promote_version(REGISTRY, third, expected_champion=second, tags={})

    recorded = []
    with pytest.raises(PromotionConflict, match="not the planned 2 and 1"):
        rollback_champion(REGISTRY, plan, {"churnops.decision": "rolled_back"}, recorded.append)
    assert champions() == (third, second), "a conflicting rollback moved an alias"
    assert recorded == [], "a conflicting rollback recorded itself"
    from churnops.tracking.registry import version_tags

    assert all("churnops.decision" not in version_tags(REGISTRY, v) for v in (first, second, third))


def test_nothing_to_roll_back_to_is_refused_when_planning(promoted):
    from churnops.tracking.registry import _client, plan_rollback

    first, _ = promoted
    _client().set_registered_model_alias(REGISTRY.model_name, "champion", first)  # a half-done swap, seen afresh
    with pytest.raises(ValueError, match="both version 1"):
        plan_rollback(REGISTRY)
    _client().delete_registered_model_alias(REGISTRY.model_name, "previous_champion")
    with pytest.raises(ValueError, match="no @previous_champion"):
        plan_rollback(REGISTRY)


# --- the promotion lock waits with a deadline ---------------------------------------------------------------------


def test_the_promotion_lock_gives_up_after_its_deadline_with_a_retryable_error(churnops_home):
    """Another process holds the lock and hangs: the waiter fails after ``lock_timeout_seconds``,
    naming the lock file and the wait, and takes the lock once the holder is gone."""
    import os
    import subprocess
    import sys
    import threading
    import time

    from churnops.errors import ChurnopsInputError
    from churnops.tracking.locks import PromotionLockTimeout, promotion_lock, promotion_lock_path

    registry = RegistryConfig(model_name="unit-test-model", lock_timeout_seconds=0.5)
    path = promotion_lock_path(registry)
    path.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(120)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        outcome: list[BaseException | str] = []

        def wait_for_the_lock() -> None:  # a thread, so that a wait without a deadline fails the test, not hangs it
            try:
                with promotion_lock(registry):
                    outcome.append("acquired")
            except BaseException as exc:
                outcome.append(exc)

        started = time.monotonic()
        waiter = threading.Thread(target=wait_for_the_lock, daemon=True)
        waiter.start()
        waiter.join(10)
        assert outcome, "the promotion lock waited past its deadline"
        (error,) = outcome
        assert isinstance(error, PromotionLockTimeout), error
        assert not isinstance(error, ChurnopsInputError), "a busy lock is not bad input: Airflow must retry"
        assert str(path) in str(error) and "0.5 s" in str(error)
        assert 0.5 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with promotion_lock(registry):  # the holder died: its lock went with it
        assert path.read_text().split()[0] == str(os.getpid())


def test_every_champion_move_is_logged_once_with_its_day_even_when_a_retry_finishes_it(registered):
    """A promotion, its retry (which finds the move done) and a rollback: two lines in the move log."""
    from churnops.tracking import champion_moves_path, read_champion_moves
    from churnops.tracking.registry import plan_rollback, promote_version, rollback_champion

    first, second = registered
    assert read_champion_moves(REGISTRY) == [], "registering and the first @champion are not moves"
    promotion = {"churnops.decision": "promoted", "churnops.decision_as_of": "2026-03-02"}
    promotion["churnops.decision_run"] = "r1"
    promote_version(REGISTRY, second, expected_champion=first, tags=promotion)
    assert promote_version(REGISTRY, second, expected_champion=first, tags=promotion)["resumed"]
    rollback = {"churnops.decision": "rolled_back", "churnops.decision_as_of": "2026-03-04"}
    rollback_champion(REGISTRY, plan_rollback(REGISTRY), rollback)

    assert read_champion_moves(REGISTRY) == [
        {"date": "2026-03-02", "from": first, "to": second, "decision": "promoted", "run_id": "r1"},
        {"date": "2026-03-04", "from": second, "to": first, "decision": "rolled_back", "run_id": ""},
    ]
    with open(champion_moves_path(REGISTRY), "a") as log:  # a line cut short by a crash is skipped
        log.write('{"date": "2026-03-0')
    assert [m["decision"] for m in read_champion_moves(REGISTRY)] == ["promoted", "rolled_back"]
