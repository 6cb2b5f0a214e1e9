"""A request's cells as they are typed and read: the typed JSON decoders and a number column's reading.

Both are the hot part of a large request, and both are shared by every body form: the rows and
columns of a JSON body decode through :func:`decode_records` (the decoders of :func:`record_decoder`),
and every numeric column, whatever form sent it, is read by :func:`read_numbers`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np

__all__ = ["NUMBER_CELLS", "TEXT_CELLS", "decode_records", "read_numbers", "record_decoder"]

NUMBER_CELLS = frozenset({int, float, type(None)})
"""Cell types a numeric column holds as numbers (or nulls)."""
TEXT_CELLS = frozenset({str, type(None)})
"""Cell types a column holds as text (or nulls)."""


def decode_records(
    body: bytes,
    input_columns: tuple[str, ...],
    numeric: frozenset[str],
    id_column: str,
    known: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> tuple[Any, list[str]] | None:
    """The body decoded by the first of :func:`record_decoder`'s decoders that fits it, or None when none does.

    The decoder of the ``known`` texts is tried first; a body it refuses (a text the model never
    saw, or anything the plain decoder refuses too) is decoded again with any text in every
    column. Whatever that refuses (a cell of another type, a missing or other column, another
    shape) is left to the caller's dict route, which names the mistake. No error message is
    read: a body costs at most two decodings.

    Args:
        body: the request body.
        input_columns: the model's input columns, in order.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column.
        known: ``(column, texts)`` pairs: the only texts those category columns may hold (see :func:`record_decoder`).

    Returns:
        The decoded request and the field name of each input column, or None.
    """
    import msgspec

    for texts in (known, ()) if known else ((),):
        decoder, names = record_decoder(input_columns, numeric, id_column, texts)
        try:
            return decoder.decode(body), names
        except msgspec.ValidationError:  # another text, type, column or shape: the next decoder, or the caller
            continue
        except msgspec.DecodeError:  # not JSON
            return None
    return None


@lru_cache(maxsize=16)
def record_decoder(
    input_columns: tuple[str, ...],
    numeric: frozenset[str],
    id_column: str,
    known: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> tuple[Any, list[str]]:
    """A decoder of a body of rows or of columns of exactly ``input_columns`` (maybe the id), and the field names.

    Cells are typed as they are decoded: a number column's as a number, text or null, a category
    column's as text, an integer or null (a boolean or a fraction there takes the dict route, which
    labels them as the pipeline does).

    A category column given in ``known`` takes only those texts (a ``Literal``), which msgspec
    decodes as the one string object it holds for each, not as a new string per cell: its cells
    then hash once and sit together in memory, so reading thousands of rows costs about what the
    columnar form costs. A body with another text there fails to decode (:func:`decode_records`
    then decodes it with any text).

    Args:
        input_columns: the model's input columns, in order.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column (an optional field when not an input column).
        known: ``(column, texts)`` pairs: the only texts those category columns may hold.

    Returns:
        The decoder of ``{"rows": [...]}`` or ``{"columns": {...}}`` (the form left out UNSET), and
        the field name of each input column (``column_<i>``: a column name need not be an identifier).
    """
    import msgspec

    names = [f"column_{i}" for i in range(len(input_columns))]
    number_cell = int | float | str | None
    category_cell = str | int | None
    texts = dict(known)
    cells = [
        number_cell
        if column in numeric
        else (Literal[texts[column]] | int | None if texts.get(column) else category_cell)
        for column in input_columns
    ]
    rename = dict(zip(names, input_columns, strict=True))
    row_fields: list[Any] = list(zip(names, cells, strict=True))
    column_fields: list[Any] = [(name, list[cell]) for name, cell in zip(names, cells, strict=True)]  # type: ignore[valid-type]
    if id_column not in input_columns:
        row_fields.append(("row_id", Any, msgspec.UNSET))
        column_fields.append(("row_id", list[Any], msgspec.UNSET))
        rename["row_id"] = id_column
    # Not tracked by the garbage collector: a record holds decoded JSON scalars, never a cycle.
    record = msgspec.defstruct("Row", row_fields, rename=rename, forbid_unknown_fields=True, gc=False)
    table = msgspec.defstruct("Columns", column_fields, rename=rename, forbid_unknown_fields=True)
    # Either form: the one left out stays UNSET (other keys of the body are ignored, as the dict route does).
    forms: list[Any] = [
        ("rows", list[record] | msgspec.UnsetType, msgspec.UNSET),  # type: ignore[valid-type]
        ("columns", table | msgspec.UnsetType, msgspec.UNSET),
    ]
    request = msgspec.defstruct("Request", forms)
    return msgspec.json.Decoder(request), names


def read_numbers(cells: list[Any], types: set[type] | None = None) -> np.ndarray:
    """A numeric column's cells as :class:`~churnops.features.RawInputCoercer` reads them, infinities kept.

    Numbers and nulls are converted by NumPy; each distinct text is stripped and read by ``pd.to_numeric``,
    the coercer's own parser, so every number is the one the registered pipeline would see.
    Cells of other types (booleans, lists, objects) read NaN.

    Args:
        cells: the column's cells as sent.
        types: the set of the cells' types, when the caller has it.

    Returns:
        float64, NaN where a cell is null or not a number.
    """
    import pandas as pd

    if types is None:
        types = set(map(type, cells))
    if types <= NUMBER_CELLS:
        try:
            return np.array(cells, dtype="float64")
        except OverflowError:  # an integer beyond float64: read as the coercer reads it below
            pass
    if types <= TEXT_CELLS:
        # Each distinct text is read once: a column repeats its values (a tenure has a few dozen).
        codes, distinct = pd.factorize(np.array(cells, dtype=object))  # a null's code: -1
        stripped = np.array(list(map(str.strip, distinct)), dtype=object)
        read = np.asarray(pd.to_numeric(stripped, errors="coerce"), dtype="float64")
        return np.append(read, np.nan)[codes]  # code -1: the NaN appended last
    # Mixed cells: the coercer's own route, cell types and all.
    readable = [None if isinstance(c, bool) or not isinstance(c, (str, int, float)) else c for c in cells]
    text = pd.Series(readable, dtype=object).astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").astype("float64").to_numpy(dtype="float64", na_value=np.nan)
