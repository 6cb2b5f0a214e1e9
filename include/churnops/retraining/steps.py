"""The retraining run: the cooldown gate, the whole run in one process, and the rollback.

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
    "record_skip",
    "rollback_and_record",
    "rollback_plan",
    "run_retraining",
]


def check_cooldown(config: ChurnopsConfig, as_of: date | str, state: PromotionState, force: bool) -> dict[str, Any]:
    """Whether this run may go on: outside the cooldown, or forced (recorded as such).

    Args:
        config: ``policy.cooldown_days`` (unless the state stores its own).
        as_of: the run's as-of day (a date or ``YYYY-MM-DD``).
        state: the last promotion and the cooldown's length.
        force: go on even inside the cooldown.

    Returns:
        ``{"proceed", "forced" (forced through an active cooldown), "reason", "as_of",
        "last_promotion", "cooldown_until"}``.
    """
    as_of = parse_day(as_of)

    last = state.last_promotion()
    last_day = date.fromisoformat(last["date"]) if last else None
    status = cooldown_status(as_of, last_day, state.cooldown_days(config.policy.cooldown_days))
    proceed = force or not status.active
    reason = status.reason() + ("; overridden by force" if force and status.active else "")
    return {
        "proceed": proceed,
        "forced": bool(force and status.active),
        "reason": reason,
        "as_of": as_of.isoformat(),
        "last_promotion": last,
        "cooldown_until": str(status.until or ""),
    }


def record_skip(config: ChurnopsConfig, ctx: RunContext, gate: dict[str, Any]) -> str:
    """Make a run stopped by the cooldown visible in MLflow: a finished parent run saying why.

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

    Args:
        config_path: the config file (None: the default one).
        as_of: the run's as-of day (a date or ``YYYY-MM-DD``).
        state: the last promotion and the cooldown's length.
        force: go on even inside the cooldown.
        families: families to train instead of the config's.
        run_id: the run's id (default: ``retrain__<as_of>``, so a rerun resumes it).

    Returns:
        ``{"decision": "skipped", "reason", "as_of"}`` inside the cooldown, else the decision
        (:func:`record_decision`) with the comparison's ROC-AUCs, gain, CI and versions.
    """
    as_of = parse_day(as_of)

    config = load_config(config_path)
    gate = check_cooldown(config, as_of, state, force)
    ctx = RunContext("cli-retrain", run_id or f"retrain__{as_of.isoformat()}", as_of.isoformat())
    if not gate["proceed"]:
        record_skip(config, ctx, gate)
        return {"decision": "skipped", "reason": gate["reason"], "as_of": as_of.isoformat()}
    started = training.start_run(ctx, config_path, families)
    prepared = add_recent_days(training.merge(training.validate_sources(started)), as_of)
    prepared = training.build_features(training.preprocess(prepared))
    trained = [training.train_family(prepared, family) for family in started["families"]]
    registered = training.register_chosen(training.evaluate_candidates(trained))
    comparison = _compared_once(registered, prepared["evaluation"], started["run"])
    context = {"run_id": ctx.run_id, "dag_id": ctx.dag_id, "parent_run_id": registered["parent_run_id"]}
    outcome = record_decision(config, comparison, as_of, state, context, forced=gate["forced"])
    return {
        "as_of": as_of.isoformat(),
        "forced": gate["forced"],
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
