"""Crash points: named places where the fault tests kill a task process with SIGKILL, mid-step.

``CHURNOPS_CRASH_AT=<point>[,<point>…]`` (set only by tests) makes the first process that reaches
a named point kill itself with SIGKILL, as the OOM killer or a lost node would: no exception
handler, ``finally`` block or ``atexit`` hook runs, and Airflow sees the task die. A marker file
``$CHURNOPS_HOME/crashes/<point>`` records the crash (and the pid), so the retry runs past the
point. The points sit where a crash is most harmful: after a side effect and before the record
of it (a registered version before its alias, moved aliases before the promotion state, published
predictions before the MLflow run). Unset, as always outside tests, a point is one dict lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_AT_ENV", "crash_point"]

CRASH_AT_ENV = "CHURNOPS_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process the first time it reaches ``name`` if ``$CHURNOPS_CRASH_AT`` lists it.

    Args:
        name: the crash point, e.g. ``register:after_version``.
    """
    points = os.environ.get(CRASH_AT_ENV)
    if not points or name not in points.split(","):
        return
    from churnops.config import churnops_home

    marker = churnops_home() / "crashes" / name
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:  # crashed here once already: this is the retry
        return
    os.write(handle, f"{os.getpid()}\n".encode())
    os.close(handle)
    os.kill(os.getpid(), signal.SIGKILL)
