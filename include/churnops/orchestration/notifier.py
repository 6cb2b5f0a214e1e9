"""Alerts through Airflow's notifier mechanism and the connection ``churnops_alerts``.

:class:`ChurnopsNotifier` is every churnops task's ``on_failure_callback`` (it runs once a task
has failed for good: retries go to ``on_retry_callback``), and the deciding tasks send their
event with :func:`send_alert`. How a message travels is the connection's business:

- ``conn_type`` ``smtp``: a mail through the SMTP provider's hook (host, port, login, password;
  extra ``from_email``, ``disable_ssl``, ``disable_tls`` as the provider reads them), to the
  extra's ``to`` (a list, or addresses separated by ``,`` or ``;``), else ``orchestration.alerts.to``;
- ``conn_type`` ``http`` or ``https``: a JSON POST of :func:`~churnops.orchestration.alerts.render_slack_payload`
  to ``<schema>://<host>:<port><extra.endpoint>`` (``host`` may be a whole URL, as a Slack
  webhook's), with basic auth when a login is set.

No connection: one info line, nothing sent. A failure to send is logged and never fails the task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec

from airflow.sdk.bases.notifier import BaseNotifier

from churnops.orchestration.alerts import (
    Alert,
    Origin,
    failure_alert,
    render_slack_payload,
    render_subject,
    render_text,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from airflow.sdk.definitions.context import Context

__all__ = ["ALERTS_CONN_ID", "ChurnopsNotifier", "deliver", "send_alert", "task_origin", "webhook_url"]

ALERTS_CONN_ID = "churnops_alerts"
"""The Airflow connection alerts go through."""
DEFAULT_FROM = "churnops@localhost"
"""The sender when the SMTP connection's extra names no ``from_email``."""

P = ParamSpec("P")
log = logging.getLogger(__name__)


class ChurnopsNotifier(BaseNotifier):
    """Send one alert through ``churnops_alerts``: the one given, else the failure of the context's task.

    Args:
        alert: the alert to send; None for a task callback, which reports its task's failure
            (DAG, task, day, try, error, log URL).
        conn_id: the connection.
    """

    def __init__(self, alert: Alert | None = None, conn_id: str = ALERTS_CONN_ID) -> None:
        super().__init__()
        self.alert = alert
        self.conn_id = conn_id

    def notify(self, context: Context) -> None:
        """Build the alert (if none was given) and deliver it; log, never raise, whatever goes wrong."""
        try:
            alert = self.alert or _failure_of(context)
            deliver(alert, self.conn_id)
        except Exception:
            log.exception("alert not sent (the task's own outcome stands)")


def send_alert(build: Callable[Concatenate[Origin, P], Alert], *args: P.args, **kwargs: P.kwargs) -> None:
    """From inside a task: build an alert about it (``build(origin, *args, **kwargs)``) and send it.

    Never raises: an alert that cannot be built or sent is logged, and the task goes on.

    Args:
        build: one of :mod:`churnops.orchestration.alerts`' builders (``retrain_alert``, ...).
        *args: its arguments after the origin.
        **kwargs: its keyword arguments.
    """
    from airflow.sdk import get_current_context

    try:
        context = get_current_context()
        alert = build(task_origin(context), *args, **kwargs)
    except Exception:
        log.exception("alert not built (the task's own outcome stands)")
        return
    ChurnopsNotifier(alert)(context)


def task_origin(context: Context | dict[str, Any]) -> Origin:
    """Where an alert from this task instance comes from: DAG, run, task, day and log URL.

    The day is the run's ``as_of`` (a retraining's Param or conf), else its logical date, else
    (a manual run without one) its ``run_after``.

    Args:
        context: the task's Airflow context.

    Returns:
        The origin.
    """
    ti, dag_run = context["ti"], context["dag_run"]
    as_of = (context.get("params") or {}).get("as_of") or (dag_run.conf or {}).get("as_of")
    when = dag_run.logical_date or dag_run.run_after
    day = str(as_of)[:10] if as_of else (when.date().isoformat() if when else "")
    map_index = getattr(ti, "map_index", -1)
    task_id = ti.task_id if map_index is None or map_index < 0 else f"{ti.task_id}[{map_index}]"
    return Origin(dag_id=ti.dag_id, run_id=ti.run_id, task_id=task_id, day=day, log_url=ti.log_url)


def _failure_of(context: Context) -> Alert:
    ti = context["ti"]
    max_tries = getattr(ti, "max_tries", None)
    tries = (max_tries if max_tries is not None else ti.task.retries or 0) + 1
    return failure_alert(task_origin(context), context.get("exception"), ti.try_number, tries)


def deliver(alert: Alert, conn_id: str = ALERTS_CONN_ID) -> str:
    """Send ``alert`` as connection ``conn_id`` says: a mail (``smtp``) or a JSON POST (``http``/``https``).

    Args:
        alert: the alert.
        conn_id: the connection.

    Returns:
        How it went: ``"smtp"`` or ``"http"`` when sent, ``""`` when nothing was sent (no
        connection, no recipients, an unknown connection type: each logged).

    Raises:
        Exception: sending failed (the server is down, refused the message, or answered an error).
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: alert not sent: %s", conn_id, render_subject(alert))
        return ""
    kind = (conn.conn_type or "").lower()
    if kind == "smtp":
        return _send_mail(alert, conn)
    if kind in {"http", "https"}:
        return _post_json(alert, conn)
    log.warning("connection %r has type %r, not smtp, http or https: alert not sent", conn_id, conn.conn_type)
    return ""


def _send_mail(alert: Alert, conn: Connection) -> str:
    import html

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from churnops.orchestration.defaults import deployment_orchestration

    extra = conn.extra_dejson
    to = extra.get("to") or deployment_orchestration().alerts.to
    if not to:
        log.warning("SMTP connection %r: no recipients (extra 'to' or orchestration.alerts.to)", conn.conn_id)
        return ""
    with SmtpHook(smtp_conn_id=conn.conn_id) as hook:
        hook.send_email_smtp(
            to=to,
            subject=render_subject(alert),
            html_content=f"<pre>{html.escape(render_text(alert))}</pre>",
            from_email=extra.get("from_email") or DEFAULT_FROM,
        )
    log.info("alert mailed to %s: %s", to, render_subject(alert))
    return "smtp"


def webhook_url(conn: Connection) -> str:
    """Where alerts go: ``host`` if it is a URL, else ``<schema>://<host>[:<port>]``; then ``extra.endpoint``."""
    host = conn.host or ""
    base = host if "://" in host else f"{conn.schema or conn.conn_type or 'http'}://{host}"
    if conn.port and "://" not in host:
        base += f":{conn.port}"
    endpoint = str(conn.extra_dejson.get("endpoint") or "")
    return base.rstrip("/") + ("/" + endpoint.lstrip("/") if endpoint else "")


def _post_json(alert: Alert, conn: Connection) -> str:
    import httpx

    url = webhook_url(conn)
    auth = (conn.login, conn.password or "") if conn.login else None
    timeout = float(conn.extra_dejson.get("timeout") or 10)
    response = httpx.post(url, json=render_slack_payload(alert), auth=auth, timeout=timeout)
    response.raise_for_status()
    # Not the URL: a webhook's URL is its secret.
    log.info("alert posted through %r: %s", conn.conn_id, render_subject(alert))
    return "http"
