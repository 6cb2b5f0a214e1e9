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
DRIFTED = [f"feature_{i}" for i in range(13)]
SUMMARY = {
    "decision": "retrain",
    "triggers": ["dataset_drift", "performance"],
    "reasons": [
        f"dataset drift: 13 of 19 features drifted (share 0.684): {', '.join(DRIFTED)}",
        "performance: realized ROC-AUC 0.7000 is below min_roc_auc 0.75 (500 labels)",
    ],
    "drifted_features": DRIFTED,
    "n_features": 19,
    "drift_share": 0.684211,
    "realized_roc_auc": None,
    "model_version": "1",
}


def test_a_retrain_alert_subject_names_the_triggers_and_its_body_the_reasons_and_features():
    text = render_text(retrain_alert(MONITORING, SUMMARY))
    assert text.splitlines()[0] == (
        "[churnops] churn_monitoring 2026-10-12: retraining triggered: dataset drift (13 of 19 features), performance"
    )
    for line in (
        "Triggers: dataset_drift, performance",
        f"Reasons: {', '.join(SUMMARY['reasons'])}",
        f"Drifted features: {', '.join(DRIFTED)}",
        "Event: retrain",
        "DAG: churn_monitoring",
        "Day: 2026-10-12",
        "Decision: retrain",
        "Run: scheduled__2026-10-12T00:00:00+00:00",
        "Drift share: 0.6842",
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


def test_a_retrain_alert_subject_stays_short_whatever_the_number_of_features():
    many = [f"a_rather_long_feature_name_{i}" for i in range(300)]
    summary = {**SUMMARY, "triggers": ["dataset_drift"], "drifted_features": many, "n_features": 400}
    subject = render_subject(retrain_alert(MONITORING, summary))
    assert subject.endswith(": retraining triggered: dataset drift (300 of 400 features)")
    other = {**SUMMARY, "triggers": ["prediction_drift", "target_drift", "estimated_performance"]}
    assert render_subject(retrain_alert(MONITORING, other)).endswith(
        "retraining triggered: prediction drift, target drift, estimated performance"
    )


@pytest.mark.parametrize("cooldown", ["promotion", "retraining"])
def test_a_cooldown_alert_names_the_cooldown_that_stopped_the_run(cooldown):
    alert = cooldown_alert(
        RETRAINING,
        {
            "proceed": False,
            "cooldown": cooldown,
            "reason": "in cooldown: last retraining attempt on 2026-10-11, next allowed on 2026-10-14",
            "cooldown_until": "2026-10-14",
            "last_promotion": {"version": "2", "date": "2026-10-01"},
            "last_retraining": {"version": "5", "date": "2026-10-11", "run_id": "monitoring__2026-10-11"},
        },
    )
    assert alert.headline == f"retraining stopped by the {cooldown} cooldown"
    text = render_text(alert)
    assert f"Cooldown: {cooldown}" in text.splitlines()
    assert "Last retraining: version 5 on 2026-10-11" in text.splitlines()
    assert "Cooldown until: 2026-10-14" in text.splitlines()


def test_cooldown_rollback_and_failure_alerts():
    cooldown = cooldown_alert(
        RETRAINING,
        {
            "proceed": False,
            "cooldown": "promotion",
            "reason": "in cooldown until 2026-10-19",
            "cooldown_until": "2026-10-19",
            "last_promotion": {"version": "2", "date": "2026-10-12"},
            "last_retraining": None,
        },
    )
    assert (cooldown.event, cooldown.decision) == ("cooldown_stop", "skipped")
    assert "Last promotion: version 2 on 2026-10-12" in render_text(cooldown)
    assert "Last retraining" not in render_text(cooldown)

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
