"""A prediction request's rows: parsed from JSON or CSV and checked, every caller's mistake a 4xx naming it.

Rows are raw, as in a batch file: the model's input columns (numbers as numbers or as text,
blanks and nulls as missing values, categories as text or numbers), optionally the id column,
and anything else, which is ignored and named back to the caller.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from churnops.data import NULL_TOKENS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BadRequest", "RequestRows", "check_rows", "rows_from_csv", "rows_from_json"]

_NUMBER_TYPES = (int, float)
_CATEGORY_TYPES = (str, int, float, bool)


class BadRequest(Exception):
    """The caller's mistake: answered with ``status`` and ``detail``, never a 500."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RequestRows:
    """Checked rows: the frame the model reads, the ids given, the columns ignored."""

    frame: pd.DataFrame
    ids: list[Any] | None
    """Each row's id (None where the row has none), or None when no row has the id column."""
    ignored: list[str]


def rows_from_json(body: bytes, max_rows: int) -> list[dict[str, Any]]:
    """The ``rows`` of a JSON body ``{"rows": [{...}, ...]}``.

    Args:
        body: the request body.
        max_rows: the most rows allowed.

    Returns:
        The rows, each a mapping of column to value.

    Raises:
        BadRequest: 400 for a body that is not JSON; 422 for JSON of another shape (no ``rows``
            list, no row, a row that is not an object); 413 for more than ``max_rows`` rows.
    """
    import msgspec

    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(400, f"the body is not JSON: {exc}") from None
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise BadRequest(422, 'the body must be a JSON object {"rows": [{column: value, ...}, ...]}')
    _check_count(len(rows), max_rows)
    for number, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadRequest(422, f"row {number} is not a JSON object of column: value")
    return rows


def rows_from_csv(body: bytes, max_rows: int) -> pd.DataFrame:
    """The rows of a CSV body (header line first), every cell read as text, as a batch file's would be.

    Args:
        body: the CSV bytes (UTF-8).
        max_rows: the most rows allowed.

    Returns:
        The rows as text cells (missing cells as None).

    Raises:
        BadRequest: 400 for bytes that are not CSV; 422 for no row; 413 for more than ``max_rows``.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, nrows=max_rows + 1)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        raise BadRequest(400, f"the body is not CSV with a header line: {str(exc).splitlines()[0]}") from None
    _check_count(len(frame), max_rows)
    return frame


def _check_count(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise BadRequest(422, "no rows: send at least one")
    if rows > max_rows:
        raise BadRequest(413, f"more than serving.max_rows = {max_rows} rows in one request")


def check_rows(
    rows: list[dict[str, Any]] | pd.DataFrame,
    input_columns: list[str],
    numeric: set[str],
    id_column: str,
) -> RequestRows:
    """Check raw rows against the model's input columns and build the frame it reads.

    Args:
        rows: the JSON rows (:func:`rows_from_json`) or a CSV frame (:func:`rows_from_csv`).
        input_columns: the columns every row must carry.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column (optional in a row, never ignored).

    Returns:
        The frame (columns as sent, unknown ones dropped), the ids and the ignored columns.

    Raises:
        BadRequest: 422 naming a missing column (and the first row lacking it), or the row and
            column of a value of the wrong type (a number column holding text that is no number,
            a boolean, a list or an object; a category column holding a list or an object).
    """
    import pandas as pd

    required = set(input_columns)
    if isinstance(rows, pd.DataFrame):
        frame = rows
        missing = [c for c in input_columns if c not in frame.columns]
        if missing:
            raise BadRequest(422, f"missing column(s) {', '.join(missing)}")
    else:
        if not all(map(required.issubset, rows)):
            number = next(n for n, row in enumerate(rows) if not required.issubset(row))
            missing = [c for c in input_columns if c not in rows[number]]
            raise BadRequest(422, f"row {number} lacks column(s) {', '.join(missing)}")
        keys = set().union(*rows)
        kept = [*input_columns, *([id_column] if id_column in keys else [])]
        ignored = sorted(str(c) for c in keys - set(kept))
        return _checked(pd.DataFrame(rows, columns=kept), input_columns, numeric, id_column, ignored)
    ignored = [str(c) for c in frame.columns if c not in required and c != id_column]
    return _checked(frame.drop(columns=ignored), input_columns, numeric, id_column, ignored)


def _checked(
    frame: pd.DataFrame, input_columns: list[str], numeric: set[str], id_column: str, ignored: list[str]
) -> RequestRows:
    for column in input_columns:
        bad = _first_bad(frame[column], column in numeric)
        if bad is not None:
            row, value = bad
            kind = "a number (or text of one, blank or null)" if column in numeric else "text, a number or null"
            raise BadRequest(422, f"row {row}, column {column!r}: {value!r} is not {kind}")
    ids = None
    if id_column in frame.columns:
        ids = [None if _missing(v) else v for v in frame[id_column].tolist()]
    return RequestRows(frame, ids, ignored)


def _first_bad(values: pd.Series, numeric: bool) -> tuple[int, Any] | None:
    """The first (row, value) of a column that the model cannot read as its type, or None."""

    kind = values.dtype.kind
    if kind in "iuf":
        return None
    if kind == "b":
        return (0, values.iloc[0]) if numeric else None
    cells = values.tolist()
    types = set(map(type, cells))
    allowed = (*_NUMBER_TYPES, str, type(None)) if numeric else (*_CATEGORY_TYPES, type(None))
    if any(not issubclass(t, allowed) or (numeric and t is bool) for t in types):
        for row, value in enumerate(cells):
            if not isinstance(value, allowed) or (numeric and isinstance(value, bool)):
                return row, value
    if not numeric or str not in types:
        return None
    return _first_bad_number_text(cells)


_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,2})?")
"""Text that ``pd.to_numeric`` always reads as a finite number, at most :data:`_PLAIN_NUMBER_LENGTH` long."""
_PLAIN_NUMBER_LENGTH = 18
_NULL_TOKENS = frozenset(NULL_TOKENS)


def _first_bad_number_text(cells: list[Any]) -> tuple[int, Any] | None:
    """The first text cell of a number column that is neither a number nor a null token, or None.

    Plain decimal text (most cells) is settled by a regular expression; only the rest goes
    through ``pd.to_numeric``, the coercer's own reading.
    """
    import pandas as pd

    unsure = []
    for row, cell in enumerate(cells):
        if isinstance(cell, str):
            stripped = cell.strip()
            if stripped in _NULL_TOKENS:
                continue
            if len(stripped) <= _PLAIN_NUMBER_LENGTH and _PLAIN_NUMBER.fullmatch(stripped):
                continue
            unsure.append(row)
    if not unsure:
        return None
    stripped = pd.Series([cells[row] for row in unsure], dtype=object).str.strip()
    wrong = pd.to_numeric(stripped, errors="coerce").isna().to_numpy()
    if wrong.any():
        row = unsure[int(wrong.argmax())]
        return row, cells[row]
    return None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
