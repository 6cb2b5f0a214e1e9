"""Admitting a raw file before any of its rows is parsed: a regular file, within the size limits.

Raw files come from outside churnops (a producer's drop folder, a config's sources), so what a
name points at is not trusted:

- Only a regular file is read. A symbolic link, FIFO, socket or device is refused (rule
  ``regular_file``): ``lstat`` tells what the name is, and every read opens it through
  :func:`open_regular`, which follows no link and checks the opened descriptor, so a name
  swapped for a link after the check is refused too. Opening never waits on a FIFO.
- The ``validation.max_*`` limits bound what parsing the file could cost, judged before any row
  is parsed: its size (``lstat``), its columns (the CSV header, read with a bounded read, or the
  Parquet footer), its longest line (a streaming scan that holds one block at a time) and a
  Parquet file's uncompressed size (the row groups' sizes in its footer).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from churnops.config import ChurnopsConfig, Source, ValidationConfig
from churnops.data.findings import Finding
from churnops.errors import ChurnopsInputError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "RECORD_ONLY_RULES",
    "REGULAR_FILE",
    "NotRegularFileError",
    "admission_findings",
    "file_kind",
    "file_sha256",
    "is_regular_file",
    "longest_line",
    "open_regular",
]

REGULAR_FILE = "regular file"
"""What :func:`file_kind` says of a regular file."""

RECORD_ONLY_RULES = frozenset({"regular_file", "max_file_bytes"})
"""Rules whose rejected file is quarantined as a record only, neither copied nor hashed: what is not
a regular file (its target is never read) and a file over ``validation.max_file_bytes``."""

SCAN_BLOCK_BYTES = 1 << 18
"""Bytes :func:`longest_line` reads at a time: its memory, whatever the file's lines (small enough to stay in cache)."""

_KINDS = {
    stat.S_IFLNK: "symbolic link",
    stat.S_IFIFO: "FIFO",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
    stat.S_IFDIR: "directory",
    stat.S_IFREG: REGULAR_FILE,
}


class NotRegularFileError(ChurnopsInputError):
    """A raw file's name is not a regular file (a link, FIFO, socket, device or folder): it is not read.

    Args:
        path: the name (kept as ``self.path``).
        kind: what it is, as :func:`file_kind` says (kept as ``self.kind``).
    """

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is a {kind}, not a regular file: it is not read")
        self.path = path
        self.kind = kind


def file_kind(path: str | Path) -> str:
    """What a name is, without following a link: ``regular file``, ``FIFO``, ``character device``…

    Args:
        path: the name.

    Returns:
        ``regular file``, ``symbolic link to '<target>'``, ``FIFO``, ``character device``,
        ``block device``, ``socket``, ``directory``, or ``missing``.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    kind = _KINDS.get(stat.S_IFMT(mode), "special file")
    if stat.S_ISLNK(mode):
        try:
            kind += f" to {os.readlink(path)!r}"
        except OSError:  # removed since; what it pointed at is unknown
            pass
    return kind


def is_regular_file(path: str | Path) -> bool:
    """Whether the name itself (a link is not followed) is a regular file; False when it is missing."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading, binary; refuse anything else without reading it.

    The name is checked with ``lstat``, opened with ``O_NOFOLLOW | O_NONBLOCK`` (a final symbolic
    link fails the open, and a FIFO cannot make it wait for a writer), and what the descriptor
    opened is checked to be a regular file, so a name replaced by a link, FIFO or device between
    the check and the open is refused as well. Every read goes through the returned file.

    Args:
        path: the file.

    Returns:
        The open file (close it, e.g. with ``with``).

    Raises:
        NotRegularFileError: the name is a link, FIFO, socket, device or folder.
        FileNotFoundError: there is no such name.
    """
    path = Path(path)
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise NotRegularFileError(path, file_kind(path))
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the lstat
            raise NotRegularFileError(path, file_kind(path)) from exc
        raise
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):  # replaced by a FIFO or a device since the lstat
        os.close(descriptor)
        raise NotRegularFileError(path, _KINDS.get(stat.S_IFMT(mode), "special file"))
    os.set_blocking(descriptor, True)  # O_NONBLOCK only served the open
    return os.fdopen(descriptor, "rb")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a regular file's bytes, as hex (read a mebibyte at a time; a link is not followed).

    Raises:
        NotRegularFileError: the name is not a regular file.
    """
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def admission_findings(source: Source, config: ChurnopsConfig) -> list[Finding]:
    """Why a raw file may not be read at all: not a regular file, or over a ``validation.max_*`` limit.

    Judged before any row is parsed, in this order, stopping at the first broken rule:
    ``regular_file`` (``lstat``), ``max_file_bytes`` (its size), then for a CSV file
    ``max_line_bytes`` and ``max_columns`` from its first line (a bounded read) and
    ``max_line_bytes`` over every line (:func:`longest_line`), for a Parquet file
    ``max_columns`` and ``max_parquet_uncompressed_bytes`` from its footer. A missing file or
    a damaged footer is left to the reader, which reports it (rule ``readable``).

    Args:
        source: the file and its format.
        config: ``validation``'s limits.

    Returns:
        At most one finding; none when the file may be read.
    """
    path, limits = Path(source.path), config.validation
    try:
        named = os.lstat(path)
        if not stat.S_ISREG(named.st_mode):
            raise NotRegularFileError(path, file_kind(path))
        if named.st_size > limits.max_file_bytes:
            return [_over(source, "max_file_bytes", f"{named.st_size:,} bytes", limits.max_file_bytes)]
        with open_regular(path) as raw:
            if source.file_format == "parquet":
                return _parquet_findings(raw, source, limits)
            return _csv_findings(raw, source, limits)
    except NotRegularFileError as exc:
        return [Finding(source.name, None, "regular_file", str(exc))]
    except FileNotFoundError:
        return []


def longest_line(raw: BinaryIO, block_bytes: int = SCAN_BLOCK_BYTES) -> tuple[int, int]:
    """The longest line of a file (bytes, without its end) and where it starts, in one streaming pass.

    A line ends at ``\\n`` or ``\\r``, as for pandas' CSV reader. Memory stays at a block of
    ``block_bytes`` (and its line-end positions), however long a line is.

    Args:
        raw: the file, read from its current position to its end.
        block_bytes: bytes read at a time.

    Returns:
        ``(length, offset)``: the longest line's length in bytes and the byte offset it starts
        at (the first such line); ``(0, 0)`` for an empty file.
    """
    import numpy as np

    longest, longest_at, run_at, position = 0, 0, 0, 0
    while block := raw.read(block_bytes):
        ends = _line_ends(np.frombuffer(block, dtype=np.uint8))
        if len(ends):
            # lengths of the lines ending in this block: the first continues the run from earlier blocks
            starts = np.concatenate(([run_at], position + ends[:-1] + 1))
            lengths = position + ends - starts
            best = int(np.argmax(lengths))
            if lengths[best] > longest:
                longest, longest_at = int(lengths[best]), int(starts[best])
            run_at = position + int(ends[-1]) + 1
        position += len(block)
    if position - run_at > longest:  # a last line without a line end
        longest, longest_at = position - run_at, run_at
    return longest, longest_at


def _line_ends(block: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.flatnonzero((block == ord("\n")) | (block == ord("\r")))


def _csv_findings(raw: BinaryIO, source: Source, limits: ValidationConfig) -> list[Finding]:
    # The header: at most max_line_bytes and its line end are read, whatever the first line's length.
    head = raw.read(limits.max_line_bytes + 1)
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    if not ends and len(head) > limits.max_line_bytes:
        return [_over(source, "max_line_bytes", "the header line is longer", limits.max_line_bytes)]
    header = head[: min(ends)] if ends else head
    try:
        columns = len(next(csv.reader([header.decode("utf-8", errors="replace")]), []))
    except csv.Error:
        columns = 0  # a header csv cannot split is the reader's to report
    if columns > limits.max_columns:
        return [_over(source, "max_columns", f"{columns:,} columns in the header", limits.max_columns)]
    raw.seek(0)
    length, offset = longest_line(raw)
    if length > limits.max_line_bytes:
        return [
            _over(source, "max_line_bytes", f"a line of {length:,} bytes (from byte {offset:,})", limits.max_line_bytes)
        ]
    return []


def _parquet_findings(raw: BinaryIO, source: Source, limits: ValidationConfig) -> list[Finding]:
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(raw)  # the footer only
    except Exception:  # a damaged file is the reader's to report (pyarrow raises several types)
        return []
    if metadata.num_columns > limits.max_columns:
        return [_over(source, "max_columns", f"{metadata.num_columns:,} columns", limits.max_columns)]
    # What the writer declares its pages hold once decompressed: what reading them must allocate.
    uncompressed = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if uncompressed > limits.max_parquet_uncompressed_bytes:
        return [
            _over(
                source,
                "max_parquet_uncompressed_bytes",
                f"{uncompressed:,} bytes uncompressed (its footer's row groups)",
                limits.max_parquet_uncompressed_bytes,
            )
        ]
    return []


def _over(source: Source, rule: str, found: str, limit: int) -> Finding:
    return Finding(source.name, None, rule, f"{found}, above the limit {rule} {limit:,}: not read")
