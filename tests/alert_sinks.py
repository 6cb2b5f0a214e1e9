"""Local sinks for alerts: a tiny SMTP server and an HTTP webhook receiver, each in a thread of the test process.

Both listen on 127.0.0.1 on a free port and keep what they received. ``connection()`` gives the
``churnops_alerts`` connection (Airflow's JSON form, e.g. for ``AIRFLOW_CONN_CHURNOPS_ALERTS``)
pointing at the sink.
"""

from __future__ import annotations

import email
import html
import json
import re
import socketserver
import threading
import time
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RECIPIENT = "ops@churnops.test"


class _Sink:
    server: socketserver.TCPServer

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def keep(self, item: Any) -> None:
        with self.lock:
            self.received.append(item)

    def __enter__(self):
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening (a later alert finds nothing on the port)."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server.server_close()

    def texts(self) -> list[str]:
        """The text of each alert received, in order."""
        raise NotImplementedError

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 60) -> list[str]:
        """Until ``predicate(texts)`` holds; the texts (whatever they are when the time is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.texts()):
                break
            time.sleep(0.5)
        return self.texts()


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        sink: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        self.reply("220 churnops-test-sink ESMTP")
        sender, recipients = "", []
        for raw in self.rfile:
            command = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-churnops-test-sink")
                self.reply("250 8BITMIME")
            elif verb in {"HELO", "NOOP", "RSET"}:
                if verb == "RSET":
                    sender, recipients = "", []
                self.reply("250 OK")
            elif command.upper().startswith("MAIL FROM:"):
                sender = command[10:].strip()
                self.reply("250 OK")
            elif command.upper().startswith("RCPT TO:"):
                recipients.append(command[8:].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                for line in self.rfile:
                    if line == b".\r\n":
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                sink.keep({"from": sender, "to": recipients, "message": email.message_from_bytes(b"".join(lines))})
                sender, recipients = "", []
                self.reply("250 OK: queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class SmtpSink(_Sink):
    """An SMTP server that keeps each mail: ``{"from", "to", "message"}`` (an :class:`email.message.Message`)."""

    def __init__(self) -> None:
        super().__init__()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        self.server.sink = self  # type: ignore[attr-defined]

    def connection(self, to: str | None = RECIPIENT) -> str:
        """``churnops_alerts`` as a plain-SMTP connection (no SSL, no STARTTLS) to this sink."""
        extra: dict[str, Any] = {"disable_ssl": True, "disable_tls": True, "from_email": "churnops@churnops.test"}
        if to:
            extra["to"] = to
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port, "extra": extra})

    def texts(self) -> list[str]:
        with self.lock:
            return [mail_text(m["message"]) for m in self.received]


def mail_text(message: Message) -> str:
    """A mail's body as the alert's plain text (its HTML part, unescaped, without the ``<pre>``)."""
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    body = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")  # type: ignore[union-attr]
    return html.unescape(re.sub(r"</?pre>", "", body))


class _HookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.sink.keep({"path": self.path, "json": json.loads(body)})  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass


class HttpSink(_Sink):
    """A webhook receiver that keeps each POST: ``{"path", "json"}``."""

    ENDPOINT = "/hooks/churnops"

    def __init__(self) -> None:
        super().__init__()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _HookHandler)
        self.server.sink = self  # type: ignore[attr-defined]

    def connection(self) -> str:
        """``churnops_alerts`` as an ``http`` connection to this sink's endpoint."""
        return json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": self.port,
                "schema": "http",
                "extra": {"endpoint": self.ENDPOINT, "timeout": 5},
            }
        )

    def texts(self) -> list[str]:
        with self.lock:
            return [r["json"]["text"] for r in self.received]
