"""Cell values as churnops reads them: null tokens, text, and the types the config declares.

Raw cells arrive as text (CSV), typed columns (Parquet) or a mix; these functions give them one
meaning everywhere (training, scoring, validation and drift): blank or null-token cells are
missing, numbers sent as text are numbers, and categories are text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churnops.config import DatasetConfig

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "NULL_TOKENS",
    "as_text",
    "as_text_series",
    "blank_to_na",
    "blank_values",
    "coerce_types",
    "is_text",
    "missing_mask",
    "text_blanks",
    "text_codes",
]


NULL_TOKENS = ["", " ", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


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
    return codes, uniques, np.append(blank_values(uniques), True)


def blank_values(uniques: np.ndarray) -> np.ndarray:
    """Whether each of a column's distinct (non-missing) values is blank or a null token once stripped.

    Args:
        uniques: distinct values (e.g. :func:`text_codes`' or a dictionary's), none missing.

    Returns:
        A boolean per value: ``blank_values(uniques)[codes]`` (a missing cell, code -1, looked
        up as True after appending it) is what :func:`missing_mask` finds for the cells.
    """
    blank = np.zeros(len(uniques), dtype=bool)
    candidates = _token_candidates(uniques)
    stripped = pd.Series(uniques[candidates], dtype=object).astype("string").str.strip()
    blank[candidates] = stripped.isin(NULL_TOKENS).to_numpy(dtype=bool)
    return blank


_TOKEN_LENGTH = max(len(token) for token in NULL_TOKENS)


_WHITESPACE = list(
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Exactly the characters ``str.strip()`` removes: ``[chr(c) for c in range(0x110000) if chr(c).isspace()]``
(Unicode 14, Python 3.11; the set has not changed since Unicode 6.3), written out because
computing it costs a third of a second at import."""


def _token_candidates(uniques: np.ndarray, text: pa.Array | None = None) -> np.ndarray | slice:
    """Positions of the distinct values that might strip to a null token (a superset).

    With many distinct values (ids), stripping each in Python costs more than the rest of
    :func:`blank_to_na`; a string longer than every token can only strip to one when it
    starts or ends with whitespace, which Arrow tells for all of them at once. ``text`` is
    ``uniques`` as an Arrow string array when the caller has it (its nulls are no candidates).
    """
    everything = slice(0, len(uniques))
    if len(uniques) < 1000:
        return everything
    import pyarrow as pa
    import pyarrow.compute as pc

    if text is None:
        try:
            text = pa.array(uniques, type=pa.string())
        except (pa.ArrowException, TypeError, ValueError):  # not all str: strip every value
            return everything
    whitespace = pa.array(_WHITESPACE, type=pa.string())
    short = pc.less_equal(pc.utf8_length(text), _TOKEN_LENGTH)
    first = pc.is_in(pc.utf8_slice_codeunits(text, 0, 1), value_set=whitespace)
    last = pc.is_in(pc.utf8_slice_codeunits(text, -1), value_set=whitespace)
    either = pc.fill_null(pc.or_(short, pc.or_(first, last)), False)
    return np.flatnonzero(either.to_numpy(zero_copy_only=False))


def _distinct_text_blanks(series: pd.Series) -> np.ndarray | None:
    """``blank[codes]`` of :func:`text_codes` for a text column of (mostly) distinct values, row by row.

    Factorizing a column of distinct values (ids) builds a hash table as large as the column
    for nothing; instead each cell is looked at once in Arrow (:func:`text_blanks`). None when a
    cell is not a string or missing (Arrow refuses it): use :func:`text_codes`.
    """
    import pyarrow as pa

    values = series.to_numpy(dtype=object)
    try:  # from_pandas: None, NaN and pd.NA are nulls, as pd.factorize's sentinel sees them
        text = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return text_blanks(text, values)


def text_blanks(text: pa.Array, values: np.ndarray) -> np.ndarray:
    """:func:`missing_mask` of a column of strings (missing cells null/None), given both in Arrow and as objects.

    Each cell is looked at once: missing, or a candidate that might strip to a null token
    (:func:`_token_candidates`, in Arrow for all cells at once); only the candidates are stripped.

    Args:
        text: the column as an Arrow string array.
        values: the same column as an object array of ``str`` (None where ``text`` is null).

    Returns:
        True where the cell is missing, blank or a null token once stripped.
    """
    blank = np.array(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    candidates = _token_candidates(values, text)
    candidates = np.arange(len(values))[candidates] if isinstance(candidates, slice) else candidates
    candidates = candidates[~blank[candidates]]
    if len(candidates):
        stripped = pd.Series(values[candidates], dtype=object).astype("string").str.strip()
        blank[candidates] = stripped.isin(NULL_TOKENS).to_numpy(dtype=bool)
    return blank


def missing_mask(series: pd.Series, distinct: bool = False) -> np.ndarray:
    """``blank_to_na(series).isna()`` as a boolean array, without building the new column.

    Args:
        series: the column.
        distinct: its values are (mostly) distinct, such as ids: looked at row by row rather
            than factorized (same mask either way).
    """
    if is_text(series):
        blank = _distinct_text_blanks(series) if distinct else None
        if blank is not None:
            return blank
        codes, _, blanks = text_codes(series)
        return blanks[codes]
    return series.isna().to_numpy(dtype=bool)


def blank_to_na(series: pd.Series, distinct: bool = False, missing: np.ndarray | None = None) -> pd.Series:
    """Text cells that are blank or a common null token become None; other dtypes pass.

    Args:
        series: the column.
        distinct: its values are (mostly) distinct: see :func:`missing_mask`.
        missing: :func:`missing_mask` of ``series`` when already known (not computed again).
    """
    if is_text(series):
        return series.where(~(missing_mask(series, distinct) if missing is None else missing), None)
    return series


def coerce_types(
    frame: pd.DataFrame, dataset: DatasetConfig, missing: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Typed copy of ``frame``: numeric features to float64, ids/categoricals/target to str.

    Blank cells and common null tokens become missing values; values that do not parse as
    numbers also become missing (validation reports them before this is used for training).
    Other columns are copied as they are.

    Args:
        frame: raw rows (text from CSV, or typed Parquet columns).
        dataset: which columns are numeric features, categorical features, the id and the target.
        missing: :func:`missing_mask` of some columns when already known (e.g. by
            :meth:`~churnops.data.tally.Tally.add` on the same frame), not computed again.

    Returns:
        A new frame with the same columns and index.

    Raises:
        ValueError: ``frame`` repeats a column name.
    """
    numeric = set(dataset.numeric_features)
    text = {dataset.id_column, dataset.target, *dataset.categorical_features}
    if frame.columns.has_duplicates:  # the column-by-column build below needs unique names
        raise ValueError(f"repeated column names {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    columns = {}
    known = missing or {}
    for column in frame.columns:
        values = frame[column]
        if column in numeric:
            columns[column] = pd.to_numeric(blank_to_na(values, missing=known.get(column)), errors="coerce").astype(
                "float64"
            )
        elif column in text:
            mask = known.get(column)
            if is_text(values) and mask is None:
                mask = missing_mask(values, distinct=column == dataset.id_column)
            if mask is not None and is_text(values) and mask.any():
                columns[column] = as_text_series(values.where(~mask, None), copy=False)  # where() made a copy
            else:  # nothing to blank (= blank_to_na(values)): as_text_series copies
                columns[column] = as_text_series(values)
        else:
            columns[column] = values.copy()
    # Built in one go: assigning column after column into a copy of a Parquet frame splits
    # (and copies) its consolidated blocks again and again.
    out = pd.DataFrame(columns, index=frame.index, copy=False)
    out.columns = frame.columns
    return out


def as_text_series(series: pd.Series, copy: bool = True) -> pd.Series:
    """``series.map(as_text, na_action="ignore").astype(object)``, without a Python call per cell.

    Columns of ``str`` (what CSV and Parquet give) are returned as they are (a copy, unless
    ``copy`` is False: the caller's series is already its own), since :func:`as_text` leaves a
    string alone; plain numeric and boolean columns are converted per distinct value. Anything
    else (mixed objects, extension dtypes) is mapped cell by cell, because distinct objects such
    as ``1`` and ``True`` can be equal while reading differently. Missing cells keep their value.
    """
    dtype = series.dtype
    if pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series.copy() if copy else series
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
