"""churnops.orchestration.notifier against real local servers: an SMTP sink and a webhook receiver.

The connection ``churnops_alerts`` comes from ``AIRFLOW_CONN_CHURNOPS_ALERTS``, as a deployment would set it.
"""

from __future__ import annotations

import json
import logging

import pytest

from churnops.orchestration.alerts import Origin, render_slack_payload, render_subject, render_text, retrain_alert
from churnops.orchestration.notifier import ChurnopsNotifier, deliver, webhook_url
from tests.alert_sinks import RECIPIENT, HttpSink, SmtpSink
from tests.helpers import write_config

ENV = "AIRFLOW_CONN_CHURNOPS_ALERTS"
ALERT = retrain_alert(
    Origin(dag_id="churn_monitoring", day="2026-10-12", run_id="r1", task_id="decide", log_url="http://a.test/log"),
    {"reasons": ["dataset drift"], "drifted_features": ["contract", "tenure"], "drift_share": 0.5},
)


@pytest.fixture
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def webhook():
    with HttpSink() as sink:
        yield sink


def test_an_smtp_connection_mails_the_alert_to_the_extras_recipients(smtp, monkeypatch):
    monkeypatch.setenv(ENV, smtp.connection())
    assert deliver(ALERT) == "smtp"
    [mail] = smtp.received
    assert mail["to"] == [RECIPIENT] and mail["from"] == "<churnops@churnops.test>"
    assert mail["message"]["Subject"] == render_subject(ALERT)
    assert smtp.texts() == [render_text(ALERT)]


def test_without_recipients_in_the_connection_the_configs_are_used(smtp, monkeypatch, tmp_path):
    config = write_config(tmp_path / "config.yaml", orchestration={"alerts": {"to": ["a@x.test", "b@x.test"]}})
    monkeypatch.setenv("CHURNOPS_CONFIG", str(config))
    monkeypatch.setenv(ENV, smtp.connection(to=None))
    assert deliver(ALERT) == "smtp"
    assert smtp.received[0]["to"] == ["a@x.test", "b@x.test"]


def test_without_any_recipient_nothing_is_mailed(smtp, monkeypatch, caplog):
    monkeypatch.delenv("CHURNOPS_CONFIG", raising=False)  # the bundled config names no recipient
    monkeypatch.setenv(ENV, smtp.connection(to=None))
    with caplog.at_level(logging.WARNING):
        assert deliver(ALERT) == ""
    assert smtp.received == [] and "no recipients" in caplog.text


def test_an_http_connection_posts_the_slack_payload_to_its_endpoint(webhook, monkeypatch):
    monkeypatch.setenv(ENV, webhook.connection())
    assert deliver(ALERT) == "http"
    assert webhook.received == [{"path": HttpSink.ENDPOINT, "json": render_slack_payload(ALERT)}]


@pytest.mark.parametrize(
    ("connection", "url"),
    [
        ({"conn_type": "http", "host": "hooks.test", "extra": {"endpoint": "/a/b"}}, "http://hooks.test/a/b"),
        ({"conn_type": "https", "host": "hooks.test", "port": 8443}, "https://hooks.test:8443"),
        ({"conn_type": "http", "host": "127.0.0.1", "port": 80, "schema": "https"}, "https://127.0.0.1:80"),
        (
            {"conn_type": "http", "host": "https://hooks.slack.com/services/T0/B0/xyz"},
            "https://hooks.slack.com/services/T0/B0/xyz",
        ),
    ],
)
def test_the_webhook_url_follows_the_http_connection_convention(connection, url, monkeypatch):
    from airflow.sdk import BaseHook

    monkeypatch.setenv(ENV, json.dumps(connection))
    assert webhook_url(BaseHook.get_connection("churnops_alerts")) == url


def test_no_connection_sends_nothing_and_raises_nothing(monkeypatch, caplog):
    monkeypatch.delenv(ENV, raising=False)
    with caplog.at_level(logging.INFO):
        assert deliver(ALERT) == ""
        ChurnopsNotifier(ALERT)({})
    said = [r.getMessage() for r in caplog.records if "churnops_alerts" in r.getMessage()]
    assert said and all("alert not sent" in line for line in said)


@pytest.mark.parametrize("kind", ["smtp", "http"])
def test_a_sink_that_is_down_is_logged_and_never_raised_by_the_notifier(kind, monkeypatch, caplog):
    sink = SmtpSink() if kind == "smtp" else HttpSink()
    with sink:
        monkeypatch.setenv(ENV, sink.connection())
    # The sink is stopped: its port refuses connections.
    with pytest.raises(Exception, match="[Cc]onnect|[Rr]efused"):
        deliver(ALERT)
    with caplog.at_level(logging.ERROR):
        ChurnopsNotifier(ALERT)({})
    assert "alert not sent" in caplog.text


def test_an_unknown_connection_type_sends_nothing(monkeypatch, caplog):
    monkeypatch.setenv(ENV, json.dumps({"conn_type": "postgres", "host": "db.test"}))
    with caplog.at_level(logging.WARNING):
        assert deliver(ALERT) == ""
    assert "not smtp, http or https" in caplog.text
