"""A simulated day's rows as they are written (Arrow tables) or returned (frames): ids, batch, labels."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from churnops.devtools.generator import Chunk, Prepared

__all__ = ["batch_frame", "batch_table", "dictionary_array", "labels_frame", "labels_table", "row_ids"]


def row_ids(day: date, chunk: Chunk) -> pa.StringArray:
    """``YYYYMMDD-NNNNNNNN`` ids built as bytes (no Python string per row).

    Args:
        day: the day (the ids' prefix).
        chunk: the rows (numbered from ``chunk.start``).

    Returns:
        One id per row; more than eight digits only when the day has that many rows.
    """
    first, size = chunk.start, len(chunk)
    width = max(8, len(str(first + size - 1)))
    prefix = np.frombuffer(f"{day:%Y%m%d}-".encode(), dtype=np.uint8)
    text = np.empty((size, len(prefix) + width), dtype=np.uint8)
    text[:, : len(prefix)] = prefix
    numbers = np.arange(first, first + size, dtype=np.int64)
    for position in range(text.shape[1] - 1, len(prefix) - 1, -1):
        numbers, digit = np.divmod(numbers, 10)
        text[:, position] = digit + ord("0")
    # 32-bit offsets (Arrow's plain string) whenever they fit, i.e. below ~100M rows.
    small = (size + 1) * text.shape[1] < 2**31
    offsets = np.arange(0, (size + 1) * text.shape[1], text.shape[1], dtype=np.int32 if small else np.int64)
    kind = pa.StringArray if small else pa.LargeStringArray
    return kind.from_buffers(size, pa.py_buffer(offsets), pa.py_buffer(text))


def dictionary_array(codes: np.ndarray, categories: np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(categories, type=pa.string()))


def batch_table(prepared: Prepared, day: date, chunk: Chunk) -> pa.Table:
    """The chunk's batch rows (id and features) as an Arrow table of ``prepared.batch_schema``.

    Args:
        prepared: the population.
        day: the day (the ids' prefix).
        chunk: the rows.

    Returns:
        The table; categorical columns are dictionary-encoded.
    """
    arrays = [row_ids(day, chunk)]
    arrays += [pa.array(chunk.numeric[c], type=pa.float64(), from_pandas=True) for c in prepared.numeric]
    arrays += [
        dictionary_array(codes[chunk.source_rows], categories) for codes, categories in prepared.categorical.values()
    ]
    return pa.Table.from_arrays(arrays, schema=prepared.batch_schema)


def labels_table(prepared: Prepared, day: date, chunk: Chunk) -> pa.Table:
    """The chunk's labels (id and target, with the dataset's label values) as an Arrow table of
    ``prepared.labels_schema``; the arguments are :func:`batch_table`'s."""
    labels = np.array([prepared.negative_label, prepared.positive_label], dtype=object)
    return pa.Table.from_arrays(
        [row_ids(day, chunk), dictionary_array(chunk.positive.astype(np.int32), labels)], schema=prepared.labels_schema
    )


def batch_frame(prepared: Prepared, ids: np.ndarray, chunk: Chunk) -> pd.DataFrame:
    """The chunk's batch rows (id and features) as a frame.

    Args:
        prepared: the population.
        ids: the rows' ids (:func:`row_ids`, as an object array).
        chunk: the rows.

    Returns:
        The frame; categories are str, None where missing.
    """
    columns: dict[str, np.ndarray] = {prepared.id_column: ids}
    columns.update(chunk.numeric)
    for column, (codes, categories) in prepared.categorical.items():
        # Code -1 (missing) picks the appended None.
        columns[column] = np.append(categories, [None])[codes[chunk.source_rows]]
    # copy=False also keeps one block per column: consolidating would copy them all.
    return pd.DataFrame(columns, copy=False)


def labels_frame(prepared: Prepared, ids: np.ndarray, chunk: Chunk) -> pd.DataFrame:
    """The chunk's labels (id and target, with the dataset's label values) as a frame.

    Args:
        prepared: the population.
        ids: the rows' ids (a copy is used).
        chunk: the rows.

    Returns:
        The frame.
    """
    labels = np.array([prepared.negative_label, prepared.positive_label], dtype=object)
    # ids.copy(): the frames share the id strings but not the array, so editing one frame
    # in place never edits the other.
    target = labels[chunk.positive.astype(np.intp)]
    return pd.DataFrame({prepared.id_column: ids.copy(), prepared.target: target}, copy=False)
