"""A request's cells as they are typed and read: the typed JSON decoders and a number column's reading.

Both are the hot part of a large request, and both are shared by every body form: the rows and
columns of a JSON body decode through :func:`decode_records` (the decoders of :func:`record_decoder`),
and every numeric column, whatever form sent it, is read by :func:`read_numbers`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

import numpy as np

__all__ = [
    "MAX_UNKNOWN_KEYS",
    "MAX_UNKNOWN_TEXT_COLUMNS",
    "NUMBER_CELLS",
    "TEXT_CELLS",
    "decode_records",
    "read_numbers",
    "record_decoder",
]

NUMBER_CELLS = frozenset({int, float, type(None)})
"""Cell types a numeric column holds as numbers (or nulls)."""
TEXT_CELLS = frozenset({str, type(None)})
"""Cell types a column holds as text (or nulls)."""
MAX_UNKNOWN_KEYS = 8
"""Rows holding more keys than this beyond the input columns and the id are decoded as dicts."""

_UNKNOWN_KEY = re.compile(r"Object contains unknown field `(.*)` - at `\$\.rows\[\d+\]`", re.DOTALL)
"""msgspec's error for a row's key that its record has no field for (the key as decoded)."""
_DECLARABLE_KEY = re.compile(r'[^"\\\x00-\x1f]*')
"""A key msgspec can name a field for (no quote, backslash or control character)."""
MAX_UNKNOWN_TEXT_COLUMNS = 3
"""Past this many category columns holding a text the model never saw, every column takes any text."""
_UNKNOWN_TEXT = re.compile(
    r"Invalid enum value .* - at `\$\.(?:rows\[\d+\]\.(?P<row>.*)|columns\.(?P<column>.*)\[\d+\])`", re.DOTALL
)
"""msgspec's error for a text that is none of a known column's (the column as the path names it)."""


def decode_records(
    body: bytes,
    input_columns: tuple[str, ...],
    numeric: frozenset[str],
    id_column: str,
    known: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> tuple[Any, list[str], tuple[str, ...]] | None:
    """The body decoded by the first of :func:`record_decoder`'s decoders that fits it, or None when none does.

    The decoder of the ``known`` texts is tried first. A column holding another text (msgspec's
    error names it) then takes any text while the others keep their known ones; past
    :data:`MAX_UNKNOWN_TEXT_COLUMNS` such columns, or on another error, every column takes any
    text. A key of the rows that is no input column nor the id fails a decoding, and msgspec's
    error names it: the next decoder declares it as a field of its own (read, then ignored by the
    caller), so rows that carry a few more columns than the model reads decode as records too,
    and the keys declared are exactly the other keys the rows hold. Whatever else fails (a cell
    of another type, a missing column, another shape, more than :data:`MAX_UNKNOWN_KEYS` other
    keys, a key msgspec cannot name a field for, a message of another form) leaves the body to
    the caller's dict route, which names the mistake. Each retry costs at most one decoding of
    the body, and there are at most ``MAX_UNKNOWN_KEYS + MAX_UNKNOWN_TEXT_COLUMNS + 1`` of them.

    Args:
        body: the request body.
        input_columns: the model's input columns, in order.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column.
        known: ``(column, texts)`` pairs: the only texts those category columns may hold (see :func:`record_decoder`).

    Returns:
        The decoded request, the field name of each input column, and the rows' other keys (in the
        order they were met), or None.
    """
    import msgspec

    unknown: tuple[str, ...] = ()
    any_text = 0
    while True:
        decoder, names = record_decoder(input_columns, numeric, id_column, known, unknown)
        try:
            return decoder.decode(body), names, unknown
        except msgspec.ValidationError as exc:
            found = _UNKNOWN_KEY.fullmatch(str(exc))
            key = found.group(1) if found and _DECLARABLE_KEY.fullmatch(found.group(1)) else None
            if key is not None and key not in unknown and len(unknown) < MAX_UNKNOWN_KEYS:
                unknown = (*unknown, key)
            elif known:
                text = _UNKNOWN_TEXT.fullmatch(str(exc))
                column = (text.group("row") or text.group("column")) if text else None
                kept = tuple(pair for pair in known if pair[0] != column)
                any_text += 1
                # That column takes any text; another mistake, or too many such columns: every column.
                known = kept if len(kept) < len(known) and any_text <= MAX_UNKNOWN_TEXT_COLUMNS else ()
            else:
                return None
        except msgspec.DecodeError:  # not JSON
            return None


@lru_cache(maxsize=32)
def record_decoder(
    input_columns: tuple[str, ...],
    numeric: frozenset[str],
    id_column: str,
    known: tuple[tuple[str, tuple[str, ...]], ...] = (),
    unknown: tuple[str, ...] = (),
) -> tuple[Any, list[str]]:
    """A decoder of a body of rows or of columns of exactly ``input_columns`` (maybe the id), and the field names.

    Cells are typed as they are decoded: a number column's as a number, text or null, a category
    column's as text, an integer or null (a boolean or a fraction there takes the dict route, which
    labels them as the pipeline does).

    A category column given in ``known`` takes only those texts (a ``Literal``), which msgspec
    decodes as the one string object it holds for each, not as a new string per cell: its cells
    then hash once and sit together in memory, so reading thousands of rows costs about what the
    columnar form costs. A body with another text there fails to decode (:func:`decode_records`
    then lets that column take any text).

    Args:
        input_columns: the model's input columns, in order.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column (an optional field when not an input column).
        known: ``(column, texts)`` pairs: the only texts those category columns may hold.
        unknown: other keys a row may hold, each read as raw JSON (``msgspec.Raw``) and left to the caller.

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
    for i, key in enumerate(unknown):
        row_fields.append((f"unknown_{i}", msgspec.Raw, msgspec.UNSET))
        rename[f"unknown_{i}"] = key
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
