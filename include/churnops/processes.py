"""Who owns a temporary file or an MLflow run, and whether that owner is gone.

An owner is ``<host>_<pid>_<start>``: the machine's name (letters, digits and ``-`` only), the
process id and the process's start time. On Linux the start time is the kernel's own count of
clock ticks since boot (``/proc/<pid>/stat``), which no change of the wall clock moves (psutil's
``create_time`` adds the boot time as the wall clock gives it now, so an NTP step would make every
live owner look like another process); elsewhere it is psutil's ``create_time`` in centiseconds
since the epoch. A process killed
with SIGKILL cleans up nothing; whatever it owned names it, so a later process can tell "mine and
dead" from "someone else's, alive":

- same host, no process with that pid, or one that started at another time (the pid was reused),
  or a zombie: **gone**, its leftovers may be removed or marked failed;
- same host and that very process still running: **alive**, left alone;
- another host: **unknown** (its processes cannot be seen from here), left alone as if alive.
"""

from __future__ import annotations

import os
import re
import socket

__all__ = ["OWNER_PATTERN", "owner_is_gone", "process_owner"]

OWNER_PATTERN = r"[A-Za-z0-9-]+_[0-9]+_[0-9]+"
"""What :func:`process_owner` returns: host, pid and start time joined by ``_``."""

_owner: tuple[int, str] | None = None  # (pid, owner) of this process; a forked child computes its own


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()) or "localhost"


def _started(pid: int) -> str | None:
    """The start time of process ``pid`` (see the module's note), or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else _started_by_psutil(pid)
    except OSError:
        return _started_by_psutil(pid)
    # pid (comm) state ppid … starttime: comm may hold spaces and parentheses, so count from its end.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):  # a zombie or dead process runs nothing
        return None
    return fields[19].decode()  # field 22 of the line: start time in clock ticks after boot


def _started_by_psutil(pid: int) -> str | None:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return str(round(process.create_time() * 100))
    except psutil.NoSuchProcess:  # ZombieProcess is one too
        return None


def process_owner() -> str:
    """This process as an owner: ``<host>_<pid>_<start>``."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{_host()}_{pid}_{_started(pid)}")
    return _owner[1]


def owner_is_gone(owner: str) -> bool:
    """Whether the process ``owner`` names has certainly ended (see the module's rules).

    Args:
        owner: a :func:`process_owner` value.

    Returns:
        True for a process of this host that no longer runs; False for one that runs, for one of
        another host, and for a value that is not an owner.
    """
    if not re.fullmatch(OWNER_PATTERN, owner):
        return False
    import psutil

    host, pid, started = owner.rsplit("_", 2)
    if host != _host():
        return False
    try:
        return _started(int(pid)) != started
    except psutil.AccessDenied:  # it exists, run by someone this process may not look at
        return False
