"""Where churnops keeps files: day partitions, atomic writers, JSON records and the quarantine.

Every file churnops writes goes through :func:`replaced_atomically`: a temporary file beside the
target, flushed to disk, then moved into place, so a reader (or a retry after a crash) sees the
previous file or the complete new one, never half of either.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.config import Source, churnops_home
from churnops.data.sources import file_sha256

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnops.data.findings import Finding


__all__ = [
    "atomic_parquet_writer",
    "partition",
    "quarantine",
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
    killed machine cannot leave the name pointing at a file the disk never received.

    Yields:
        The temporary path to write the new content to.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync(path.parent)


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
    """Copy the offending file (bytes untouched) and a ``reason.json`` into ``destination``.

    Args:
        source: the rejected source (a missing file is recorded without a copy).
        findings: why it was rejected.
        destination: the quarantine folder (created).
        context: more keys for ``reason.json`` (the step, the run, the message).

    Returns:
        ``destination``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    path = Path(source.path)
    copied = None
    if path.is_file():
        copied = destination / path.name
        with replaced_atomically(copied) as temporary:
            shutil.copyfile(path, temporary)
    reason = {
        "source": source.name,
        "path": str(path),
        "sha256": file_sha256(path) if path.is_file() else None,
        "copy": str(copied) if copied else None,
        "findings": [asdict(f) for f in findings],
        **context,
    }
    write_json(destination / "reason.json", reason)
    return destination
