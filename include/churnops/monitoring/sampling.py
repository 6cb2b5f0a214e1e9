"""How the two sides of a drift test are drawn and gathered.

Every drift test sees at most ``monitoring.sample_size`` rows per side, drawn with a seeded
sample, so the p-values of a busy day and a quiet day are comparable and a day's numbers can be
reproduced exactly. The reference side is drawn with ``seed`` and the current side with
``seed + 1``, so that the two samples are independent draws even when the frames share rows.
The current side is gathered chunk by chunk (:class:`CurrentSide`), so a day of any size is
read once and never held whole; values are normalised as the model's own coercion does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.config import MonitoringConfig
from churnops.data import as_text, write_parquet, write_text_atomically
from churnops.features import MISSING

__all__ = [
    "CURRENT_SEED_OFFSET",
    "CurrentSide",
    "as_numeric",
    "capped_pair",
    "category_counts",
    "category_label",
    "chunk_quota",
    "current_side",
    "null_fraction",
    "sample_rows",
]


CURRENT_SEED_OFFSET = 1
"""The current side is sampled with ``seed + CURRENT_SEED_OFFSET`` (the reference with ``seed``)."""


def sample_rows(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows of ``frame``: a seeded sample without replacement, or the frame itself.

    Args:
        frame: rows to cap.
        n: the cap.
        seed: seed of the sample; the same frame, ``n`` and seed always give the same rows.

    Returns:
        ``frame`` unchanged when it has at most ``n`` rows, else ``n`` of its rows (original
        index kept, in sampled order).
    """
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, replace=False, random_state=seed)


def capped_pair(
    reference: pd.DataFrame, current: pd.DataFrame, n: int, seed: int, columns: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both sides of a test capped by :func:`sample_rows`: the reference with ``seed``, the current with ``seed + 1``.

    Args:
        reference: the reference rows.
        current: the current rows.
        n: the cap per side.
        seed: the reference side's seed.
        columns: the columns to keep (default: all).

    Returns:
        The capped reference and current rows.

    Raises:
        ValueError: a side lacks one of ``columns``.
    """
    for side, frame in (("reference", reference), ("current", current)):
        absent = [c for c in columns or [] if c not in frame.columns]
        if absent:
            raise ValueError(f"the {side} data lacks columns {absent}")
    ref = sample_rows(reference, n, seed)
    cur = sample_rows(current, n, seed + CURRENT_SEED_OFFSET)
    # The sampled positions depend only on the length, so selecting the columns after sampling
    # picks the same rows while never copying a wide million-row frame.
    if columns is not None:
        ref, cur = ref[columns], cur[columns]
    return ref, cur


def as_numeric(series: pd.Series) -> pd.Series:
    """A column as float64, coerced as the model's ``RawInputCoercer`` does.

    So drift is measured on what the model sees: numbers sent as text are parsed, unparsable
    values and infinities are missing.
    """
    values = series
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    return values.astype("float64").replace([np.inf, -np.inf], np.nan)


def category_label(value: Any) -> str:
    """A categorical cell's label, as the model's coercion of categoricals reads it.

    Missing and blank cells become :data:`~churnops.features.MISSING`, and 1.0 and 1 are the
    same category "1" (Parquet may store flags as floats).
    """
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    text = as_text(value).strip()
    return text if text else MISSING


def category_counts(series: pd.Series) -> pd.Series:
    """Rows per :func:`category_label` of a column (missing cells included), by label.

    Counted first, then the (few) distinct values are labelled: far cheaper than labelling every row.
    """
    # A pandas Categorical also counts the categories it declares but never uses; such a category,
    # absent from both sides, would be a zero column of the table, which chi2_contingency rejects.
    counts = series.value_counts(dropna=False, sort=False)
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = counts[counts > 0]
    if counts.empty:
        return pd.Series(dtype="int64")
    labels = [category_label(value) for value in counts.index]
    return pd.Series(counts.to_numpy(dtype="int64"), index=labels).groupby(level=0).sum()


def null_fraction(values: pd.Series) -> float:
    """The share of missing values; 0.0 for an empty column."""
    return float(values.isna().mean()) if len(values) else 0.0


@dataclass
class CurrentSide:
    """What feature drift needs of the monitored rows, gathered chunk by chunk.

    Category counts and numeric null counts cover every row and add up exactly across chunks
    (and shards); the KS tests, which cannot be merged, see a seeded sample of
    ``monitoring.sample_size`` rows drawn from each chunk in proportion to its size.
    """

    rows: int = 0
    counts: dict[str, pd.Series] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    sample: list[pd.DataFrame] = field(default_factory=list)

    def merge(self, other: CurrentSide) -> CurrentSide:
        """This side followed by ``other`` (e.g. the next shard).

        Returns:
            A new side; neither side is changed.
        """
        counts = {
            c: self.counts.get(c, pd.Series(dtype="int64"))
            .add(other.counts.get(c, pd.Series(dtype="int64")), fill_value=0)
            .astype("int64")
            for c in {*self.counts, *other.counts}
        }
        nulls = {c: self.nulls.get(c, 0) + other.nulls.get(c, 0) for c in {*self.nulls, *other.nulls}}
        return CurrentSide(self.rows + other.rows, counts, nulls, [*self.sample, *other.sample])

    def sampled(self, columns: list[str]) -> pd.DataFrame:
        """The KS sample's ``columns`` (an empty frame of them when nothing was sampled)."""
        return pd.concat([part[columns] for part in self.sample]) if self.sample else pd.DataFrame(columns=columns)

    def save(self, folder: Path) -> Path:
        """Write the side to ``folder`` (``side.json`` + ``sample.parquet``), so a task can pass it on by path.

        Returns:
            ``folder``.
        """
        sample = pd.concat(self.sample, ignore_index=True) if self.sample else pd.DataFrame()
        write_parquet(sample, folder / "sample.parquet")
        payload = {
            "rows": self.rows,
            "nulls": self.nulls,
            "counts": {
                c: {str(k): int(v) for k, v in counts.sort_index().items()} for c, counts in self.counts.items()
            },
        }
        write_text_atomically(folder / "side.json", json.dumps(payload, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: Path) -> CurrentSide:
        """The side :meth:`save` wrote: merges and tests exactly like the one saved."""
        payload = json.loads((folder / "side.json").read_text(encoding="utf-8"))
        sample = pd.read_parquet(folder / "sample.parquet")
        counts = {c: pd.Series(values, dtype="int64") for c, values in payload["counts"].items()}
        return cls(
            int(payload["rows"]),
            counts,
            {c: int(n) for c, n in payload["nulls"].items()},
            [sample] if len(sample) else [],
        )


def chunk_quota(sample_size: int, total_rows: int, start: int, stop: int) -> int:
    """Rows to draw from rows [start, stop) of a day of ``total_rows`` rows for a sample of ``sample_size``.

    Every chunk gets its share, and the quotas add up to exactly ``sample_size`` (or every row,
    for a smaller day) however the day is cut into chunks.

    Args:
        sample_size: the day's sample size.
        total_rows: the day's rows.
        start: the chunk's first row in the day.
        stop: the row after the chunk's last.

    Returns:
        The chunk's quota.
    """
    if total_rows <= sample_size:
        return stop - start
    return sample_size * stop // total_rows - sample_size * start // total_rows


def current_side(
    chunks: Iterable[pd.DataFrame],
    total_rows: int,
    numeric: list[str],
    categorical: list[str],
    monitoring: MonitoringConfig,
    first_row: int = 0,
    first_chunk: int = 0,
) -> CurrentSide:
    """Gather the current side of feature drift from ``chunks`` of a day of ``total_rows`` rows.

    Args:
        chunks: consecutive row chunks (each with the feature columns).
        total_rows: rows of the whole day (all shards), which sets each chunk's sample quota.
        numeric: numeric feature columns (sampled for KS; nulls counted).
        categorical: categorical feature columns (counted).
        monitoring: ``sample_size`` and ``seed``.
        first_row: position of the first chunk's first row in the day (a shard's offset).
        first_chunk: index of the first chunk in the day (a shard's offset), which seeds its sample.

    Returns:
        The gathered side; sides of consecutive shards merge (:meth:`CurrentSide.merge`) into
        exactly the side of the whole day cut into the same chunks.
    """
    side = CurrentSide(counts={c: pd.Series(dtype="int64") for c in categorical}, nulls=dict.fromkeys(numeric, 0))
    position = first_row
    for index, chunk in enumerate(chunks, start=first_chunk):
        absent = [c for c in [*numeric, *categorical] if c not in chunk.columns]
        if absent:
            raise ValueError(f"the current data lacks columns {absent}")
        quota = chunk_quota(monitoring.sample_size, total_rows, position, position + len(chunk))
        position += len(chunk)
        for column in categorical:
            side.counts[column] = side.counts[column].add(category_counts(chunk[column]), fill_value=0).astype("int64")
        values = {column: as_numeric(chunk[column]) for column in numeric}
        for column in numeric:
            side.nulls[column] += int(values[column].isna().sum())
        if numeric and quota:
            # Chunk 0 draws exactly what sample_rows(current, n, seed + 1) draws from a single frame.
            state = (
                monitoring.seed + CURRENT_SEED_OFFSET
                if index == 0
                else np.random.RandomState([monitoring.seed + CURRENT_SEED_OFFSET, index])
            )
            picked = pd.DataFrame(values, index=chunk.index)
            side.sample.append(picked if quota >= len(chunk) else picked.sample(n=quota, random_state=state))
        side.rows += len(chunk)
    if position - first_row != side.rows or position > total_rows:
        raise ValueError(f"chunks of {side.rows} rows from row {first_row} do not fit a day of {total_rows} rows")
    return side
