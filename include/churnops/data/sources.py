"""Reading raw sources (whole or in chunks), merging them, and the deterministic holdout split.

Raw files are only ever read. Every function here returns data; writing snapshots
is left to :mod:`churnops.training.steps`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from churnops.config import ChurnopsConfig, Source
from churnops.data.admission import NotRegularFileError, file_sha256, open_regular
from churnops.data.parquet import iter_parquet, read_parquet
from churnops.data.values import as_text_series
from churnops.errors import ChurnopsInputError

__all__ = [
    "SPLIT_COLUMN",
    "SourceReadError",
    "assign_split",
    "csv_cut_short",
    "iter_source",
    "label_vector",
    "merge_sources",
    "open_source",
    "read_source",
    "sources_digest",
]

SPLIT_COLUMN = "churnops_split"


class SourceReadError(ChurnopsInputError):
    """A raw source could not be read as a table.

    Args:
        source: the source's name (kept as ``self.source``).
        message: what went wrong.
        rule: the rule a finding made of it names (kept as ``self.rule``): ``readable``, or
            ``regular_file`` for a name that is not a regular file.
    """

    def __init__(self, source: str, message: str, rule: str = "readable") -> None:
        super().__init__(f"source {source!r}: {message}")
        self.source = source
        self.rule = rule


def read_source(source: Source) -> pd.DataFrame:
    """Read a source as strings (CSV) or as stored (Parquet), without altering it.

    CSV cells are kept as text so that type checks can tell an unparsable value from a
    blank one; :func:`coerce_types` does the conversion. Only a regular file is read
    (:func:`~churnops.data.admission.open_regular`).

    Returns:
        The table; an empty frame for an empty CSV file.

    Raises:
        SourceReadError: the file is missing, not a regular file, or cannot be read as CSV or Parquet.
    """
    path = Path(source.path)
    raw = open_source(source)
    try:
        with raw:
            if source.file_format == "parquet":
                return read_parquet(raw)
            return pd.read_csv(raw, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise SourceReadError(source.name, f"unreadable {source.file_format} file {path}: {exc}") from exc


def csv_cut_short(path: Path, tail_bytes: int = 1 << 16) -> str | None:
    """Why a CSV file looks cut short (a write interrupted, a partial copy), or None.

    Its last line has fewer fields than the header *and* no line end. pandas would read such a
    line as a row whose missing cells are blank, so the damage would pass as a few nulls. Only
    the first and last ``tail_bytes`` are read. No claim is made where it cannot be told from a
    complete file: a final line end, a last line with a quote (it may close a field spanning
    lines), a header or last line longer than ``tail_bytes``, or lines that csv cannot split.

    Args:
        path: a CSV file.
        tail_bytes: how many bytes to read at each end.

    Returns:
        A one-line explanation, or None when the file does not look cut short.
    """
    import csv

    with open_regular(path) as handle:
        head = handle.read(tail_bytes)
        size = handle.seek(0, 2)
        handle.seek(max(0, size - tail_bytes))
        tail = handle.read()
    if not tail or tail.endswith((b"\n", b"\r")) or not tail.strip(b" \t\x1a"):
        return None
    ends = max(tail.rfind(b"\n"), tail.rfind(b"\r"))
    first_end = min((i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0), default=-1)
    if first_end < 0 or (ends < 0 and size > tail_bytes):
        return None  # a single line, or a last line longer than we look at
    header, last = head[:first_end], tail[ends + 1 :]
    if b'"' in last or not last.strip(b" \t\x1a"):
        return None
    try:
        expected, found = (
            len(next(csv.reader([line.decode("utf-8", errors="replace")]), [])) for line in (header, last)
        )
    except csv.Error:
        return None
    if found >= expected:
        return None
    return f"its last line has {found} of {expected} fields and no line end: the file was cut short"


def iter_source(
    source: Source,
    chunk_rows: int,
    columns: list[str] | None = None,
    start: int = 0,
    stop: int | None = None,
    unique_text: tuple[str, ...] = (),
    masks: dict[str, np.ndarray] | None = None,
) -> Iterator[pd.DataFrame]:
    """:func:`read_source` in chunks of at most ``chunk_rows`` rows, so a day of any size reads in bounded memory.

    Rows ``[start, stop)`` of the file (all by default) are cut into chunks of exactly
    ``chunk_rows`` rows, the last one shorter, whatever the file's row groups: the chunks,
    concatenated, are that slice of the frame :func:`read_source` returns (restricted to
    ``columns`` when given; a column missing from the file is an error). A shard of a day that
    starts at a multiple of ``chunk_rows`` therefore gets exactly the chunks a whole-file read
    gives for those rows. Parquet skips the row groups before ``start``; CSV skips its lines
    unparsed. An empty file yields nothing.

    Args:
        source: the file to read.
        chunk_rows: rows per chunk (at least 1).
        columns: the columns to read (default: all).
        start: first row of the slice.
        stop: row after the slice's last (default: the end of the file).
        unique_text: text columns whose values are (mostly) distinct, such as the id: Parquet
            gives each cell its own string instead of looking every one up to share repeated
            ones, which only costs time when nothing repeats (same frame either way).
        masks: when given, filled before each chunk is yielded with the
            :func:`~churnops.data.values.missing_mask` of those of its columns whose masks the
            reader knows without looking at every cell (Parquet text columns read through their
            dictionaries; none for CSV), for :meth:`~churnops.data.tally.Tally.add` and
            :func:`~churnops.data.values.coerce_types` of the chunk to reuse.

    Yields:
        Frames of ``chunk_rows`` rows (the last one shorter), indexed by row number in the file.

    Raises:
        ValueError: ``chunk_rows`` is below 1 or ``[start, stop)`` is not a row range.
        SourceReadError: the file is missing, not a regular file, or cannot be read (a requested
            column it lacks included).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad row range [{start}, {stop})")
    path = Path(source.path)
    raw = open_source(source)
    try:
        with raw:
            if source.file_format == "parquet":
                yield from iter_parquet(raw, chunk_rows, columns, start, stop, unique_text, masks)
                return
            if masks is not None:
                masks.clear()
            yield from _iter_csv(raw, chunk_rows, columns, start, stop)
    except pd.errors.EmptyDataError:
        return
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise SourceReadError(source.name, f"unreadable {source.file_format} file {path}: {exc}") from exc


def open_source(source: Source) -> BinaryIO:
    """The source's file, opened by :func:`~churnops.data.admission.open_regular` (only a regular file).

    Raises:
        SourceReadError: the file is missing (rule ``readable``) or not a regular file (``regular_file``).
    """
    path = Path(source.path)
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise SourceReadError(source.name, f"file not found: {path}") from None
    except NotRegularFileError as exc:
        raise SourceReadError(source.name, str(exc), rule="regular_file") from exc


def _iter_csv(
    raw: BinaryIO, chunk_rows: int, columns: list[str] | None, start: int, stop: int | None
) -> Iterator[pd.DataFrame]:
    lines = None if stop is None else stop - start
    if lines == 0:
        return
    reader = pd.read_csv(
        raw,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8",
        chunksize=chunk_rows,
        usecols=columns,
        skiprows=range(1, start + 1) if start else None,
        nrows=lines,
    )
    with reader:
        for chunk in reader:
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            yield chunk


def merge_sources(frames: dict[str, pd.DataFrame], id_column: str) -> tuple[pd.DataFrame, dict]:
    """Inner-join typed sources on the id; report ids each source loses in the join.

    Args:
        frames: typed sources by name, joined in this order.
        id_column: the id column every source has.

    Returns:
        The merged frame (sorted by id, so row order never depends on file order) and a
        report ``{source: {"rows", "unmatched", "unmatched_fraction", "unmatched_sample"}}``.

    Raises:
        ValueError: a source repeats a column (other than the id) of an earlier one.
        pandas.errors.MergeError: an id repeats within a source (the join is one-to-one).
    """
    names = list(frames)
    merged = frames[names[0]]
    for name in names[1:]:
        overlap = (set(frames[name].columns) & set(merged.columns)) - {id_column}
        if overlap:
            raise ValueError(f"source {name!r} repeats columns {sorted(overlap)} of an earlier source")
        merged = merged.merge(frames[name], on=id_column, how="inner", validate="one_to_one")
    kept = set(merged[id_column])
    report = {}
    for name, frame in frames.items():
        lost = sorted(set(frame[id_column]) - kept)
        report[name] = {
            "rows": int(len(frame)),
            "unmatched": len(lost),
            "unmatched_fraction": round(len(lost) / max(len(frame), 1), 6),
            "unmatched_sample": lost[:10],
        }
    merged = merged.sort_values(id_column, kind="mergesort").reset_index(drop=True)
    return merged, report


def assign_split(ids: pd.Series, test_fraction: float, salt: str) -> pd.Series:
    """``"test"`` or ``"train"`` per id, from a SHA-256 of ``salt:id``.

    The same id lands in the same split on every run and machine, whatever the row order
    or the other rows, so a holdout customer never leaks into a later training set.

    Args:
        ids: the id column.
        test_fraction: the expected share of ``"test"``.
        salt: prefix of every hashed id (the dataset's name).

    Returns:
        ``"test"`` or ``"train"`` for each id, on ``ids``' index.
    """

    def bucket(value: object) -> float:
        digest = hashlib.sha256(f"{salt}:{value}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    buckets = ids.map(bucket).to_numpy()
    return pd.Series(np.where(buckets < test_fraction, "test", "train"), index=ids.index)


def label_vector(frame: pd.DataFrame, config: ChurnopsConfig) -> np.ndarray:
    """1 where the target equals the positive label (compared as str), else 0.

    Args:
        frame: rows with the target column.
        config: the target column and the positive label.

    Returns:
        An int64 array, one value per row (a missing target is 0).
    """
    target = as_text_series(frame[config.dataset.target])
    return (target == config.dataset.positive_label).to_numpy(dtype=np.int64)


def sources_digest(config: ChurnopsConfig) -> str:
    """One SHA-256 over every source file's name and content hash: the dataset's identity."""
    parts = [f"{s.name}:{file_sha256(s.path)}" for s in config.dataset.sources]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
