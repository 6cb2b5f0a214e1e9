"""A prediction request's rows: parsed from JSON or CSV and checked, every caller's mistake a 4xx naming it.

Rows are raw, as in a batch file: the model's input columns (numbers as numbers or as text,
blanks and nulls as missing values, categories as text or numbers), optionally the id column,
and anything else, which is ignored and named back to the caller.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from churnops.data import NULL_TOKENS
from churnops.serving.cells import NUMBER_CELLS, TEXT_CELLS, decode_records, read_numbers

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BadRequest",
    "RequestRows",
    "check_columns",
    "check_rows",
    "read_json_rows",
    "read_numbers",
    "rows_from_csv",
    "rows_from_json",
]


class BadRequest(Exception):
    """The caller's mistake: answered with ``status`` and ``detail``, never a 500."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RequestRows:
    """Checked rows, column by column: the cells as sent, the numbers read once, the ids, the columns ignored."""

    columns: dict[str, list[Any]]
    """Each kept column's cells, as sent: the model's input columns, then the id column when given."""
    numbers: dict[str, np.ndarray]
    """Each numeric input column read as the model's coercer reads it (float64; missing and unreadable NaN)."""
    ids: list[Any] | None
    """Each row's id (None where the row has none), or None when no row has the id column."""
    ignored: list[str]
    plain: frozenset[str] = frozenset()
    """Category columns whose cells are known to be text, integers or nulls only (typed as decoded)."""

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The rows as a frame, built on first use (the pipeline's path and the request log)."""
        import pandas as pd

        return pd.DataFrame(self.columns)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


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
    if set(map(type, rows)) != {dict}:
        number = next(n for n, row in enumerate(rows) if not isinstance(row, dict))
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
    """Check raw rows against the model's input columns and read their numbers.

    The rows are split into columns once; each column's check looks at the set of its cells'
    types, and a numeric column's text is read by :func:`read_numbers`, whose result the model
    uses as well: no cell is looked at by a Python loop of its own.

    Args:
        rows: the JSON rows (:func:`rows_from_json`) or a CSV frame (:func:`rows_from_csv`).
        input_columns: the columns every row must carry.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column (optional in a row, never ignored).

    Returns:
        The columns (unknown ones dropped), their numbers, the ids and the ignored columns.

    Raises:
        BadRequest: 422 naming a missing column (and the first row lacking it), or the row and
            column of a value of the wrong type (a number column holding text that is no number,
            a boolean, a list or an object; a category column holding a list or an object).
    """
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        kept, ignored = _kept_columns(rows.columns, input_columns, id_column)
        columns = {column: rows[column].tolist() for column in kept}
    else:
        columns, ignored = _split_columns(rows, input_columns, id_column)
    ids = _ids(columns.get(id_column))
    return _checked_columns(columns, input_columns, numeric, ids, ignored)


def _checked_columns(
    columns: dict[str, list[Any]],
    input_columns: list[str],
    numeric: set[str],
    ids: list[Any] | None,
    ignored: list[str],
    plain: frozenset[str] = frozenset(),
) -> RequestRows:
    numbers = {}
    for column in input_columns:
        cells = columns[column]
        if column in numeric:
            numbers[column] = _checked_numbers(cells, column)
        elif column not in plain:  # a plain column's types were checked as it was decoded
            _check_categories(cells, column)
    return RequestRows(columns, numbers, ids, ignored, plain)


def _split_columns(
    rows: list[dict[str, Any]], input_columns: list[str], id_column: str
) -> tuple[dict[str, list[Any]], list[str]]:
    """The JSON rows as columns (cells as sent), and the unknown columns, sorted."""
    try:
        # One pass over the rows in C: each row's input cells as a tuple, then transposed.
        cells = list(map(itemgetter(*input_columns), rows))
    except KeyError:
        required = set(input_columns)
        number = next(n for n, row in enumerate(rows) if not required.issubset(row))
        missing = [c for c in input_columns if c not in rows[number]]
        raise BadRequest(422, f"row {number} lacks column(s) {', '.join(missing)}") from None
    if len(input_columns) == 1:
        columns = {input_columns[0]: list(cells)}
    else:
        columns = dict(zip(input_columns, map(list, zip(*cells, strict=True)), strict=True))
    with_id = sum(map(dict.__contains__, rows, repeat(id_column)))
    if with_id:
        columns[id_column] = list(map(dict.get, rows, repeat(id_column)))
    ignored: list[str] = []
    # Every row holds the input columns, so any other key shows in the total count of keys.
    if sum(map(len, rows)) != len(input_columns) * len(rows) + with_id:
        known = {*input_columns, id_column}
        ignored = sorted(str(c) for c in set().union(*rows) - known)
    return columns, ignored


def read_json_rows(
    body: bytes,
    max_rows: int,
    input_columns: list[str],
    numeric: set[str],
    id_column: str,
    categories: Mapping[str, Collection[str]] | None = None,
) -> RequestRows:
    """A JSON body of rows ``{"rows": [{...}, ...]}`` or of columns ``{"columns": {column: [...], ...}}``, checked.

    msgspec decodes the body straight into typed records: each row into a record of the input
    columns (and the id), or each column into a typed list, which costs less than building a
    dict per row (:func:`~churnops.serving.cells.decode_records`). With ``categories``, a first
    decoder takes only those texts in those columns, and a body holding another text there is
    decoded again with any text. A body lacking a column, holding a cell of another type, columns the model does not
    read, or of another shape takes the dict route (:func:`rows_from_json` and
    :func:`check_rows`, or :func:`check_columns`), which names the ignored columns or the
    caller's mistake. Every route ends in the same checks, so a column's cells are judged alike
    whichever form or route sent them.

    Args:
        body: the request body.
        max_rows: the most rows allowed.
        input_columns: the columns every row must carry.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column (optional in a row or among the columns).
        categories: each category column's known texts (the model's fitted categories), if any.

    Returns:
        The checked rows.

    Raises:
        BadRequest: as :func:`rows_from_json` and :func:`check_rows`, and for the columnar form
            422 for columns of different lengths.
    """
    import msgspec

    given = categories or {}
    known = tuple((c, tuple(given[c])) for c in input_columns if c not in numeric and c in given)
    decoded = decode_records(body, tuple(input_columns), frozenset(numeric), id_column, known)
    if decoded is None:
        return _read_json_dicts(body, max_rows, input_columns, numeric, id_column)
    request, names = decoded
    plain = frozenset(c for c in input_columns if c not in numeric)
    if request.rows is not msgspec.UNSET and request.columns is not msgspec.UNSET:
        raise BadRequest(422, _ONE_FORM)
    if request.columns is not msgspec.UNSET:
        given = request.columns
        columns = {column: getattr(given, name) for column, name in zip(input_columns, names, strict=True)}
        ids = None if given.row_id is msgspec.UNSET or id_column in input_columns else given.row_id
        if ids is not None:
            columns[id_column] = ids
        _check_lengths(columns, max_rows)
        ids = _ids(ids)
        return _checked_columns(columns, input_columns, numeric, ids, [], plain)
    if request.rows is msgspec.UNSET:
        raise BadRequest(422, _ONE_FORM)
    rows = request.rows
    _check_count(len(rows), max_rows)
    # A column at a time: no tuple per row for the garbage collector to walk.
    columns = {column: list(map(attrgetter(name), rows)) for column, name in zip(input_columns, names, strict=True)}
    ids = None
    if id_column not in input_columns:
        given_ids = list(map(attrgetter("row_id"), rows))
        id_types = set(map(type, given_ids))
        if id_types != {msgspec.UnsetType}:
            unset = msgspec.UnsetType in id_types
            ids = [None if value is msgspec.UNSET else value for value in given_ids] if unset else given_ids
            columns[id_column] = ids
    return _checked_columns(columns, input_columns, numeric, ids, [], plain)


_ONE_FORM = (
    'the body must be a JSON object {"rows": [{column: value, ...}, ...]} or {"columns": {column: [values], ...}}'
)


def _read_json_dicts(
    body: bytes, max_rows: int, input_columns: list[str], numeric: set[str], id_column: str
) -> RequestRows:
    """:func:`read_json_rows` for a body its records do not fit: decoded as plain JSON, then dispatched on its key."""
    import msgspec

    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(400, f"the body is not JSON: {exc}") from None
    if isinstance(payload, dict) and "columns" in payload:
        if "rows" in payload:
            raise BadRequest(422, _ONE_FORM)
        return check_columns(payload["columns"], max_rows, input_columns, numeric, id_column)
    return check_rows(rows_from_json(body, max_rows), input_columns, numeric, id_column)


def check_columns(
    given: Any, max_rows: int, input_columns: list[str], numeric: set[str], id_column: str
) -> RequestRows:
    """Check the ``columns`` of a columnar JSON body (``{column: [values], ...}``) as :func:`check_rows` checks rows.

    Args:
        given: the decoded ``columns`` value.
        max_rows: the most rows allowed.
        input_columns: the columns the body must carry.
        numeric: those of them that hold numbers.
        id_column: the dataset's id column (optional, never ignored).

    Returns:
        The columns (unknown ones dropped), their numbers, the ids and the ignored columns.

    Raises:
        BadRequest: 422 for ``columns`` that is not an object of lists, for lists of different
            lengths, for a missing column (named) or a value of the wrong type (its row and column
            named); 413 for more than ``max_rows`` rows.
    """
    if not isinstance(given, dict) or not given or set(map(type, given.values())) != {list}:
        raise BadRequest(422, "the columns must be a JSON object {column: [value, ...], ...} of lists")
    _check_lengths(given, max_rows)
    kept, ignored = _kept_columns(given, input_columns, id_column)
    columns = {column: given[column] for column in kept}
    return _checked_columns(columns, input_columns, numeric, _ids(columns.get(id_column)), sorted(ignored))


def _kept_columns(given: Collection[Any], input_columns: list[str], id_column: str) -> tuple[list[str], list[str]]:
    """The columns a body's named columns keep (the input columns, then the id when given) and ignore.

    Raises:
        BadRequest: 422 naming the input columns ``given`` lacks.
    """
    missing = [c for c in input_columns if c not in given]
    if missing:
        raise BadRequest(422, f"missing column(s) {', '.join(missing)}")
    kept = [*input_columns, *([id_column] if id_column in given else [])]
    return kept, [str(c) for c in given if c not in kept]


def _check_lengths(columns: Mapping[str, list[Any]], max_rows: int) -> None:
    lengths = {column: len(cells) for column, cells in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{column}: {length}" for column, length in lengths.items())
        raise BadRequest(422, f"the columns must all hold as many values (one per row), not {shown}")
    _check_count(next(iter(lengths.values())), max_rows)


_CATEGORY_CELLS = frozenset({str, int, float, bool, type(None)})
_NULL_TOKENS = frozenset(NULL_TOKENS)


def _checked_numbers(cells: list[Any], column: str) -> np.ndarray:
    """:func:`read_numbers`, after a 422 for the first cell that is no number, no number text and no null."""
    types = set(map(type, cells))
    numbers = read_numbers(cells, types)
    if not types <= NUMBER_CELLS | TEXT_CELLS:
        row = next(n for n, c in enumerate(cells) if type(c) not in NUMBER_CELLS | TEXT_CELLS)
        _wrong(row, cells[row], column, numeric=True)
    if str in types:
        # Only the cells read as NaN can be wrong: a null, a null token, or text that is no number.
        for row in np.flatnonzero(np.isnan(numbers)).tolist():
            cell = cells[row]
            if isinstance(cell, str) and cell.strip() not in _NULL_TOKENS:
                _wrong(row, cell, column, numeric=True)
    return numbers


def _check_categories(cells: list[Any], column: str) -> None:
    if not set(map(type, cells)) <= _CATEGORY_CELLS:
        row = next(n for n, c in enumerate(cells) if type(c) not in _CATEGORY_CELLS)
        _wrong(row, cells[row], column, numeric=False)


def _wrong(row: int, value: Any, column: str, numeric: bool) -> NoReturn:
    kind = "a number (or text of one, blank or null)" if numeric else "text, a number or null"
    raise BadRequest(422, f"row {row}, column {column!r}: {value!r} is not {kind}")


def _ids(cells: list[Any] | None) -> list[Any] | None:
    """The id column's cells with every missing one None (only a float can be NaN: other cells pass as they are)."""
    if cells is None or float not in set(map(type, cells)):
        return cells
    return [None if _missing(v) else v for v in cells]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
