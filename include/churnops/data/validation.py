"""Checks on raw sources: the rules a source or a day's batch must pass.

Each check yields :class:`Finding` objects that name the source, the column and the
rule; any finding rejects the source. Callers quarantine a rejected file
(:func:`churnops.data.storage.quarantine`: copied, untouched, beside a ``reason.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from churnops.config import ChurnopsConfig, Source
from churnops.data.admission import admission_findings, is_regular_file
from churnops.data.findings import Finding, shape_findings
from churnops.data.sources import SourceReadError, csv_cut_short, iter_source, open_source, read_source
from churnops.data.tally import Tally, tally_findings

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "cut_short_findings",
    "probe_source",
    "validate_chunks",
    "validate_frame",
    "validate_source",
    "validate_source_in_chunks",
]


def validate_frame(frame: pd.DataFrame, source: Source, config: ChurnopsConfig) -> list[Finding]:
    """All rule violations of one raw (untyped) source frame; empty when it passes.

    Args:
        frame: the source as read (:func:`~churnops.data.sources.read_source`).
        source: the source the frame was read from.
        config: the dataset and its validation rules.

    Returns:
        The findings.
    """
    return validate_chunks(lambda: [frame], source, config)


def validate_chunks(
    chunks: Callable[[], Iterable[pd.DataFrame]],
    source: Source,
    config: ChurnopsConfig,
    known: dict[str, np.ndarray] | None = None,
    *,
    unique_ids: bool = True,
) -> list[Finding]:
    """All rule violations of a raw source read in chunks: the findings of the whole frame.

    Every rule is a count, a share or a set that adds up across chunks; ids are tracked by a
    64-bit hash of each value (8 bytes a row), so a repeated id is found across chunks without
    holding the ids themselves. ``chunks`` is called once, and a second time only to name
    examples of repeated ids.

    Args:
        chunks: reads the source (again, on each call) as raw chunks.
        source: the source the chunks are read from.
        config: the dataset and its validation rules.
        known: the missing masks of the chunk just yielded, as its reader fills them
            (:func:`~churnops.data.sources.iter_source`'s ``masks``), if any.
        unique_ids: judge the id rules (:func:`~churnops.data.tally.tally_findings`).

    Returns:
        The findings; empty when the source passes.
    """
    tally = Tally.for_config(config)
    for chunk in chunks():
        tally.add(chunk, known)
    return tally_findings(tally, source, config, chunks, unique_ids=unique_ids)


def probe_source(source: Source, config: ChurnopsConfig) -> tuple[list[Finding], int]:
    """:func:`shape_findings` of a file and its row count, without reading its rows into frames.

    First :func:`~churnops.data.admission.admission_findings` (a regular file within the size
    limits), then Parquet: the footer only. CSV: the header, then the lines counted in chunks of
    one column (which also finds a file that cannot be decoded or parsed). The row rules (types,
    ranges, nulls, unique ids, labels) need the rows: :class:`Tally` gathers them as the rows are read.

    Args:
        source: the file to probe.
        config: the dataset and its validation rules.

    Returns:
        The findings (a file that cannot be read is a ``readable`` finding) and the row count
        (0 when unreadable).
    """
    import pyarrow.parquet as pq

    path = Path(source.path)
    refused = admission_findings(source, config)
    if refused:
        return refused, 0
    try:
        with open_source(source) as raw:
            if source.file_format == "parquet":
                try:
                    handle = pq.ParquetFile(raw)
                except Exception as exc:  # pyarrow raises several types for a damaged file
                    raise SourceReadError(source.name, f"unreadable parquet file {path}: {exc}") from exc
                index = {
                    c
                    for c in (handle.schema_arrow.pandas_metadata or {}).get("index_columns", [])
                    if isinstance(c, str)
                }
                columns = [c for c in handle.schema_arrow.names if c not in index]
                rows = handle.metadata.num_rows
            else:
                try:
                    columns = list(pd.read_csv(raw, dtype=str, nrows=0, encoding="utf-8").columns)
                except pd.errors.EmptyDataError:
                    columns = []
        if source.file_format != "parquet":
            rows = sum(len(chunk) for chunk in iter_source(source, 1 << 20, columns[:1])) if columns else 0
    except SourceReadError as exc:
        return [Finding(source.name, None, exc.rule, str(exc).split(": ", 1)[-1])], 0
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        return [Finding(source.name, None, "readable", f"unreadable csv file {path}: {exc}")], 0
    return cut_short_findings(source) + shape_findings(columns, rows, source, config), rows


def cut_short_findings(source: Source) -> list[Finding]:
    """A CSV file cut short (:func:`~churnops.data.sources.csv_cut_short`) as a ``truncated`` finding."""
    path = Path(source.path)
    if source.file_format != "csv" or not is_regular_file(path):
        return []
    why = csv_cut_short(path)
    return [Finding(source.name, None, "truncated", why)] if why else []


def validate_source(source: Source, config: ChurnopsConfig) -> tuple[pd.DataFrame, list[Finding]]:
    """Read and check one source; an unreadable file is a finding, not a crash.

    A file :func:`~churnops.data.admission.admission_findings` refuses is not read.

    Args:
        source: the file to check.
        config: the dataset and its validation rules.

    Returns:
        The frame as read (empty when unreadable) and its findings.
    """
    refused = admission_findings(source, config)
    if refused:
        return pd.DataFrame(), refused
    try:
        frame = read_source(source)
    except SourceReadError as exc:
        return pd.DataFrame(), [Finding(source.name, None, exc.rule, str(exc).split(": ", 1)[-1])]
    return frame, cut_short_findings(source) + validate_frame(frame, source, config)


def validate_source_in_chunks(
    source: Source, config: ChurnopsConfig, chunk_rows: int, *, unique_ids: bool = True
) -> list[Finding]:
    """:func:`validate_source`'s findings, reading the file ``chunk_rows`` rows at a time (no frame returned).

    A file :func:`~churnops.data.admission.admission_findings` refuses is not read.

    Args:
        source: the file to check.
        config: the dataset and its validation rules.
        chunk_rows: rows read at a time.
        unique_ids: judge the id rules (:func:`~churnops.data.tally.tally_findings`).

    Returns:
        The findings; empty when the source passes.
    """
    refused = admission_findings(source, config)
    if refused:
        return refused
    known: dict = {}  # the reader's missing masks of each chunk
    try:
        return cut_short_findings(source) + validate_chunks(
            lambda: iter_source(source, chunk_rows, unique_text=(config.dataset.id_column,), masks=known),
            source,
            config,
            known,
            unique_ids=unique_ids,
        )
    except SourceReadError as exc:
        return [Finding(source.name, None, exc.rule, str(exc).split(": ", 1)[-1])]
