"""Parquet sources read fast: in row-exact chunks, with ids and small-dictionary text columns converted cheaply.

The frames are the ones ``pd.read_parquet`` would give (object columns of ``str``, None where
missing); only the way Arrow's strings become Python objects differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["DICTIONARY_PAGE_LIMIT", "iter_parquet", "read_parquet"]


def iter_parquet(
    raw: BinaryIO,
    chunk_rows: int,
    columns: list[str] | None,
    start: int = 0,
    stop: int | None = None,
    unique_text: tuple[str, ...] = (),
    masks: dict[str, np.ndarray] | None = None,
) -> Iterator[pd.DataFrame]:
    """Rows ``[start, stop)`` of an open Parquet file in chunks of exactly ``chunk_rows`` rows (the last shorter).

    Only the row groups holding the slice are read; the chunks are re-cut at ``chunk_rows``
    whatever the row groups' sizes (the contract of :func:`~churnops.data.sources.iter_source`).

    Args:
        raw: the open file.
        chunk_rows: rows per chunk.
        columns: the columns to read (None: every data column, not a stored pandas index).
        start: first row of the slice.
        stop: row after the slice's last (None: the end of the file).
        unique_text: text columns of mostly distinct values, converted without deduplicating strings.
        masks: when given, filled before each chunk is yielded (the previous chunk's dropped)
            with :func:`~churnops.data.values.missing_mask` of the chunk's text columns read
            through their dictionaries, found from the codes instead of the cells.

    Yields:
        Frames indexed by row number in the file.

    Raises:
        ValueError: a requested column is not in the file.
    """
    import pyarrow.parquet as pq
    import pyarrow.types as pa_types

    probe = pq.ParquetFile(raw)
    if columns is not None:
        absent = [c for c in columns if c not in probe.schema_arrow.names]
        if absent:
            raise ValueError(f"columns {absent} not in the file")
    if columns is None:  # what pd.read_parquet returns as columns: not a stored pandas index
        index = {c for c in (probe.schema_arrow.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        columns = [c for c in probe.schema_arrow.names if c not in index]
    stop = probe.metadata.num_rows if stop is None else min(stop, probe.metadata.num_rows)
    if start >= stop:
        return
    # The row groups holding [start, stop), and how many rows of the first to skip.
    groups: list[int] = []
    offset = 0
    for group in range(probe.metadata.num_row_groups):
        size = probe.metadata.row_group(group).num_rows
        if offset + size > start and offset < stop:
            if not groups:
                skip = start - offset
            groups.append(group)
        offset += size
    dictionary = [c for c in _small_dictionary_columns(probe) if c in columns]
    handle = pq.ParquetFile(raw, read_dictionary=dictionary) if dictionary else probe
    # Batches of chunk_rows from the first group, shifted by `skip`, re-cut at chunk boundaries.
    text_types = (pa_types.is_string, pa_types.is_large_string)
    plain = [
        c
        for c in unique_text
        if c in columns and c not in dictionary and any(t(probe.schema_arrow.field(c).type) for t in text_types)
    ]
    # Each pending frame goes with the masks of its dictionary and unique text columns (cut and joined alike).
    position, pending = start, []
    for batch in handle.iter_batches(batch_size=chunk_rows, columns=columns, row_groups=groups):
        found: dict[str, np.ndarray] | None = {} if masks is not None else None
        coded = _batch_frame(batch, plain, found)
        frame = _expand_dictionaries(coded, dictionary)
        if found is None:
            found = {}
        else:
            found.update(_dictionary_masks(coded, dictionary))
        if skip:
            frame, found, skip = frame.iloc[skip:], _cut(found, skip, None), max(0, skip - len(frame))
        pending.append((frame, found))
        while sum(len(f) for f, _ in pending) >= chunk_rows or (
            pending and position + sum(len(f) for f, _ in pending) >= stop
        ):
            if len(pending) == 1:
                chunk, found = pending[0]
            else:
                chunk = pd.concat([f for f, _ in pending])
                found = {c: np.concatenate([m[c] for _, m in pending]) for c in pending[0][1]}
            take = min(chunk_rows, stop - position)
            head, rest = chunk.iloc[:take], chunk.iloc[take:]
            head.index = pd.RangeIndex(position, position + take)
            if masks is not None:
                masks.clear()
                masks.update(_cut(found, 0, take))
            yield head
            position += take
            if position >= stop:
                return
            pending = [(rest, _cut(found, take, None))] if len(rest) else []


def _cut(masks: dict[str, np.ndarray], start: int, stop: int | None) -> dict[str, np.ndarray]:
    return {column: mask[start:stop] for column, mask in masks.items()}


def _dictionary_masks(frame: pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    # The dictionary columns are Categoricals here: each distinct value is judged once, then
    # looked up by code (code -1, a missing cell, picks the appended True).
    from churnops.data.values import blank_values

    masks = {}
    for name in columns:
        array = frame[name].array
        blank = blank_values(array.categories.to_numpy(dtype=object))
        masks[name] = np.append(blank, True)[array.codes]
    return masks


def _batch_frame(batch: pa.RecordBatch, plain: list[str], masks: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """``batch.to_pandas()``, with the ``plain`` columns converted without deduplicating their strings.

    Arrow looks every string up in a hash table to share repeated values (worth it for
    categories, wasted on ids, where it costs several times the conversion itself). ``masks``,
    when given, gets the ``plain`` columns' missing masks, found while they are still in Arrow.
    """
    if not plain:
        return batch.to_pandas()
    from churnops.data.values import text_blanks

    rest = batch.drop_columns(plain)
    frame = rest.to_pandas() if rest.num_columns else pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
    for name in plain:
        position = batch.schema.get_field_index(name)
        values = batch.column(position).to_numpy(zero_copy_only=False)
        if masks is not None:
            masks[name] = text_blanks(batch.column(position), values)
        frame.insert(position, name, values)
    return frame


DICTIONARY_PAGE_LIMIT = 1 << 16
"""Largest dictionary page (bytes) of a text column that :func:`read_parquet` decodes via its codes."""


def read_parquet(raw: BinaryIO) -> pd.DataFrame:
    """``pd.read_parquet(raw)``, faster on dictionary-encoded text columns.

    Such columns (categories written by Arrow, e.g. churnops' simulated days) are read as
    Arrow dictionaries and expanded from their codes, instead of Arrow materialising every
    cell as a string and pandas then deduplicating them: same frame (object columns of
    ``str``, None where missing), about half the time on a million rows.
    """
    import pyarrow.parquet as pq

    columns = _small_dictionary_columns(pq.ParquetFile(raw))
    if not columns:
        return pd.read_parquet(raw)
    return _expand_dictionaries(pd.read_parquet(raw, read_dictionary=columns), columns)


def _expand_dictionaries(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    # The dictionary columns, read as Categoricals, back to object columns of str (None where missing).
    if not columns:
        return frame
    expanded = {}
    for name in frame.columns:
        values = frame[name]
        if name in columns:  # a Categorical; code -1 (missing) picks the appended None
            codes, categories = values.array.codes, values.array.categories.to_numpy(dtype=object)
            values = pd.Series(np.append(categories, [None])[codes], index=frame.index, name=name, dtype=object)
        expanded[name] = values
    # One new frame rather than column-by-column assignment, which re-slices blocks each time.
    out = pd.DataFrame(expanded, index=frame.index, copy=False)
    out.columns = frame.columns
    out.attrs = frame.attrs
    return out


def _small_dictionary_columns(handle: pq.ParquetFile) -> list[str]:
    """Plain text data columns whose every row group is dictionary-encoded with a small dictionary."""
    import pyarrow as pa

    schema, metadata = handle.schema_arrow, handle.metadata
    pandas_meta = schema.pandas_metadata or {}
    described = {c.get("field_name"): c for c in pandas_meta.get("columns", [])}
    index = {c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)}
    leaves = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    chosen = []
    for field in schema:
        if field.type not in (pa.string(), pa.large_string()) or field.name in index or field.name not in leaves:
            continue
        # Only what pandas would read as plain object strings under its own name.
        meta = described.get(field.name)
        if meta is not None and (meta.get("name") != field.name or meta.get("numpy_type") != "object"):
            continue
        chunks = [metadata.row_group(g).column(leaves[field.name]) for g in range(metadata.num_row_groups)]
        if chunks and all(
            c.has_dictionary_page
            and c.dictionary_page_offset is not None
            and 0 < c.data_page_offset - c.dictionary_page_offset <= DICTIONARY_PAGE_LIMIT
            for c in chunks
        ):
            chosen.append(field.name)
    return chosen
