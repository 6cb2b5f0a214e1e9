"""The head-to-head and its outcome: champion and challenger scored on the same fresh window,
the policy's decision, and the promotion (or rejection) recorded on the versions and the run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from churnops.config import ChurnopsConfig, load_config
from churnops.data import label_vector
from churnops.days import parse_day
from churnops.monitoring import champion_version, load_model, positive_scores
from churnops.retraining.policy import decide_promotion, paired_bootstrap_gain
from churnops.retraining.state import PromotionState
from churnops.tracking import PromotionConflict, alias_version, configure_mlflow, promote_version, version_tags

__all__ = ["apply_decision", "compare_on_fresh_window", "decision_tags", "log_decision", "record_decision"]


def compare_on_fresh_window(registered: dict[str, Any], evaluation_path: str, config_path: str) -> dict[str, Any]:
    """Score champion and challenger on the same fresh labelled window; decide by the policy.

    Args:
        registered: the training pipeline's ``register_chosen`` result (the challenger's version).
        evaluation_path: the evaluation window (:func:`add_recent_days`).
        config_path: the run's frozen config.

    Returns:
        The decision (:class:`~churnops.retraining.policy.PromotionDecision`'s fields) plus
        ``ci``, ``champion_version``, ``challenger_version`` and ``rows_evaluation``.

    Raises:
        churnops.tracking.ModelIntegrityError: either version's artifacts are not the ones registered
            (both are loaded through :func:`churnops.monitoring.load_model`, which checks them
            before anything is scored): nothing is decided or promoted.
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
    """Promote and record it in the state (both under the registry's promotion lock, the champion re-checked
    there), or tag the rejected challenger.

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

        def record(moved: dict[str, Any]) -> None:  # under the promotion lock, right after the move
            state.record_promotion(
                {
                    "date": as_of.isoformat(),
                    "version": moved["champion"],
                    "previous_version": moved["previous_champion"],
                    "run_id": context.get("run_id", ""),
                    "dag_id": context.get("dag_id", ""),
                    "forced": forced,
                }
            )

        try:
            promote_version(registry, comparison["challenger_version"], comparison["champion_version"], tags, record)
        except PromotionConflict as exc:  # another promotion won the race: record why this one did not
            tags = {**tags, "churnops.decision": "conflict", "churnops.decision_reason": str(exc)[:4000]}
            comparison = {**comparison, "promote": False, "reason": str(exc)}
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
