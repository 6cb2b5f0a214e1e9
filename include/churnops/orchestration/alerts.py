"""Alerts: what happened, built from the steps' results and rendered as mail text or a webhook payload.

Nothing here imports Airflow or sends anything: :mod:`churnops.orchestration.notifier` (Airflow's
notifier, the connection ``churnops_alerts``) fills in where an alert comes from and delivers it.
Every message names the DAG, the day and the decision.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Alert",
    "AlertEvent",
    "Origin",
    "cooldown_alert",
    "decision_alert",
    "failure_alert",
    "render_slack_payload",
    "render_subject",
    "render_text",
    "retrain_alert",
    "rollback_alert",
]

AlertEvent = Literal["retrain", "promotion", "rejection", "cooldown_stop", "rollback", "task_failed"]

MAX_VALUE_CHARS = 1000
"""A detail longer than this (a traceback's message, a long list of features) is cut, so a message stays readable."""


class Origin(BaseModel):
    """Where an alert comes from: the task instance that sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dag_id: str
    day: str
    """The day the run is about, ``YYYY-MM-DD`` (a retraining's as-of day)."""
    run_id: str = ""
    task_id: str = ""
    log_url: str = ""
    """The task instance's page in the Airflow UI (its log)."""


class Alert(Origin):
    """One alert: an event of a DAG run with its decision and the figures behind it."""

    event: AlertEvent
    decision: str
    headline: str
    """One line saying what happened, after ``<dag> <day>:`` in the subject."""
    details: dict[str, Any] = {}
    """Labelled values (lists, numbers, text) shown under the headline, in order."""


def retrain_alert(origin: Origin, summary: dict[str, Any]) -> Alert:
    """The monitoring of a day decided to retrain.

    The headline names the triggers only (``retraining triggered: dataset drift (13 of 19
    features), performance``), so a subject stays short; the reasons and the drifted features
    are details.

    Args:
        origin: the sending task.
        summary: the day's report summary (``report_step``'s result: ``decision``, ``triggers``,
            ``reasons``, ``drifted_features``, ``n_features``, ``drift_share``, ``realized_roc_auc``,
            ``model_version``).

    Returns:
        The ``retrain`` alert.
    """
    reasons = list(summary.get("reasons") or [])
    triggers = list(summary.get("triggers") or [])
    return Alert(
        **origin.model_dump(),
        event="retrain",
        decision="retrain",
        headline="retraining triggered: " + (", ".join(_trigger_label(t, summary) for t in triggers) or "see reasons"),
        details={
            "triggers": triggers,
            "reasons": reasons,
            "drifted_features": list(summary.get("drifted_features") or []),
            "drift_share": summary.get("drift_share"),
            "realized_roc_auc": summary.get("realized_roc_auc"),
            "champion_version": summary.get("model_version"),
        },
    )


def _trigger_label(trigger: str, summary: dict[str, Any]) -> str:
    """A trigger as the subject names it: dataset drift with its count of drifted features."""
    label = trigger.replace("_", " ")
    if trigger != "dataset_drift":
        return label
    drifted = len(summary.get("drifted_features") or [])
    total = summary.get("n_features")
    return f"{label} ({drifted} of {total} features)" if total else f"{label} ({drifted} features)"


def decision_alert(origin: Origin, result: dict[str, Any]) -> Alert:
    """A retraining promoted its challenger, or did not (rejected, or lost the promotion to another run).

    Args:
        origin: the sending task.
        result: ``record_decision``'s result (``decision``: ``promoted``, ``rejected`` or
            ``conflict``; ``reason``; ``champion``; ``challenger_tags``).

    Returns:
        A ``promotion`` alert, else a ``rejection`` alert.
    """
    decision = str(result.get("decision"))
    tags = result.get("challenger_tags") or {}
    promoted = decision == "promoted"
    champion = result.get("champion")
    return Alert(
        **origin.model_dump(),
        event="promotion" if promoted else "rejection",
        decision=decision,
        headline=f"challenger promoted: version {champion} is @champion"
        if promoted
        else f"challenger {decision}: @champion stays version {champion}",
        details={"reason": result.get("reason"), "champion_version": champion, "gain": tags.get("churnops.gain")},
    )


def cooldown_alert(origin: Origin, verdict: dict[str, Any]) -> Alert:
    """A retraining stopped inside a cooldown: after the last promotion, or after the last retraining attempt.

    Args:
        origin: the sending task.
        verdict: ``check_cooldown``'s verdict (``cooldown``: ``promotion`` or ``retraining``;
            ``reason``, ``cooldown_until``, ``last_promotion``, ``last_retraining``).

    Returns:
        The ``cooldown_stop`` alert, its headline naming the cooldown.
    """
    last = verdict.get("last_promotion") or {}
    retrained = verdict.get("last_retraining") or {}
    cooldown = verdict.get("cooldown")
    return Alert(
        **origin.model_dump(),
        event="cooldown_stop",
        decision="skipped",
        headline=f"retraining stopped by the {cooldown} cooldown" if cooldown else "retraining stopped by a cooldown",
        details={
            "cooldown": cooldown,
            "reason": verdict.get("reason"),
            "cooldown_until": verdict.get("cooldown_until"),
            "last_promotion": f"version {last.get('version')} on {last.get('date')}" if last else None,
            "last_retraining": f"version {retrained.get('version')} on {retrained.get('date')}" if retrained else None,
        },
    )


def rollback_alert(origin: Origin, moved: dict[str, Any], reason: str) -> Alert:
    """``@champion`` went back to ``@previous_champion``.

    Args:
        origin: the sending task.
        moved: ``rollback_and_record``'s result (``champion``, ``previous_champion``).
        reason: why, as the run was given it.

    Returns:
        The ``rollback`` alert.
    """
    champion = moved.get("champion")
    return Alert(
        **origin.model_dump(),
        event="rollback",
        decision="rolled_back",
        headline=f"rolled back: version {champion} is @champion again",
        details={
            "reason": reason,
            "champion_version": champion,
            "previous_champion_version": moved.get("previous_champion"),
        },
    )


def failure_alert(origin: Origin, error: BaseException | str | None, try_number: int, max_tries: int) -> Alert:
    """A task failed for good (after its last retry, or at once on bad input).

    Args:
        origin: the failed task.
        error: what it raised.
        try_number: its last try.
        max_tries: how many tries it had.

    Returns:
        The ``task_failed`` alert.
    """
    message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error or "unknown")
    return Alert(
        **origin.model_dump(),
        event="task_failed",
        decision="failed",
        headline=f"task {origin.task_id} failed after try {try_number} of {max_tries}",
        details={"task": origin.task_id, "error": message},
    )


def render_subject(alert: Alert) -> str:
    """``[churnops] <dag> <day>: <headline>``, one line (a mail subject)."""
    return _cut(f"[churnops] {alert.dag_id} {alert.day}: {alert.headline}".replace("\n", " "), 250)


def render_text(alert: Alert) -> str:
    """The alert as plain text: the subject line, then DAG, day, decision, run and each detail on its own line.

    Args:
        alert: the alert.

    Returns:
        The text (a mail body, a webhook's ``text``).
    """
    lines = [
        render_subject(alert),
        "",
        f"Event: {alert.event}",
        f"DAG: {alert.dag_id}",
        f"Day: {alert.day}",
        f"Decision: {alert.decision}",
    ]
    lines += [f"{label}: {value}" for label, value in (("Run", alert.run_id), ("Task", alert.task_id)) if value]
    lines += [f"{_label(key)}: {_value(value)}" for key, value in alert.details.items() if value not in (None, "", [])]
    if alert.log_url:
        lines.append(f"Log: {alert.log_url}")
    return "\n".join(lines)


def render_slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack-compatible webhook body: ``text`` (the whole :func:`render_text`, for any JSON webhook) and ``blocks``.

    Args:
        alert: the alert.

    Returns:
        ``{"text", "blocks"}``: a header, the DAG/day/decision/run fields, the details and the log link.
    """
    fields = [("DAG", alert.dag_id), ("Day", alert.day), ("Decision", alert.decision), ("Run", alert.run_id)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(render_subject(alert), 150)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{_cut(value, 500)}"} for label, value in fields if value
            ],
        },
    ]
    shown = [f"*{_label(k)}*: {_value(v)}" for k, v in alert.details.items() if v not in (None, "", [])]
    if shown:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut("\n".join(shown), 3000)}})
    if alert.log_url:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{alert.log_url}|Task log>"}})
    return {"text": render_text(alert), "blocks": blocks}


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return _cut(" ".join(text.split()), MAX_VALUE_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
