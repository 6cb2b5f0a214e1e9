"""Model registry: idempotent registration and alias assignment.

Stages are deprecated in MLflow 3; churnops uses aliases only. Training never
replaces a champion: a new version becomes ``@champion`` only when there is none,
otherwise ``@challenger`` (promotion is the retraining DAG's decision).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from churnops.config import RegistryConfig
from churnops.faults import crash_point
from churnops.tracking.locks import promotion_lock
from churnops.tracking.moves import record_champion_move

__all__ = [
    "PromotionConflict",
    "Record",
    "alias_version",
    "assign_training_alias",
    "last_decision",
    "model_aliases",
    "plan_rollback",
    "promote_version",
    "register_version",
    "rollback_champion",
    "version_tags",
]


def _client() -> Any:
    from mlflow import MlflowClient

    from churnops.tracking.runs import use_tracking_store

    use_tracking_store()
    return MlflowClient()


def register_version(
    model_uri: str, source_run_id: str, registry: RegistryConfig, tags: dict[str, str]
) -> tuple[str, bool]:
    """Register ``model_uri`` as a version of ``registry.model_name`` once per source run.

    A retried register task finds the version it created before (by the source run id)
    instead of adding a second one.

    Args:
        model_uri: the logged model (``models:/…`` or ``runs:/…``).
        source_run_id: the run that logged it: one version per run.
        registry: the registered model's name.
        tags: set on the version (again, on a retry).

    Returns:
        The version number (as str) and whether this call created it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client()
    name = registry.model_name
    try:
        client.create_registered_model(name, description="Binary classifier trained by churnops.")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{source_run_id}'")
    if existing:
        version, created = str(existing[0].version), False
    else:
        version, created = str(mlflow.register_model(model_uri, name, tags=tags).version), True
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version, created


def alias_version(registry: RegistryConfig, alias: str) -> str | None:
    """The version an alias points at, or None.

    Args:
        registry: the registered model's name.
        alias: the alias, without ``@``.

    Returns:
        The version number as str, or None when the alias (or the model) does not exist.
    """
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(registry.model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise


def assign_training_alias(registry: RegistryConfig, version: str) -> str:
    """``@champion`` if the model has none (or it is this version), else ``@challenger``.

    Args:
        registry: the model's name and alias names.
        version: the newly trained version.

    Returns:
        The alias set on ``version``.
    """
    champion = alias_version(registry, registry.champion_alias)
    alias = registry.champion_alias if champion in (None, version) else registry.challenger_alias
    _client().set_registered_model_alias(registry.model_name, alias, version)
    return alias


def model_aliases(registry: RegistryConfig, version: str) -> list[str]:
    """All aliases currently on ``version``.

    Args:
        registry: the registered model's name.
        version: the version.

    Returns:
        The aliases, sorted.
    """
    return sorted(_client().get_model_version(registry.model_name, version).aliases)


class PromotionConflict(RuntimeError):
    """``@champion`` moved between the plan and the move: another promotion or rollback won the race."""


Record = Callable[[dict[str, Any]], None]
"""Writes the record of an alias move (the promotion state); called while the lock is held."""


def promote_version(
    registry: RegistryConfig,
    challenger: str,
    expected_champion: str | None,
    tags: dict[str, str],
    record: Record | None = None,
) -> dict[str, Any]:
    """Move ``@champion`` to ``challenger`` and ``@previous_champion`` to the old champion.

    Under :func:`promotion_lock`, re-checks that ``@champion`` is still the version that was
    evaluated right before moving it, so of two racing promotions exactly one wins, and writes
    the move's record before releasing the lock, so no other move can come between the two.

    Args:
        registry: the model's name and alias names.
        challenger: the version to promote.
        expected_champion: the ``@champion`` it was evaluated against (None: there was none).
        tags: set on the challenger and on the old champion (if any).
        record: called with the result once the aliases and tags are set, still under the lock.

    Returns:
        ``{"champion", "previous_champion", "resumed"}``; ``resumed`` is True when a retry
        found its own earlier move done and only finished it.

    Raises:
        PromotionConflict: ``@champion`` is no longer ``expected_champion``.
        PromotionLockTimeout: another move held the lock too long.
    """
    with promotion_lock(registry):
        moved = _promote(registry, challenger, expected_champion, tags)
        record_champion_move(registry, moved, tags)
        if record is not None:
            record(moved)
        return moved


def _promote(
    registry: RegistryConfig, challenger: str, expected_champion: str | None, tags: dict[str, str]
) -> dict[str, Any]:
    client = _client()
    name = registry.model_name
    current = alias_version(registry, registry.champion_alias)
    previous = alias_version(registry, registry.previous_champion_alias)
    # A retry of a promotion that was killed after moving @champion (before tagging, dropping
    # @challenger or recording the state) finds its own move done: it finishes the job instead of
    # calling its own earlier attempt a rival, so the state ends up recording the promotion.
    resumed = current == challenger and previous == expected_champion and current is not None
    if current != expected_champion and not resumed:
        raise PromotionConflict(
            f"@{registry.champion_alias} of {name} is version {current}, not the evaluated {expected_champion}; "
            "another promotion happened meanwhile, so this one is abandoned"
        )
    if expected_champion is not None and not resumed:
        client.set_registered_model_alias(name, registry.previous_champion_alias, expected_champion)
    if not resumed:
        client.set_registered_model_alias(name, registry.champion_alias, challenger)
    crash_point("promote:after_aliases")  # the fault tests' SIGKILL: aliases moved, no tags nor record yet
    if alias_version(registry, registry.challenger_alias) == challenger:
        client.delete_registered_model_alias(name, registry.challenger_alias)
    for version in filter(None, {challenger, expected_champion}):
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    return {"champion": challenger, "previous_champion": expected_champion, "resumed": resumed}


def plan_rollback(registry: RegistryConfig) -> dict[str, str | None]:
    """The rollback to do now: ``@champion`` back to ``@previous_champion``.

    A plan is made once and handed to :func:`rollback_champion` (by the rollback DAG through
    XCom), so that a retried rollback carries out the same plan instead of planning again from
    the swapped aliases and swapping them back.

    Args:
        registry: the model's name and alias names.

    Returns:
        ``{"champion": the current @champion (or None), "rollback_to": the @previous_champion}``.

    Raises:
        ValueError: there is no ``@previous_champion``, or it is the ``@champion`` already.
    """
    name = registry.model_name
    current = alias_version(registry, registry.champion_alias)
    previous = alias_version(registry, registry.previous_champion_alias)
    if previous is None:
        raise ValueError(f"{name} has no @{registry.previous_champion_alias} to roll back to")
    if previous == current:
        raise ValueError(
            f"@{registry.champion_alias} and @{registry.previous_champion_alias} of {name} are both version "
            f"{current}: nothing to roll back to"
        )
    return {"champion": current, "rollback_to": previous}


def rollback_champion(
    registry: RegistryConfig, plan: dict[str, str | None], tags: dict[str, str], record: Record | None = None
) -> dict[str, Any]:
    """Carry out a :func:`plan_rollback` plan: swap ``@champion`` and ``@previous_champion``, by compare-and-set.

    Under :func:`promotion_lock`, the swap is made only if the registry still shows the planned
    pair. A retry that finds the plan's own move done (both aliases moved, or only ``@champion``
    when the first attempt died between the two) finishes it; any other pair means a rival
    promotion or rollback came first, and nothing is changed. The record is written before the
    lock is released.

    Args:
        registry: the model's name and alias names.
        plan: ``{"champion", "rollback_to"}`` from :func:`plan_rollback`.
        tags: set on both versions (the new ``@champion`` and, if any, the one it replaces).
        record: called with the result once the aliases and tags are set, still under the lock.

    Returns:
        ``{"champion", "previous_champion", "resumed"}`` after the swap; ``resumed`` is True
        when a retry found its own earlier move done and only finished it.

    Raises:
        PromotionConflict: the registry no longer shows the planned pair.
        PromotionLockTimeout: another move held the lock too long.
    """
    with promotion_lock(registry):
        moved = _rollback(registry, plan["champion"], str(plan["rollback_to"]), tags)
        record_champion_move(registry, moved, tags)
        if record is not None:
            record(moved)
        return moved


def _rollback(registry: RegistryConfig, demoted: str | None, target: str, tags: dict[str, str]) -> dict[str, Any]:
    client = _client()
    name = registry.model_name
    current = alias_version(registry, registry.champion_alias)
    previous = alias_version(registry, registry.previous_champion_alias)
    # @champion moves first: a retry finding it on the target is this plan's own move, whole
    # (@previous_champion on the demoted version) or cut short (still on the target).
    resumed = current == target and previous in {demoted, target}
    if (current, previous) != (demoted, target) and not resumed:
        raise PromotionConflict(
            f"@{registry.champion_alias} of {name} is version {current} and @{registry.previous_champion_alias} "
            f"{previous}, not the planned {demoted} and {target}; another promotion or rollback happened "
            "meanwhile, so this rollback is abandoned and nothing was changed"
        )
    if current != target:
        client.set_registered_model_alias(name, registry.champion_alias, target)
    if previous != demoted:
        if demoted is None:  # there was no champion: nothing to go back to after this
            client.delete_registered_model_alias(name, registry.previous_champion_alias)
        else:
            client.set_registered_model_alias(name, registry.previous_champion_alias, demoted)
    crash_point("rollback:after_aliases")  # the fault tests' SIGKILL: aliases swapped, no tags nor record yet
    for version in filter(None, {target, demoted}):
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    return {"champion": target, "previous_champion": demoted, "resumed": resumed}


def version_tags(registry: RegistryConfig, version: str) -> dict[str, str]:
    """The tags of one version of the registered model.

    Args:
        registry: the registered model's name.
        version: the version.

    Returns:
        The tags by name.
    """
    return dict(_client().get_model_version(registry.model_name, version).tags)


def last_decision(registry: RegistryConfig) -> dict[str, Any] | None:
    """The newest promote-or-reject decision recorded on a version (its ``churnops.decision*`` tags).

    Returns:
        ``{"version", "decision", "reason", "as_of", "gain"}`` of the newest decision (by as-of
        date, then version), or None when no version has one.
    """
    versions = _client().search_model_versions(f"name = '{registry.model_name}'")
    decided = [v for v in versions if "churnops.decision" in v.tags]
    if not decided:
        return None
    newest = max(decided, key=lambda v: (v.tags.get("churnops.decision_as_of", ""), int(v.version)))
    tags = newest.tags
    gain = tags.get("churnops.gain")
    return {
        "version": str(newest.version),
        "decision": tags["churnops.decision"],
        "reason": tags.get("churnops.decision_reason", ""),
        "as_of": tags.get("churnops.decision_as_of"),
        "gain": float(gain) if gain else None,
    }
