"""Where churnops keeps files: day partitions, atomic writers, JSON records and the quarantine.

Every file churnops writes goes through :func:`replaced_atomically`: a temporary file beside the
target, flushed to disk, then moved into place, so a reader (or a retry after a crash) sees the
previous file or the complete new one, never half of either.

A temporary is named ``.<target>.<owner>_<random>.tmp``, its owner being the writing process
(:func:`churnops.processes.process_owner`: host, pid, start time). A process killed while writing
leaves its temporary behind; the next write of the same target removes the temporaries of that
target whose owner is gone, never those of a live writer or of another host.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from churnops.config import Source, churnops_home
from churnops.data.admission import RECORD_ONLY_RULES, REGULAR_FILE, NotRegularFileError, file_kind, open_regular
from churnops.faults import crash_point
from churnops.processes import OWNER_PATTERN, owner_is_gone, process_owner

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnops.data.findings import Finding


__all__ = [
    "atomic_parquet_writer",
    "partition",
    "quarantine",
    "remove_stale_temporaries",
    "replaced_atomically",
    "write_json",
    "write_parquet",
    "write_text_atomically",
]


def partition(kind: str, day: date) -> Path:
    """A day's folder of one kind of data under ``$CHURNOPS_HOME``.

    Args:
        kind: the kind, as a relative folder (``incoming``, ``labels``, ``work/monitoring``, …).
        day: the day.

    Returns:
        ``$CHURNOPS_HOME/<kind>/date=YYYY-MM-DD`` (not created).
    """
    return churnops_home() / kind / f"date={day.isoformat()}"


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, whole or not at all (:func:`write_text_atomically`).

    Args:
        path: the file to write (parent folders are created).
        payload: JSON-like data; other values (dates, paths) are written as their ``str``.

    Returns:
        ``path``.
    """
    return write_text_atomically(path, json.dumps(payload, indent=2, default=str) + "\n")


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`replaced_atomically`: whole, durable, or not at all.

    Args:
        path: the file to write (parent folders are created).
        text: its new content.

    Returns:
        ``path``.
    """
    with replaced_atomically(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` only if the block succeeds.

    Readers (and a task retried after a crash) never see a half-written file: they see the
    previous file or the complete new one. A failure removes the temporary file. The new file
    is flushed to disk before it replaces the old one and the folder after, so a power cut or a
    killed machine cannot leave the name pointing at a file the disk never received. The
    temporaries of ``path`` left by killed writers go first (:func:`remove_stale_temporaries`).
    The crash point ``write:<file name>`` sits between the writing and the replace.

    Args:
        path: the file to replace (parent folders are created).

    Yields:
        The temporary path to write the new content to.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{process_owner()}_", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        crash_point(f"write:{path.name}")  # the fault tests' SIGKILL: a written temporary, never moved in
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` that :func:`replaced_atomically` writers killed mid-write left.

    Only files named as churnops names a temporary of this very target, whose owner is gone
    (:func:`churnops.processes.owner_is_gone`): a live writer's temporary, one of another host
    and any other file stay.

    Args:
        path: the target file.

    Returns:
        The temporaries removed.
    """
    prefix = f".{path.name}."
    owned = re.compile(rf"({OWNER_PATTERN})_[A-Za-z0-9_]+")
    removed = []
    for candidate in path.parent.glob(glob.escape(prefix) + "*.tmp"):
        match = owned.fullmatch(candidate.name[len(prefix) : -len(".tmp")])
        if match and owner_is_gone(match.group(1)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _fsync(path: str | Path) -> None:
    # A read-only descriptor suffices for fsync on Linux, for a file and for a folder.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def atomic_parquet_writer(path: Path, schema: pa.Schema, **options: Any) -> Iterator[pq.ParquetWriter]:
    """A ``pyarrow.parquet.ParquetWriter`` on a temporary file that replaces ``path`` only on success.

    Readers never see a half-written file, and a failure leaves the previous file (if any) in
    place. ``options`` go to the writer; ``store_schema=False`` (simulated days) keeps the Arrow
    schema out of the footer, so readers see plain string columns although they are written
    dictionary-encoded.

    Args:
        path: the Parquet file to replace.
        schema: the Arrow schema of the tables written.
        **options: keyword arguments of ``pyarrow.parquet.ParquetWriter``.

    Yields:
        The open writer; it is closed when the block ends.
    """
    import pyarrow.parquet as pq

    with replaced_atomically(path) as temporary:
        writer = pq.ParquetWriter(temporary, schema, **options)
        try:
            yield writer
        finally:
            writer.close()


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (without its index) as Parquet, replacing ``path`` only when complete.

    Args:
        frame: the rows to write.
        path: the Parquet file (parent folders are created).
    """
    with replaced_atomically(path) as temporary:
        frame.to_parquet(temporary, index=False)


def quarantine(source: Source, findings: list[Finding], destination: Path, context: dict) -> Path:
    """Record a rejected file in ``destination``: a ``reason.json`` and, where safe, a copy of its bytes, untouched.

    Only a regular file is copied, read through :func:`~churnops.data.admission.open_regular` (a
    link is never followed), and not when a finding's rule is in
    :data:`~churnops.data.admission.RECORD_ONLY_RULES` (not a regular file; over
    ``validation.max_file_bytes``, which no copy should double). Otherwise ``reason.json`` is the
    record: it says what the name is (``kind``), with neither a copy nor a SHA-256 of what it points at.

    Args:
        source: the rejected source.
        findings: why it was rejected.
        destination: the quarantine folder (created).
        context: more keys for ``reason.json`` (the step, the run, the message).

    Returns:
        ``destination``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    path = Path(source.path)
    kind, copied, sha256 = file_kind(path), None, None
    if kind == REGULAR_FILE and not any(f.rule in RECORD_ONLY_RULES for f in findings):
        try:
            with open_regular(path) as raw, replaced_atomically(destination / path.name) as temporary:
                sha256 = _copy_hashing(raw, temporary)
            copied = destination / path.name
        except NotRegularFileError as exc:  # replaced by a link, FIFO or device since the check
            kind = exc.kind
        except FileNotFoundError:
            kind = "missing"
    reason = {
        "source": source.name,
        "path": str(path),
        "kind": kind,
        "sha256": sha256,
        "copy": str(copied) if copied else None,
        "findings": [asdict(f) for f in findings],
        **context,
    }
    write_json(destination / "reason.json", reason)
    return destination


def _copy_hashing(raw: BinaryIO, target: Path) -> str:
    # One pass: the copy's bytes are the bytes hashed.
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for block in iter(lambda: raw.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()
