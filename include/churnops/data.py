"""Reading raw sources, merging them, cleaning and the deterministic holdout split.

Raw files are only ever read. Every function here returns data; writing snapshots
is left to :mod:`churnops.pipeline`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.config import ChurnopsConfig, DatasetConfig, Source
from churnops.errors import ChurnopsInputError

__all__ = [
    "NULL_TOKENS",
    "SPLIT_COLUMN",
    "SourceReadError",
    "as_text",
    "as_text_series",
    "assign_split",
    "atomic_parquet_writer",
    "blank_to_na",
    "coerce_types",
    "csv_cut_short",
    "file_sha256",
    "is_text",
    "iter_source",
    "replaced_atomically",
    "label_vector",
    "merge_sources",
    "missing_mask",
    "read_source",
    "sources_digest",
    "text_codes",
]

SPLIT_COLUMN = "churnops_split"
NULL_TOKENS = ["", " ", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


class SourceReadError(ChurnopsInputError):
    """A raw source could not be read as a table."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"source {source!r}: {message}")
        self.source = source


def read_source(source: Source) -> pd.DataFrame:
    """Read a source as strings (CSV) or as stored (Parquet), without altering it.

    CSV cells are kept as text so that type checks can tell an unparsable value from a
    blank one; :func:`coerce_types` does the conversion.
    """
    path = Path(source.path)
    if not path.is_file():
        raise SourceReadError(source.name, f"file not found: {path}")
    try:
        if source.file_format == "parquet":
            return _read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
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
    """
    import csv

    with path.open("rb") as handle:
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
    source: Source, chunk_rows: int, columns: list[str] | None = None, start: int = 0, stop: int | None = None
) -> Iterator[pd.DataFrame]:
    """:func:`read_source` in chunks of at most ``chunk_rows`` rows, so a day of any size reads in bounded memory.

    Rows ``[start, stop)`` of the file (all by default) are cut into chunks of exactly
    ``chunk_rows`` rows, the last one shorter, whatever the file's row groups: the chunks,
    concatenated, are that slice of the frame :func:`read_source` returns (restricted to
    ``columns`` when given; a column missing from the file is an error). A shard of a day that
    starts at a multiple of ``chunk_rows`` therefore gets exactly the chunks a whole-file read
    gives for those rows. Parquet skips the row groups before ``start``; CSV skips its lines
    unparsed. An empty file yields nothing.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad row range [{start}, {stop})")
    path = Path(source.path)
    if not path.is_file():
        raise SourceReadError(source.name, f"file not found: {path}")
    try:
        if source.file_format == "parquet":
            yield from _iter_parquet(path, chunk_rows, columns, start, stop)
            return
        lines = None if stop is None else stop - start
        if lines == 0:
            return
        reader = pd.read_csv(
            path,
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
    except pd.errors.EmptyDataError:
        return
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise SourceReadError(source.name, f"unreadable {source.file_format} file {path}: {exc}") from exc


def _iter_parquet(
    path: Path, chunk_rows: int, columns: list[str] | None, start: int = 0, stop: int | None = None
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    probe = pq.ParquetFile(path)
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
    groups, offset = [], 0
    for group in range(probe.metadata.num_row_groups):
        size = probe.metadata.row_group(group).num_rows
        if offset + size > start and offset < stop:
            if not groups:
                skip = start - offset
            groups.append(group)
        offset += size
    dictionary = [c for c in _small_dictionary_columns(probe) if c in columns]
    handle = pq.ParquetFile(path, read_dictionary=dictionary) if dictionary else probe
    # Batches of chunk_rows from the first group, shifted by `skip`, re-cut at chunk boundaries.
    batches = (
        _expand_dictionaries(batch.to_pandas(), dictionary)
        for batch in handle.iter_batches(batch_size=chunk_rows, columns=columns, row_groups=groups)
    )
    position, pending = start, []
    for frame in batches:
        if skip:
            frame, skip = frame.iloc[skip:], max(0, skip - len(frame))
        pending.append(frame)
        while sum(map(len, pending)) >= chunk_rows or (pending and position + sum(map(len, pending)) >= stop):
            chunk = pending[0] if len(pending) == 1 else pd.concat(pending)
            take = min(chunk_rows, stop - position)
            head, rest = chunk.iloc[:take], chunk.iloc[take:]
            head.index = pd.RangeIndex(position, position + take)
            yield head
            position += take
            if position >= stop:
                return
            pending = [rest] if len(rest) else []


DICTIONARY_PAGE_LIMIT = 1 << 16
"""Largest dictionary page (bytes) of a text column that :func:`_read_parquet` decodes via its codes."""


def _read_parquet(path: Path) -> pd.DataFrame:
    """``pd.read_parquet(path)``, faster on dictionary-encoded text columns.

    Such columns (categories written by Arrow, e.g. churnops' simulated days) are read as
    Arrow dictionaries and expanded from their codes, instead of Arrow materialising every
    cell as a string and pandas then deduplicating them: same frame (object columns of
    ``str``, None where missing), about half the time on a million rows.
    """
    import pyarrow.parquet as pq

    columns = _small_dictionary_columns(pq.ParquetFile(path))
    if not columns:
        return pd.read_parquet(path)
    return _expand_dictionaries(pd.read_parquet(path, read_dictionary=columns), columns)


def _expand_dictionaries(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    # The dictionary columns, read as Categoricals, back to object columns of str (None where missing).
    if not columns:
        return frame
    expanded = {}
    for name in frame.columns:
        values = frame[name]
        if name in columns:  # a Categorical; code -1 (missing) picks the appended None
            codes, categories = values.array.codes, values.array.categories.to_numpy(dtype=object)
            values = pd.Series(np.append(categories, None)[codes], index=frame.index, name=name, dtype=object)
        expanded[name] = values
    # One new frame rather than column-by-column assignment, which re-slices blocks each time.
    out = pd.DataFrame(expanded, index=frame.index, copy=False)
    out.columns = frame.columns
    out.attrs = frame.attrs
    return out


def _small_dictionary_columns(handle: object) -> list[str]:
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


def is_text(series: pd.Series) -> bool:
    """Whether :func:`blank_to_na` treats the column as text (object or string dtype)."""
    return series.dtype == object or pd.api.types.is_string_dtype(series)


def text_codes(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text column factorized, with its blank values marked.

    Returns:
        ``(codes, uniques, blank)``: ``pd.factorize``'s codes (-1 for a missing cell) and
        distinct values, and ``blank[code]`` True where that value is blank or a null token
        once stripped (``blank[-1]``, the missing cells, is True too). So ``blank[codes]`` is
        exactly the cells :func:`blank_to_na` turns to None or finds missing.
    """
    # Each distinct value is stripped and compared once, not every cell: a million-row column
    # holds a handful of categories (or unique ids, hashed in C). factorize and isna share
    # pandas' notion of a null, so code -1 is exactly ``series.isna()``.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    blank = np.zeros(len(uniques) + 1, dtype=bool)
    blank[-1] = True
    candidates = _token_candidates(uniques)
    stripped = pd.Series(uniques[candidates], dtype=object).astype("string").str.strip()
    blank[candidates] = stripped.isin(NULL_TOKENS).to_numpy(dtype=bool)
    return codes, uniques, blank


_TOKEN_LENGTH = max(len(token) for token in NULL_TOKENS)
_WHITESPACE = list(
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Exactly the characters ``str.strip()`` removes: ``[chr(c) for c in range(0x110000) if chr(c).isspace()]``
(Unicode 14, Python 3.11; the set has not changed since Unicode 6.3), written out because
computing it costs a third of a second at import."""


def _token_candidates(uniques: np.ndarray) -> np.ndarray | slice:
    """Positions of the distinct values that might strip to a null token (a superset).

    With many distinct values (ids), stripping each in Python costs more than the rest of
    :func:`blank_to_na`; a string longer than every token can only strip to one when it
    starts or ends with whitespace, which Arrow tells for all of them at once.
    """
    everything = slice(0, len(uniques))
    if len(uniques) < 1000:
        return everything
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        text = pa.array(uniques, type=pa.string())
    except (pa.ArrowException, TypeError, ValueError):  # not all str: strip every value
        return everything
    whitespace = pa.array(_WHITESPACE, type=pa.string())
    short = pc.less_equal(pc.utf8_length(text), _TOKEN_LENGTH)
    first = pc.is_in(pc.utf8_slice_codeunits(text, 0, 1), value_set=whitespace)
    last = pc.is_in(pc.utf8_slice_codeunits(text, -1), value_set=whitespace)
    return np.flatnonzero(pc.or_(short, pc.or_(first, last)).to_numpy(zero_copy_only=False))


def missing_mask(series: pd.Series) -> np.ndarray:
    """``blank_to_na(series).isna()`` as a boolean array, without building the new column."""
    if is_text(series):
        codes, _, blank = text_codes(series)
        return blank[codes]
    return series.isna().to_numpy(dtype=bool)


def blank_to_na(series: pd.Series) -> pd.Series:
    """Text cells that are blank or a common null token become None; other dtypes pass."""
    if is_text(series):
        codes, _, blank = text_codes(series)
        return series.where(~blank[codes], None)
    return series


def coerce_types(frame: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """Typed copy of ``frame``: numeric features to float64, ids/categoricals/target to str.

    Blank cells and common null tokens become missing values; values that do not parse as
    numbers also become missing (validation reports them before this is used for training).
    Other columns are copied as they are.
    """
    numeric = set(dataset.numeric_features)
    text = {dataset.id_column, dataset.target, *dataset.categorical_features}
    if frame.columns.has_duplicates:  # the column-by-column build below needs unique names
        raise ValueError(f"repeated column names {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    columns = {}
    for column in frame.columns:
        values = frame[column]
        if column in numeric:
            columns[column] = pd.to_numeric(blank_to_na(values), errors="coerce").astype("float64")
        elif column in text:
            columns[column] = as_text_series(blank_to_na(values))
        else:
            columns[column] = values.copy()
    # Built in one go: assigning column after column into a copy of a Parquet frame splits
    # (and copies) its consolidated blocks again and again.
    out = pd.DataFrame(columns, index=frame.index, copy=False)
    out.columns = frame.columns
    return out


def as_text_series(series: pd.Series) -> pd.Series:
    """``series.map(as_text, na_action="ignore").astype(object)``, without a Python call per cell.

    Columns of ``str`` (what CSV and Parquet give) are returned as they are, since
    :func:`as_text` leaves a string alone; plain numeric and boolean columns are converted
    per distinct value. Anything else (mixed objects, extension dtypes) is mapped cell by
    cell, because distinct objects such as ``1`` and ``True`` can be equal while reading
    differently. Missing cells keep their value.
    """
    dtype = series.dtype
    if pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series.copy()
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        labels = np.array([as_text(value) for value in uniques.tolist()] + [np.nan], dtype=object)
        return pd.Series(labels[codes], index=series.index, name=series.name, dtype=object)
    return series.map(as_text, na_action="ignore").astype(object)


def as_text(value: object) -> str:
    """A cell as text, with integral floats written as integers."""
    # Parquet may store 0/1 flags as ints or floats: 1.0 and 1 must both read "1".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def merge_sources(frames: dict[str, pd.DataFrame], id_column: str) -> tuple[pd.DataFrame, dict]:
    """Inner-join typed sources on the id; report ids each source loses in the join.

    Returns:
        The merged frame (sorted by id, so row order never depends on file order) and a
        report ``{source: {"rows", "unmatched", "unmatched_fraction", "unmatched_sample"}}``.
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
    """

    def bucket(value: object) -> float:
        digest = hashlib.sha256(f"{salt}:{value}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    buckets = ids.map(bucket).to_numpy()
    return pd.Series(np.where(buckets < test_fraction, "test", "train"), index=ids.index)


def label_vector(frame: pd.DataFrame, config: ChurnopsConfig) -> np.ndarray:
    """1 where the target equals the positive label (compared as str), else 0."""
    target = as_text_series(frame[config.dataset.target])
    return (target == config.dataset.positive_label).to_numpy(dtype=np.int64)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sources_digest(config: ChurnopsConfig) -> str:
    """One SHA-256 over every source file's name and content hash: the dataset's identity."""
    parts = [f"{s.name}:{file_sha256(s.path)}" for s in config.dataset.sources]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


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
