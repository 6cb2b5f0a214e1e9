"""The retraining run: the cooldown gate (after a promotion, after a retraining attempt), the
whole run in one process, and the rollback.

Training itself reuses :mod:`churnops.training` step for step; what is specific to retraining
lives beside this module: the training and evaluation windows (:mod:`~churnops.retraining.windows`)
and the head-to-head with its promotion decision (:mod:`~churnops.retraining.decision`). Every
date rule uses the run's as-of date, never the wall clock.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from churnops import training
from churnops.config import ChurnopsConfig, load_config
from churnops.days import parse_day
from churnops.errors import ChurnopsInputError
from churnops.retraining.decision import compare_on_fresh_window, record_decision
from churnops.retraining.policy import cooldown_status
from churnops.retraining.state import PromotionState
from churnops.retraining.windows import add_recent_days
from churnops.tracking import (
    PromotionConflict,
    RunContext,
    configure_mlflow,
    get_or_create_parent_run,
    plan_rollback,
    rollback_champion,
)

__all__ = [
    "check_cooldown",
    "record_attempt",
    "record_skip",
    "rollback_and_record",
    "rollback_plan",
    "run_retraining",
]


def check_cooldown(
    config: ChurnopsConfig, as_of: date | str, state: PromotionState, force: bool, run_id: str | None = None
) -> dict[str, Any]:
    """Whether this run may go on: outside both cooldowns, or forced (recorded as such).

    Two cooldowns stop a run: ``promotion`` (``cooldown_days`` after the last promotion or
    rollback) and ``retraining`` (``policy.retraining_cooldown_days`` after the last retraining
    attempt, promoted or not). Both count from as-of days: recorded on day L with N days, days
    L … L+N-1 are blocked and L+N is free. The last attempt recorded by this very run (``run_id``)
    does not block it, so a rerun of a run that already trained goes on.

    Args:
        config: ``policy.cooldown_days`` (unless the state stores its own) and
            ``policy.retraining_cooldown_days``.
        as_of: the run's as-of day (a date or ``YYYY-MM-DD``).
        state: the last promotion, the last retraining attempt and the promotion cooldown's length.
        force: go on even inside either cooldown.
        run_id: this run's id (None: every recorded attempt counts).

    Returns:
        ``{"proceed", "forced" (forced through an active cooldown), "reason", "as_of",
        "last_promotion", "last_retraining", "cooldown" (the cooldown in effect, ``"promotion"``
        or ``"retraining"``, forced through or not; None outside both), "cooldown_until"}``. When
        both are in effect the one lasting longer is named (a tie names ``promotion``).
    """
    as_of = parse_day(as_of)

    last = state.last_promotion()
    retrained = state.last_retraining()
    own = bool(retrained and run_id and retrained.get("run_id") == run_id)
    statuses = {
        "promotion": (
            cooldown_status(as_of, _day_of(last), state.cooldown_days(config.policy.cooldown_days)),
            "promotion",
        ),
        "retraining": (
            cooldown_status(as_of, None if own else _day_of(retrained), config.policy.retraining_cooldown_days),
            "retraining attempt",
        ),
    }
    active = [name for name, (status, _) in statuses.items() if status.active]
    # The one that ends last is what keeps the run waiting (max keeps the first on a tie).
    cooldown = max(active, key=lambda name: statuses[name][0].days_left) if active else None
    status, after = statuses[cooldown or "promotion"]
    reason = status.reason(after)
    if force and cooldown:
        reason += "; overridden by force"
    if own and retrained is not None and not cooldown:
        reason += f" (the last retraining attempt, on {retrained['date']}, is this run's own)"
    return {
        "proceed": force or not cooldown,
        "forced": bool(force and cooldown),
        "reason": reason,
        "as_of": as_of.isoformat(),
        "last_promotion": last,
        "last_retraining": retrained,
        "cooldown": cooldown,
        "cooldown_until": str(status.until or ""),
    }


def _day_of(record: dict[str, Any] | None) -> date | None:
    """The as-of day of a recorded promotion or retraining attempt, or None without one."""
    return date.fromisoformat(record["date"]) if record else None


def record_attempt(
    state: PromotionState, as_of: date | str, context: dict[str, Any], version: str, forced: bool = False
) -> dict[str, Any]:
    """Record a retraining attempt (a challenger trained and registered): it starts the retraining cooldown.

    Called once the challenger is registered, before it is compared, so an attempt counts
    whatever its outcome. Retries and reruns of the same run write the same entry (nothing
    changes); an attempt on an earlier as-of day than the one recorded (an old day replayed)
    leaves the later one in place, so the cooldown never moves back.

    Args:
        state: where the last attempt is kept.
        as_of: the run's as-of day (the attempt's date).
        context: the run (``run_id``, ``dag_id``).
        version: the challenger's registered version.
        forced: the run was forced (``force``).

    Returns:
        The last retraining attempt as it now stands.
    """
    entry = {
        "date": parse_day(as_of).isoformat(),
        "run_id": context.get("run_id", ""),
        "dag_id": context.get("dag_id", ""),
        "version": str(version),
        "forced": bool(forced),
    }
    last = state.last_retraining()
    if last is not None and (last == entry or last.get("date", "") > entry["date"]):
        return last
    state.record_retraining(entry)
    return entry


def record_skip(config: ChurnopsConfig, ctx: RunContext, gate: dict[str, Any]) -> str:
    """Make a run stopped by a cooldown visible in MLflow: a finished parent run saying why and which.

    Args:
        config: names the experiment.
        ctx: the pipeline run.
        gate: :func:`check_cooldown`'s result.

    Returns:
        The parent run's id.
    """
    from mlflow import MlflowClient

    experiment_id = configure_mlflow(config)
    parent = get_or_create_parent_run(experiment_id, ctx, name=f"{ctx.dag_id} {ctx.logical_date or ctx.run_id}")
    client = MlflowClient()
    client.set_tag(parent, "churnops.decision", "skipped")
    client.set_tag(parent, "churnops.decision_reason", gate["reason"])
    client.set_tag(parent, "churnops.cooldown", gate.get("cooldown") or "")
    client.set_terminated(parent, "FINISHED")
    return parent


def run_retraining(
    config_path: str | None,
    as_of: date | str,
    state: PromotionState,
    force: bool = False,
    families: list[str] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """All retraining steps in one process: what ``churnops retrain`` runs.

    The attempt is recorded (:func:`record_attempt`) once the challenger is registered.

    Args:
        config_path: the config file (None: the default one).
        as_of: the run's as-of day (a date or ``YYYY-MM-DD``).
        state: the last promotion and retraining attempt, and the promotion cooldown's length.
        force: go on even inside either cooldown.
        families: families to train instead of the config's.
        run_id: the run's id (default: ``retrain__<as_of>``, so a rerun resumes it).

    Returns:
        ``{"decision": "skipped", "cooldown" ("promotion" or "retraining"), "reason", "as_of",
        "cooldown_until"}`` inside a cooldown, else the decision (:func:`record_decision`) with
        the comparison's ROC-AUCs, gain, CI and versions, ``forced`` and ``cooldown``.
    """
    as_of = parse_day(as_of)

    config = load_config(config_path)
    ctx = RunContext("cli-retrain", run_id or f"retrain__{as_of.isoformat()}", as_of.isoformat())
    gate = check_cooldown(config, as_of, state, force, ctx.run_id)
    if not gate["proceed"]:
        record_skip(config, ctx, gate)
        return {
            "decision": "skipped",
            "cooldown": gate["cooldown"],
            "reason": gate["reason"],
            "as_of": as_of.isoformat(),
            "cooldown_until": gate["cooldown_until"],
        }
    started = training.start_run(ctx, config_path, families)
    prepared = add_recent_days(training.merge(training.validate_sources(started)), as_of)
    prepared = training.build_features(training.preprocess(prepared))
    trained = [training.train_family(prepared, family) for family in started["families"]]
    registered = training.register_chosen(training.evaluate_candidates(trained))
    context = {"run_id": ctx.run_id, "dag_id": ctx.dag_id, "parent_run_id": registered["parent_run_id"]}
    record_attempt(state, as_of, context, registered["model_version"], forced=force)
    comparison = _compared_once(registered, prepared["evaluation"], started["run"])
    outcome = record_decision(config, comparison, as_of, state, context, forced=gate["forced"])
    return {
        "as_of": as_of.isoformat(),
        "forced": gate["forced"],
        "cooldown": gate["cooldown"],
        **outcome,
        **{
            k: comparison[k]
            for k in ("gain", "champion_roc_auc", "challenger_roc_auc", "ci", "champion_version", "challenger_version")
        },
    }


def rollback_plan(config: ChurnopsConfig) -> dict[str, str | None]:
    """The rollback to do now (:func:`churnops.tracking.plan_rollback`), made once and carried out by
    :func:`rollback_and_record`, on every retry the same.

    Args:
        config: the registered model.

    Returns:
        ``{"champion", "rollback_to"}``.

    Raises:
        ChurnopsInputError: there is no ``@previous_champion`` to roll back to.
    """
    configure_mlflow(config)
    try:
        return plan_rollback(config.registry)
    except ValueError as exc:
        raise ChurnopsInputError(str(exc)) from exc


def _compared_once(registered: dict[str, Any], evaluation: str, run: dict[str, Any]) -> dict[str, Any]:
    """The run's comparison, made once: a rerun of the same run reuses the one it saved.

    A promotion killed after moving the aliases leaves its challenger as ``@champion``; compared
    again, it would read as "already the champion" and the rerun would never record the promotion.
    The saved comparison (as the DAG's XCom keeps it for a retried ``promote``) names the champion
    it was evaluated against, so the promotion resumes and is recorded.
    """
    import json
    from pathlib import Path

    from churnops.data import write_json

    saved = Path(run["run_dir"]) / "comparison.json"
    try:
        comparison = json.loads(saved.read_text())
        if isinstance(comparison, dict) and comparison.get("challenger_version") == registered["model_version"]:
            return comparison
    except (OSError, ValueError):
        pass  # none saved yet, or not whole: compare
    comparison = compare_on_fresh_window(registered, evaluation, run["config_path"])
    write_json(saved, comparison)
    return comparison


def rollback_and_record(
    config: ChurnopsConfig,
    state: PromotionState,
    context: dict[str, Any],
    reason: str,
    plan: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Move ``@champion`` back to ``@previous_champion``, tag both and record it as the last promotion.

    The move is a compare-and-set on the planned pair, and the record is written under the
    promotion lock with it (:func:`churnops.tracking.rollback_champion`): a retry with the same
    plan finishes its own move instead of swapping the aliases back.

    Args:
        config: the registered model.
        state: where the rollback is recorded.
        context: the run (``dag_id``, ``run_id`` and ``logical_date``, whose day is the rollback's date).
        reason: why, recorded on both versions and in the state.
        plan: :func:`rollback_plan`'s plan (None: plan it now).

    Returns:
        ``{"champion", "previous_champion", "resumed"}`` after the swap.

    Raises:
        ChurnopsInputError: there is no ``@previous_champion`` to roll back to, or the registry no
            longer shows the planned pair (another promotion or rollback came first; nothing changed).
    """
    if plan is None:
        plan = rollback_plan(config)  # configures MLflow too
    else:
        configure_mlflow(config)
    day = (context.get("logical_date") or "")[:10]
    tags = {
        "churnops.decision": "rolled_back",
        "churnops.decision_reason": reason[:4000],
        "churnops.decision_run": context.get("run_id", ""),
        "churnops.decision_as_of": day,
    }

    def record(moved: dict[str, Any]) -> None:  # under the promotion lock, right after the move
        state.record_promotion(
            {
                "date": day,
                "version": moved["champion"],
                "previous_version": moved["previous_champion"],
                "run_id": context.get("run_id", ""),
                "dag_id": context.get("dag_id", ""),
                "rolled_back": True,
                "reason": reason,
            }
        )

    try:
        return rollback_champion(config.registry, plan, tags, record)
    except PromotionConflict as exc:  # a retry cannot help: the plan is stale, a new rollback must be planned
        raise ChurnopsInputError(str(exc)) from exc
