"""What was read of a day's files, and the verdicts kept for exactly that.

A file's identity (size, modification and change times, inode) is taken from the open
descriptor before a read and checked again after it (:func:`reading`): a read that saw the file
being written or replaced is not judged, and what the read saw is what its verdict records
(``work/verdicts/<kind>/date=D/<file>.json``). A verdict speaks only for a file with that same
identity (:func:`stored_verdict`); any other is judged again, never approved on the old verdict.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.data import partition, write_json
from churnops.errors import ChurnopsInputError, ChurnopsRetryableError

if TYPE_CHECKING:
    from churnops.data import Finding

__all__ = [
    "IDENTITY_FIELDS",
    "FileChangedError",
    "FileChangingError",
    "file_identity",
    "judged_identity",
    "reading",
    "record_verdict",
    "stored_verdict",
]


class FileChangedError(ChurnopsInputError):
    """A file is not the one that was read or judged: it changed during the read, or since.

    Nothing is judged, quarantined or published on such a view. A retry of the failing task
    cannot help (the day's plan holds the file as it was read), so the task fails at once; the
    day is then run again from ``check_batch``, which judges the file as it is by then.
    """


class FileChangingError(ChurnopsRetryableError):
    """A file changed while it was read, or between its judgement and the read that follows it.

    Its producer is most likely still writing: nothing is judged on that view, and a retry (which
    judges the file afresh, or finds the plan stale and fails at once with
    :class:`FileChangedError`) can succeed once the file is still.
    """


def _verdict_path(kind: str, day: date, path: Path) -> Path:
    return partition(f"work/verdicts/{kind}", day) / f"{path.name}.json"


IDENTITY_FIELDS = ("size", "mtime_ns", "ctime_ns", "inode")
"""What tells one version of a file from another without reading it: a write changes the size or
the times (the change time cannot be set back), a replacement the inode. Not the device number:
workers on several hosts mounting one shared folder see the same file under different ones."""


def _identity(info: os.stat_result) -> dict[str, int]:
    return {
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "ctime_ns": info.st_ctime_ns,
        "inode": info.st_ino,
    }


def file_identity(path: Path) -> dict[str, int]:
    """The file as it is now, unread: ``{"size", "mtime_ns", "ctime_ns", "inode"}``.

    Args:
        path: the file.

    Returns:
        Its identity (:data:`IDENTITY_FIELDS`).

    Raises:
        OSError: it cannot be looked at (e.g. it is gone).
    """
    return _identity(os.lstat(path))  # the name's own: a link is not followed (its reader refuses it)


def _differences(was: dict[str, Any], now: dict[str, Any] | None) -> str:
    """What changed between two identities, in words (``now`` None: the file is gone)."""
    if now is None:
        return "it is gone"
    if was.get("inode") != now["inode"]:
        return "it was replaced by another file"
    if was.get("size") != now["size"]:
        return f"its size went from {was.get('size')} to {now['size']} bytes"
    return "it was written to (same size, other contents or times)"


@contextmanager
def reading(
    path: Path, expected: dict[str, Any] | None = None, *, judged_afresh: bool = False
) -> Iterator[dict[str, int]]:
    """Hold a file open while it is read, so what was read is known and was not moving.

    Its identity is taken from the open descriptor before the read; after the read (or when the
    read fails) the descriptor and the path must still show it, else the read saw a file being
    written or replaced and :class:`FileChangingError` (retryable) stands in for any result or
    error of the read (a half-written file is never quarantined as damaged).

    Args:
        path: the file.
        expected: the identity the file must have from the start (e.g. its verdict's or the
            day's plan's); None: whatever it is.
        judged_afresh: ``expected`` is a verdict the caller's next attempt judges again (labels,
            retraining windows), not a fixed plan: a file that differs from it is still changing
            (:class:`FileChangingError`, retryable) rather than a stale plan (:class:`FileChangedError`).

    Yields:
        The identity the read saw (:func:`file_identity`'s fields).

    Raises:
        FileChangedError: it is gone, or differs from a planned ``expected``.
        FileChangingError: it changed during the read, or differs from an ``expected`` verdict
            that is ``judged_afresh``.
    """
    try:
        # Only a regular file is opened, without following a link; a link, FIFO or device is
        # identified by its name alone (its reader refuses it: rule regular_file).
        regular = stat.S_ISREG(os.lstat(path).st_mode)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW) if regular else None
    except FileNotFoundError as exc:
        raise FileChangedError(f"{path} changed: it is gone") from exc
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise FileChangedError(f"{path} changed: it was replaced by a link") from exc
    try:
        before = _identity(os.fstat(descriptor) if descriptor is not None else os.lstat(path))
        if expected is not None and {k: expected.get(k) for k in IDENTITY_FIELDS} != before:
            raise (FileChangingError if judged_afresh else FileChangedError)(
                f"{path} is not the file that was judged or planned: {_differences(expected, before)}."
                " Nothing is published or approved on the old judgement; run the day again to judge it as it is now"
            )
        try:
            yield before
        except Exception as exc:
            if _changed_since(descriptor, path, before):
                raise FileChangingError(f"{path} changed while it was read ({exc})") from exc
            raise
        if _changed_since(descriptor, path, before):
            now = _identity(os.lstat(path)) if os.path.lexists(path) else None
            raise FileChangingError(
                f"{path} changed while it was read: {_differences(before, now)}. It was not judged;"
                " a retry judges it once its producer has finished (monitoring.arrival_marker makes the"
                " monitoring DAG wait for a finished day)"
            )
    finally:
        if descriptor is not None:
            os.close(descriptor)


def _changed_since(descriptor: int | None, path: Path, before: dict[str, int]) -> bool:
    """Whether the open file was written to, or its path now names another file."""
    try:
        opened = _identity(os.fstat(descriptor)) if descriptor is not None else before
        return opened != before or _identity(os.lstat(path)) != before
    except FileNotFoundError:
        return True


def record_verdict(
    kind: str, day: date, path: Path, findings: list[Finding], identity: dict[str, int]
) -> dict[str, Any]:
    """Remember whether the file that was read passed validation, so later readers need not re-read it.

    Args:
        kind: ``incoming`` or ``labels``.
        day: the file's day.
        path: the file.
        findings: its findings (none: it passed).
        identity: the file as it was read (:func:`reading`'s), never as it is at the time of writing:
            rows appended since were not judged and must not be approved.

    Returns:
        The verdict as written: the identity's fields and ``findings``.
    """
    verdict = {**{k: identity[k] for k in IDENTITY_FIELDS}, "findings": [asdict(f) for f in findings]}
    write_json(_verdict_path(kind, day, path), verdict)
    return verdict


def _load_verdict(kind: str, day: date, path: Path) -> dict[str, Any] | None:
    try:
        verdict = json.loads(_verdict_path(kind, day, path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or unreadable; not JSON (UnicodeDecodeError is a ValueError too)
        return None
    if not isinstance(verdict, dict) or not {*IDENTITY_FIELDS, "findings"} <= verdict.keys():
        return None
    return verdict


def stored_verdict(kind: str, day: date, path: Path) -> dict[str, Any] | None:
    """The verdict :func:`record_verdict` kept for this file as it is now (the same identity), or None.

    None when there is none, the file differs in any of :data:`IDENTITY_FIELDS` from what was
    read for it (grown, rewritten, replaced, even with the same size and modification time), or
    the verdict cannot be read: one cut short by a crash, emptied, edited into something else or
    lacking a field is not an error, the file it speaks for is simply judged again (and its
    verdict rewritten whole).

    Args:
        kind: ``incoming`` or ``labels``.
        day: the file's day.
        path: the file.

    Returns:
        The identity's fields and ``findings``, or None.
    """
    verdict = _load_verdict(kind, day, path)
    if verdict is None:
        return None
    try:
        now = file_identity(path)
    except FileNotFoundError:
        return None
    return verdict if {k: verdict[k] for k in IDENTITY_FIELDS} == now else None


def judged_identity(kind: str, day: date, path: Path) -> dict[str, Any]:
    """The identity a file's verdict recorded (empty without a readable verdict): pass it to :func:`reading`.

    Args:
        kind: ``incoming`` or ``labels``.
        day: the file's day.
        path: the file.

    Returns:
        The fields of :data:`IDENTITY_FIELDS` the verdict holds, or ``{}``.
    """
    verdict = _load_verdict(kind, day, path)
    return {k: verdict[k] for k in IDENTITY_FIELDS} if verdict else {}
