"""Reading raw sources, merging them, cleaning and the deterministic holdout split.

Raw files are only ever read. Every function here returns data; writing snapshots
is left to :mod:`churnops.pipeline`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from churnops.config import ChurnopsConfig, DatasetConfig, Source
from churnops.errors import ChurnopsInputError

__all__ = [
    "NULL_TOKENS",
    "SPLIT_COLUMN",
    "SourceReadError",
    "as_text",
    "assign_split",
    "blank_to_na",
    "coerce_types",
    "file_sha256",
    "label_vector",
    "merge_sources",
    "read_source",
    "sources_digest",
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
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise SourceReadError(source.name, f"unreadable {source.file_format} file {path}: {exc}") from exc


def blank_to_na(series: pd.Series) -> pd.Series:
    """Text cells that are blank or a common null token become None; other dtypes pass."""
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        stripped = series.astype("string").str.strip()
        return series.where(~stripped.isin(NULL_TOKENS) & series.notna(), None)
    return series


def coerce_types(frame: pd.DataFrame, dataset: DatasetConfig) -> pd.DataFrame:
    """Typed copy of ``frame``: numeric features to float64, ids/categoricals/target to str.

    Blank cells and common null tokens become missing values; values that do not parse as
    numbers also become missing (validation reports them before this is used for training).
    """
    out = frame.copy()
    numeric = set(dataset.numeric_features)
    for column in out.columns:
        values = blank_to_na(out[column])
        if column in numeric:
            out[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif column == dataset.id_column or column == dataset.target or column in dataset.categorical_features:
            out[column] = values.map(as_text, na_action="ignore").astype(object)
    return out


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
    target = frame[config.dataset.target].map(as_text, na_action="ignore")
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
