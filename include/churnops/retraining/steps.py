"""The retraining-specific steps of ``churn_retraining`` (and ``churnops retrain``).

Training itself reuses :mod:`churnops.training.steps` step for step; this module adds what
is specific to retraining: the cooldown check, the training window, the head-to-head
comparison on a fresh labelled window, and the promotion decision. Every date rule
uses the run's as-of date, never the wall clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from churnops import training
from churnops.config import ChurnopsConfig, load_config
from churnops.data import label_vector
from churnops.days import parse_day, trailing_days
from churnops.errors import ChurnopsInputError
from churnops.faults import crash_point
from churnops.monitoring import accepted_files, champion_version, load_model, positive_scores, read_files
from churnops.retraining.policy import cooldown_status, decide_promotion, paired_bootstrap_gain
from churnops.retraining.state import PromotionState
from churnops.tracking import (
    PromotionConflict,
    RunContext,
    alias_version,
    configure_mlflow,
    get_or_create_parent_run,
    promote_version,
    rollback_champion,
    version_tags,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "add_recent_days",
    "apply_decision",
    "check_cooldown",
    "compare_on_fresh_window",
    "decision_tags",
    "evaluation_days",
    "log_decision",
    "record_decision",
    "record_skip",
    "rollback_and_record",
    "run_retraining",
    "training_days",
    "training_window",
]


def evaluation_days(config: ChurnopsConfig, as_of: date) -> list[date]:
    """The most recent matured label days: the window both models are scored on.

    Args:
        config: ``monitoring.label_delay_days`` and ``policy.eval_window_days``.
        as_of: the run's as-of day.

    Returns:
        ``eval_window_days`` days, oldest first, the last one ``label_delay_days`` before ``as_of``.
    """
    return trailing_days(as_of - timedelta(days=config.monitoring.label_delay_days), config.policy.eval_window_days)


def training_days(config: ChurnopsConfig, as_of: date) -> list[date]:
    """Matured labelled days before the evaluation window, added to the original training data.

    Args:
        config: the evaluation window's settings and ``policy.train_window_days``.
        as_of: the run's as-of day.

    Returns:
        ``train_window_days`` days, oldest first, ending the day before the evaluation window.
    """
    first_eval = evaluation_days(config, as_of)[0]
    return trailing_days(first_eval - timedelta(days=1), config.policy.train_window_days)


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


def _labelled_days(config: ChurnopsConfig, days: list[date]) -> pd.DataFrame:
    """Batch rows joined to their labels over ``days`` (days missing either side are skipped).

    Only files that pass validation are used (a rejected batch or label file is quarantined
    and left out: a wrong label never trains or judges a model).
    """
    import pandas as pd

    ds = config.dataset
    parts = []
    for day in days:
        batch = read_files(config, accepted_files(config, "incoming", day)[0])
        labels = read_files(config, accepted_files(config, "labels", day)[0])
        if batch.empty or labels.empty:
            continue
        parts.append(
            batch[[ds.id_column, *ds.feature_columns]].merge(labels[[ds.id_column, ds.target]], on=ds.id_column)
        )
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=[ds.id_column, *ds.feature_columns, ds.target])
    )


def training_window(original: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """The original training rows followed by the recent labelled ones (in ``original``'s columns).

    With no recent rows the original rows come back as they are: concatenating an empty frame
    would leave the result's types to a pandas rule that is changing (a FutureWarning today).

    Args:
        original: the merged original training rows.
        recent: labelled rows of the training window's days (they have every column of ``original``).

    Returns:
        The rows, indexed from 0.
    """
    import pandas as pd

    if recent.empty:
        return original.reset_index(drop=True)
    return pd.concat([original, recent[original.columns]], ignore_index=True)


def add_recent_days(previous: dict[str, Any], as_of: date | str) -> dict[str, Any]:
    """Append the matured labelled days of the training window to the merged original data.

    Also writes the evaluation window (later days, never trained on) for the comparison.

    Args:
        previous: the training pipeline's ``merge`` result.
        as_of: the run's as-of day (a date or ``YYYY-MM-DD``).

    Returns:
        ``previous`` with ``merged`` and ``rows_merged`` of the training window, plus
        ``evaluation`` (its Parquet path) and ``as_of``.

    Raises:
        ValueError: the evaluation window has no labelled rows.
    """
    as_of = parse_day(as_of)
    import mlflow
    import pandas as pd

    with training.training_step(previous, "add_recent_days") as (run, config, run_dir):
        original = pd.read_parquet(previous["merged"])
        recent = _labelled_days(config, training_days(config, as_of))
        fresh = _labelled_days(config, evaluation_days(config, as_of))
        if fresh.empty:
            raise ValueError(
                f"no labelled data in the evaluation window {evaluation_days(config, as_of)[0]} … "
                f"{evaluation_days(config, as_of)[-1]}: cannot compare models"
            )
        combined = training_window(original, recent)
        merged_path = run_dir / "training_window.parquet"
        combined.to_parquet(merged_path, index=False)
        eval_path = run_dir / "evaluation_window.parquet"
        fresh.to_parquet(eval_path, index=False)
        mlflow.log_metrics({"rows_original": len(original), "rows_recent": len(recent), "rows_evaluation": len(fresh)})
        mlflow.set_tags({"churnops.as_of": as_of.isoformat()})
        return {
            **previous,
            "merged": str(merged_path),
            "rows_merged": len(combined),
            "evaluation": str(eval_path),
            "as_of": as_of.isoformat(),
        }


def compare_on_fresh_window(registered: dict[str, Any], evaluation_path: str, config_path: str) -> dict[str, Any]:
    """Score champion and challenger on the same fresh labelled window; decide by the policy.

    Args:
        registered: the training pipeline's ``register_chosen`` result (the challenger's version).
        evaluation_path: the evaluation window (:func:`add_recent_days`).
        config_path: the run's frozen config.

    Returns:
        The decision (:class:`~churnops.retraining.policy.PromotionDecision`'s fields) plus
        ``ci``, ``champion_version``, ``challenger_version`` and ``rows_evaluation``.
    """
    import pandas as pd

    config = load_config(config_path)
    champion = champion_version(config)
    challenger = registered["model_version"]
    window = pd.read_parquet(evaluation_path)
    y = label_vector(window, config)
    scores = {v: positive_scores(load_model(config, v), window, config) for v in {champion, challenger}}
    from sklearn.metrics import roc_auc_score

    champion_auc = float(roc_auc_score(y, scores[champion]))
    challenger_auc = float(roc_auc_score(y, scores[challenger]))
    ci = None
    if config.policy.bootstrap_samples:
        ci = paired_bootstrap_gain(
            y, scores[champion], scores[challenger], config.policy.bootstrap_samples, seed=config.training.seed
        )
    if challenger == champion:
        decision = {
            "promote": False,
            "gain": 0.0,
            "reason": "the challenger is already the champion",
            "champion_roc_auc": champion_auc,
            "challenger_roc_auc": challenger_auc,
        }
    else:
        decision = decide_promotion(champion_auc, challenger_auc, config.policy, ci).to_dict()
    return {
        **decision,
        "ci": ci,
        "champion_version": champion,
        "challenger_version": challenger,
        "rows_evaluation": len(window),
    }


def decision_tags(comparison: dict[str, Any], as_of: date, context: dict[str, str]) -> dict[str, str]:
    """The tags that record a comparison's decision on the challenger (or the champions) and the run.

    Args:
        comparison: :func:`compare_on_fresh_window`'s result.
        as_of: the run's as-of day.
        context: the run (its ``run_id``).

    Returns:
        The ``churnops.decision*``, ``churnops.gain`` (and ``churnops.gain_ci``) tags.
    """
    tags = {
        "churnops.decision": "promoted" if comparison["promote"] else "rejected",
        "churnops.decision_reason": comparison["reason"][:4000],
        "churnops.gain": f"{comparison['gain']:.6f}",
        "churnops.decision_as_of": as_of.isoformat(),
        "churnops.decision_run": context.get("run_id", ""),
    }
    if comparison.get("ci"):
        tags["churnops.gain_ci"] = f"[{comparison['ci']['low']:.6f}, {comparison['ci']['high']:.6f}]"
    return tags


def apply_decision(
    config: ChurnopsConfig,
    comparison: dict[str, Any],
    tags: dict[str, str],
    as_of: date,
    state: PromotionState,
    context: dict[str, str],
    forced: bool = False,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Promote (under the registry's promotion lock, re-checked there) and record it in the state, or tag the
    rejected challenger.

    A promotion that loses a race (``@champion`` moved since the evaluation) becomes the
    decision ``conflict`` with the reason, tagged on the challenger; nothing else changes.

    Args:
        config: the registered model.
        comparison: :func:`compare_on_fresh_window`'s result.
        tags: :func:`decision_tags`' tags.
        as_of: the run's as-of day (the promotion's date in the state).
        state: where a promotion is recorded.
        context: the run (``run_id``, ``dag_id``).
        forced: the run went through an active cooldown (recorded with the promotion).

    Returns:
        The comparison and the tags as they stand after the attempt (``promote`` False on a conflict).
    """
    from mlflow import MlflowClient

    registry = config.registry
    if comparison["promote"]:
        try:
            promote_version(registry, comparison["challenger_version"], comparison["champion_version"], tags)
        except PromotionConflict as exc:  # another promotion won the race: record why this one did not
            tags = {**tags, "churnops.decision": "conflict", "churnops.decision_reason": str(exc)[:4000]}
            comparison = {**comparison, "promote": False, "reason": str(exc)}
        else:
            crash_point("promote:after_aliases")  # the fault tests' SIGKILL: aliases moved, state not yet
            state.record_promotion(
                {
                    "date": as_of.isoformat(),
                    "version": comparison["challenger_version"],
                    "previous_version": comparison["champion_version"],
                    "run_id": context.get("run_id", ""),
                    "dag_id": context.get("dag_id", ""),
                    "forced": forced,
                }
            )
    if not comparison["promote"]:
        client = MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(registry.model_name, comparison["challenger_version"], key, value)
    return comparison, tags


def log_decision(parent_run_id: str, comparison: dict[str, Any], tags: dict[str, str], forced: bool) -> None:
    """Log the comparison's ROC-AUCs and gain and the decision's tags on the retraining's parent run.

    Args:
        parent_run_id: the retraining's parent run.
        comparison: the comparison as it stands after :func:`apply_decision`.
        tags: the decision's tags.
        forced: the run went through an active cooldown.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    for key in ("gain", "champion_roc_auc", "challenger_roc_auc"):
        client.log_metric(parent_run_id, key, float(comparison[key]))
    for key, value in tags.items():
        client.set_tag(parent_run_id, key, value)
    client.set_tag(parent_run_id, "churnops.forced", str(forced).lower())


def record_decision(
    config: ChurnopsConfig,
    comparison: dict[str, Any],
    as_of: date | str,
    state: PromotionState,
    context: dict[str, str],
    forced: bool = False,
) -> dict[str, Any]:
    """Promote or reject (:func:`apply_decision`), then log it on the run (:func:`log_decision`).

    Args:
        config: the registered model.
        comparison: :func:`compare_on_fresh_window`'s result.
        as_of: the run's as-of day (a date or ``YYYY-MM-DD``).
        state: where a promotion is recorded.
        context: the run (``run_id``, ``dag_id``, and ``parent_run_id`` to log on).
        forced: the run went through an active cooldown.

    Returns:
        ``{"decision", "reason", "champion" (the version now @champion), "challenger_tags"}``.
    """
    as_of = parse_day(as_of)
    configure_mlflow(config)
    registry = config.registry
    tags = decision_tags(comparison, as_of, context)
    comparison, tags = apply_decision(config, comparison, tags, as_of, state, context, forced)
    if context.get("parent_run_id"):
        log_decision(context["parent_run_id"], comparison, tags, forced)
    return {
        "decision": tags["churnops.decision"],
        "reason": comparison["reason"],
        "champion": alias_version(registry, registry.champion_alias),
        "challenger_tags": version_tags(registry, comparison["challenger_version"]),
    }


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
    comparison = compare_on_fresh_window(registered, prepared["evaluation"], started["run"]["config_path"])
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


def rollback_and_record(
    config: ChurnopsConfig, state: PromotionState, context: dict[str, Any], reason: str
) -> dict[str, Any]:
    """Move ``@champion`` back to ``@previous_champion``, tag both and record it as the last promotion.

    Args:
        config: the registered model.
        state: where the rollback is recorded.
        context: the run (``dag_id``, ``run_id`` and ``logical_date``, whose day is the rollback's date).
        reason: why, recorded on both versions and in the state.

    Returns:
        ``{"champion", "previous_champion"}`` after the swap.

    Raises:
        ChurnopsInputError: there is no ``@previous_champion`` to roll back to.
    """

    configure_mlflow(config)
    day = (context.get("logical_date") or "")[:10]
    tags = {
        "churnops.decision": "rolled_back",
        "churnops.decision_reason": reason[:4000],
        "churnops.decision_run": context.get("run_id", ""),
        "churnops.decision_as_of": day,
    }
    try:
        moved = rollback_champion(config.registry, tags)
    except ValueError as exc:
        raise ChurnopsInputError(str(exc)) from exc
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
    return moved
