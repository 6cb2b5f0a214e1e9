"""churnops.orchestration.alerts: each event's alert from its step's result, as text and as a Slack payload."""

from __future__ import annotations

import json

import pytest

from churnops.orchestration.alerts import (
    Alert,
    Origin,
    cooldown_alert,
    decision_alert,
    failure_alert,
    render_slack_payload,
    render_subject,
    render_text,
    retrain_alert,
    rollback_alert,
)

MONITORING = Origin(
    dag_id="churn_monitoring",
    day="2026-10-12",
    run_id="scheduled__2026-10-12T00:00:00+00:00",
    task_id="decide",
    log_url="http://airflow.test/dags/churn_monitoring/runs/scheduled__2026-10-12/tasks/decide?try_number=1",
)
RETRAINING = Origin(dag_id="churn_retraining", day="2026-10-12", run_id="monitoring__2026-10-12", task_id="promote")
SUMMARY = {
    "decision": "retrain",
    "reasons": ["dataset drift: 11/19 features drifted (share 0.58 > 0.3)"],
    "drifted_features": ["contract", "tenure", "monthlycharges"],
    "drift_share": 0.578947,
    "realized_roc_auc": None,
    "model_version": "1",
}


def test_a_retrain_alert_names_dag_day_decision_reasons_and_drifted_features():
    text = render_text(retrain_alert(MONITORING, SUMMARY))
    assert text.splitlines()[0] == (
        "[churnops] churn_monitoring 2026-10-12: retrain: dataset drift: 11/19 features drifted (share 0.58 > 0.3)"
    )
    for line in (
        "Event: retrain",
        "DAG: churn_monitoring",
        "Day: 2026-10-12",
        "Decision: retrain",
        "Run: scheduled__2026-10-12T00:00:00+00:00",
        "Drifted features: contract, tenure, monthlycharges",
        "Drift share: 0.5789",
        f"Log: {MONITORING.log_url}",
    ):
        assert line in text.splitlines(), (line, text)
    assert "Realized roc auc" not in text, "a missing figure is left out, not shown as None"


@pytest.mark.parametrize(
    ("result", "event", "headline"),
    [
        (
            {"decision": "promoted", "reason": "gain 0.03 > 0.01", "champion": "2", "challenger_tags": {}},
            "promotion",
            "challenger promoted: version 2 is @champion",
        ),
        (
            {"decision": "rejected", "reason": "gain 0.001 <= 0.01", "champion": "1", "challenger_tags": {}},
            "rejection",
            "challenger rejected: @champion stays version 1",
        ),
        (
            {"decision": "conflict", "reason": "@champion moved meanwhile", "champion": "3", "challenger_tags": {}},
            "rejection",
            "challenger conflict: @champion stays version 3",
        ),
    ],
)
def test_a_retraining_decision_is_a_promotion_or_a_rejection(result, event, headline):
    alert = decision_alert(RETRAINING, {**result, "challenger_tags": {"churnops.gain": "0.030000"}})
    assert (alert.event, alert.decision, alert.headline) == (event, result["decision"], headline)
    text = render_text(alert)
    assert f"Reason: {result['reason']}" in text and "Gain: 0.030000" in text
    assert f"Decision: {result['decision']}" in text and "Day: 2026-10-12" in text


def test_cooldown_rollback_and_failure_alerts():
    cooldown = cooldown_alert(
        RETRAINING,
        {
            "proceed": False,
            "reason": "in cooldown until 2026-10-19",
            "cooldown_until": "2026-10-19",
            "last_promotion": {"version": "2", "date": "2026-10-12"},
        },
    )
    assert (cooldown.event, cooldown.decision) == ("cooldown_stop", "skipped")
    assert "Last promotion: version 2 on 2026-10-12" in render_text(cooldown)

    rollback = rollback_alert(
        RETRAINING.model_copy(update={"dag_id": "churn_rollback", "task_id": "rollback"}),
        {"champion": "1", "previous_champion": "2", "resumed": False},
        "bad calls",
    )
    assert rollback.event == "rollback" and "Previous champion version: 2" in render_text(rollback)
    assert render_subject(rollback) == "[churnops] churn_rollback 2026-10-12: rolled back: version 1 is @champion again"

    failed = failure_alert(MONITORING.model_copy(update={"task_id": "check_batch"}), ValueError("no\nfile"), 4, 4)
    text = render_text(failed)
    assert render_subject(failed) == "[churnops] churn_monitoring 2026-10-12: task check_batch failed after try 4 of 4"
    assert "Error: ValueError: no file" in text and "Decision: failed" in text and "Task: check_batch" in text


def test_a_long_detail_is_cut():
    alert = failure_alert(MONITORING, RuntimeError("x" * 5000), 1, 4)
    error = next(line for line in render_text(alert).splitlines() if line.startswith("Error: "))
    assert len(error) < 1100 and error.endswith("…")


def test_the_slack_payload_carries_the_text_and_blocks_within_slacks_limits():
    alert = retrain_alert(MONITORING, {**SUMMARY, "drifted_features": [f"feature_{i}" for i in range(2000)]})
    payload = render_slack_payload(alert)
    json.dumps(payload)  # a JSON body
    assert payload["text"] == render_text(alert)
    header, fields, details, link = payload["blocks"]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    assert {"type": "mrkdwn", "text": "*DAG*\nchurn_monitoring"} in fields["fields"]
    assert {"type": "mrkdwn", "text": "*Day*\n2026-10-12"} in fields["fields"]
    assert {"type": "mrkdwn", "text": "*Decision*\nretrain"} in fields["fields"]
    assert len(details["text"]["text"]) <= 3000
    assert link["text"]["text"] == f"<{MONITORING.log_url}|Task log>"


def test_an_alert_is_typed():
    with pytest.raises(ValueError, match="event"):
        Alert(**MONITORING.model_dump(), event="drift", decision="x", headline="y")
