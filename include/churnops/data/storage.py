"""Where churnops keeps files: day partitions, atomic writers, JSON records and the quarantine.

Readers never see a half-written file: every writer here writes a temporary file beside the
target and moves it into place only when complete.
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
    from churnops.data.validation import Finding


__all__ = [
    "atomic_parquet_writer",
    "partition",
    "quarantine",
    "replaced_atomically",
    "write_json",
    "write_parquet",
]


def partition(kind: str, day: date) -> Path:
    return churnops_home() / kind / f"date={day.isoformat()}"


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON (parents created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` only if the block succeeds.

    Readers (and a task retried after a crash) never see a half-written file: they see the
    previous file or the complete new one. A failure removes the temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_parquet_writer(path: Path, schema: Any, **options: Any) -> Iterator[Any]:
    """A ``pyarrow.parquet.ParquetWriter`` on a temporary file that replaces ``path`` only on success.

    Readers never see a half-written file, and a failure leaves the previous file (if any) in
    place. ``options`` go to the writer; ``store_schema=False`` (simulated days) keeps the Arrow
    schema out of the footer, so readers see plain string columns although they are written
    dictionary-encoded.
    """
    import pyarrow.parquet as pq

    with replaced_atomically(path) as temporary:
        writer = pq.ParquetWriter(temporary, schema, **options)
        try:
            yield writer
        finally:
            writer.close()


def write_parquet(frame: Any, path: Path) -> None:

    with replaced_atomically(path) as temporary:
        frame.to_parquet(temporary, index=False)


def quarantine(source: Source, findings: list[Finding], destination: Path, context: dict) -> Path:
    """Copy the offending file (bytes untouched) and a ``reason.json`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    path = Path(source.path)
    copied = None
    if path.is_file():
        copied = destination / path.name
        shutil.copyfile(path, copied)
    reason = {
        "source": source.name,
        "path": str(path),
        "sha256": file_sha256(path) if path.is_file() else None,
        "copy": str(copied) if copied else None,
        "findings": [asdict(f) for f in findings],
        **context,
    }
    (destination / "reason.json").write_text(json.dumps(reason, indent=2) + "\n", encoding="utf-8")
    return destination
