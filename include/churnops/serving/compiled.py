"""The features step of a served model, computed with NumPy from its fitted parameters.

A request of one row through the scikit-learn pipeline (``coerce``, ``derive``, then a
``ColumnTransformer`` of imputer, scaler and :class:`~churnops.features.CategoryEncoder`)
costs a few hundred pandas and scikit-learn calls, each with its checks: most of a one-row
answer's time. :func:`compile_features` reads the fitted steps once and returns a function
computing the same matrix from the request's columns with a few NumPy operations:

- numbers: the column as float64 (text through the coercer's own ``pd.to_numeric``), infinities
  missing, then the imputer's medians and the scaler's ``(x - mean) / scale``, in the same order;
- categories: each cell's label (:func:`churnops.features._text`, what
  :func:`~churnops.features.text_categorical` computes per distinct value) looked up among the
  encoder's categories, as ordinal codes or one-hot indicators;
- derived features as :class:`~churnops.features.DerivedFeatures` computes them.

Only pipelines of exactly that shape are compiled (anything else returns None and the pipeline
serves), and a compiled function is used only once it reproduces the pipeline's output bit for
bit on probe rows built from the fitted categories (:func:`matches_pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

__all__ = ["compile_features", "fitted_categories", "matches_pipeline"]

CELLWISE_BELOW_ROWS = 64
"""Fewer rows than this are labelled cell by cell; more, once per distinct value (pandas' factorize)."""

Features = Callable[..., np.ndarray]


def compile_features(features: Any) -> Features | None:
    """The NumPy version of a fitted churnops features pipeline, or None for another shape.

    Args:
        features: the fitted pipeline without its estimator (``pipeline[:-1]``).

    Returns:
        A function from a request frame (the raw input columns) to the estimator's input matrix.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from churnops.features import CategoryEncoder, DerivedFeatures, RawInputCoercer

    steps = _steps(features)
    if steps is None:
        return None
    coerce, derive, encode = steps
    if type(coerce) is not RawInputCoercer or type(derive) is not DerivedFeatures:
        return None
    if type(encode) is not ColumnTransformer or getattr(encode, "sparse_output_", False):
        return None
    if encode.transformer_weights or getattr(encode, "_sklearn_output_config", {}).get("transform") not in (
        None,
        "default",
    ):
        return None
    numeric, categorical = list(coerce.numeric or []), list(coerce.categorical or [])
    parts: list[Callable[[dict[str, Any], int], np.ndarray]] = []
    for _, transformer, columns in encode.transformers_:
        if transformer == "drop" or not len(columns):
            continue
        columns = list(columns)
        if type(transformer) is CategoryEncoder:
            parts.append(_encoder_part(transformer, columns))
            continue
        if type(transformer) is not Pipeline or [type(s) for _, s in transformer.steps] != [
            SimpleImputer,
            StandardScaler,
        ]:
            return None
        imputer, scaler = (s for _, s in transformer.steps)
        statistics = np.asarray(imputer.statistics_, dtype="float64")
        usable = (
            imputer.strategy in ("median", "mean")
            and not imputer.add_indicator
            and isinstance(imputer.missing_values, float)
            and np.isnan(imputer.missing_values)
            and not np.isnan(statistics).any()  # an empty column would be dropped: not compiled
            and len(statistics) == len(columns)
        )
        if not usable:
            return None
        parts.append(_numeric_part(columns, statistics, scaler))
    specs = [dict(spec) for spec in derive.specs_]
    if any(not _compilable(spec, numeric, categorical) for spec in specs):
        return None

    def transform(
        columns: Any, numbers: Mapping[str, np.ndarray] | None = None, plain: Collection[str] = ()
    ) -> np.ndarray:
        rows = len(columns) if hasattr(columns, "iloc") else len(next(iter(columns.values()), []))
        values: dict[str, Any] = {}
        for column in numeric:
            read = numbers[column] if numbers is not None and column in numbers else _number_column(columns[column])
            values[column] = np.where(np.isinf(read), np.nan, read)
        for column in categorical:
            values[column] = _labels(columns[column], rows, column in plain)
        for spec in specs:
            values[spec["name"]] = _derive(values, spec)
        return np.hstack([part(values, rows) for part in parts]) if parts else np.empty((rows, 0))

    return transform


def _steps(features: Any) -> tuple[Any, Any, Any] | None:
    """The ``coerce``, ``derive`` and ``encode`` steps, the features pipeline nested once or not."""
    steps = list(getattr(features, "steps", []))
    if len(steps) == 1 and hasattr(steps[0][1], "steps"):  # pipeline[:-1] holds the features pipeline
        steps = list(steps[0][1].steps)
    if [name for name, _ in steps] != ["coerce", "derive", "encode"]:
        return None
    coerce, derive, encode = (step for _, step in steps)
    return coerce, derive, encode


def _compilable(spec: dict[str, Any], numeric: list[str], categorical: list[str]) -> bool:
    # Derived from the raw columns only, each of the type the builder reads.
    if spec["kind"] == "ratio":
        return spec["numerator"] in numeric and spec["denominator"] in numeric
    if spec["kind"] == "count_equal":
        return all(column in categorical for column in spec["columns"])
    if spec["kind"] == "bins":
        return spec["column"] in numeric
    return False


def _number_column(values: Any) -> np.ndarray:
    """``RawInputCoercer``'s numbers, infinities kept (a list of cells: :func:`.cells.read_numbers`)."""
    import pandas as pd

    if isinstance(values, list):
        from churnops.serving.cells import read_numbers

        return read_numbers(values)
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
    return np.array(values.astype("float64").to_numpy(), dtype="float64")


_HASHED_CELLS = frozenset({str, int, float, bool, type(None)})


def _labels(values: Any, rows: int, plain: bool = False) -> tuple[list[str], np.ndarray]:
    """A categorical column's labels: (distinct labels, each row's index among them).

    A list of cells is factorized as it is (pandas' hash table, one C pass) and only its distinct
    values are labelled: cells that are equal read the same label, save ``True`` and ``1``, so a
    list mixing booleans and numbers is labelled cell by cell. ``plain`` says the cells are known
    to be text, integers or nulls only (their types need no look).
    """
    import pandas as pd

    from churnops.features import MISSING, _text, text_categorical

    if isinstance(values, list):
        # A plain column (text, integers, nulls: checked as decoded) is not looked at twice.
        types = {str} if plain else set(map(type, values))
        if types <= _HASHED_CELLS and not (bool in types and types & {int, float}):
            codes, uniques = pd.factorize(np.array(values, dtype=object), use_na_sentinel=True)
            labels = [_text(value) for value in uniques.tolist()]
            if (codes < 0).any():  # None and NaN: missing
                codes = np.where(codes < 0, len(labels), codes)
                labels.append(MISSING)
            return labels, np.asarray(codes, dtype=np.intp)
        return [_text(value) for value in values], np.arange(rows)
    if rows < CELLWISE_BELOW_ROWS:
        labels = [_text(value) for value in values.tolist()]
        return labels, np.arange(rows)
    categorical = text_categorical(values)
    return [str(c) for c in categorical.categories], np.asarray(categorical.codes, dtype=np.intp)


def _derive(values: dict[str, Any], spec: dict[str, Any]) -> Any:
    """:class:`~churnops.features.DerivedFeatures`' builders on the compiled columns."""
    from churnops.features import MISSING

    if spec["kind"] == "ratio":
        denominator = values[spec["denominator"]]
        return values[spec["numerator"]] / np.where(denominator == 0, np.nan, denominator)
    if spec["kind"] == "count_equal":
        value = str(spec["value"])
        hits = np.zeros(len(next(iter(values.values()))), dtype="float64")
        for column in spec["columns"]:
            labels, codes = values[column]
            hits += np.asarray([label == value for label in labels], dtype=bool)[codes]
        return hits
    edges = [float(e) for e in spec["edges"]]
    inner = [f"[{low:g},{high:g})" for low, high in zip(edges, edges[1:], strict=False)]
    names = [f"<{edges[0]:g}", *inner, f">={edges[-1]:g}", MISSING]
    numbers = values[spec["column"]]
    codes = np.searchsorted(edges, numbers, side="right")
    codes[np.isnan(numbers)] = len(names) - 1
    return names, codes


def _numeric_part(columns: list[str], statistics: np.ndarray, scaler: Any) -> Callable[..., np.ndarray]:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def part(values: dict[str, Any], rows: int) -> np.ndarray:
        X = np.column_stack([values[column] for column in columns]).astype("float64")
        missing = np.isnan(X)
        if missing.any():
            X[missing] = np.take(statistics, np.nonzero(missing)[1])
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        return X

    return part


def _encoder_part(encoder: Any, columns: list[str]) -> Callable[..., np.ndarray]:
    if [str(c) for c in columns] != [str(c) for c in encoder.feature_names_in_]:
        raise ValueError("the encoder's columns differ from the column transformer's")  # never fitted so
    lookups = [{str(label): i for i, label in enumerate(categories)} for categories in encoder.categories_]
    widths = [len(categories) for categories in encoder.categories_]
    ordinal = encoder.encoding == "ordinal"

    def part(values: dict[str, Any], rows: int) -> np.ndarray:
        codes = []
        for column, lookup in zip(columns, lookups, strict=True):
            labels, index = values[column]
            codes.append(np.asarray([lookup.get(label, -1) for label in labels], dtype=np.intp)[index])
        if ordinal:
            out = np.column_stack(codes).astype("float64") if codes else np.empty((rows, 0))
            out[out < 0] = np.nan
            return out
        out = np.zeros((rows, sum(widths)), dtype="float64")
        offset = 0
        for column_codes, width in zip(codes, widths, strict=True):
            hit = np.flatnonzero(column_codes >= 0)
            out[hit, offset + column_codes[hit]] = 1.0
            offset += width
        return out

    return part


def fitted_categories(features: Any) -> dict[str, tuple[str, ...]]:
    """Each category input column's fitted labels, the missing label left out (empty for another pipeline).

    Args:
        features: the fitted features pipeline (``pipeline[:-1]``).

    Returns:
        ``{column: labels}`` for the raw category columns the pipeline's encoders read (derived ones left out).
    """
    from churnops.features import MISSING

    steps = _steps(features)
    if steps is None:
        return {}
    raw = {str(c) for c in steps[0].categorical or []}
    known: dict[str, tuple[str, ...]] = {}
    for _, encoder, _ in getattr(steps[2], "transformers_", []):
        if not hasattr(encoder, "categories_"):
            continue
        for column, categories in zip(encoder.feature_names_in_, encoder.categories_, strict=True):
            if str(column) in raw:
                known[str(column)] = tuple(str(c) for c in categories.tolist() if c != MISSING)
    return known


def probe_rows(features: Any) -> Any:
    """Rows that reach every fitted category, an unseen one, blanks, nulls and numbers as text."""
    import pandas as pd

    steps = _steps(features)
    if steps is None:
        raise ValueError("not a churnops features pipeline")
    coerce = steps[0]
    numeric, categorical = list(coerce.numeric or []), list(coerce.categorical or [])
    known = fitted_categories(features)
    count = max([len(v) for v in known.values()] + [8]) + 4
    frame: dict[str, list[Any]] = {}
    for k, column in enumerate(numeric):
        cells: list[Any] = [0, 1.5, -3, 1e6, None, float("nan"), "", " 12.25 ", "x", "inf", 7, 0.0]
        frame[column] = [cells[(i + k) % len(cells)] for i in range(count)]
    for column in categorical:
        seen: tuple[str, ...] = known.get(column, ())
        cells = [*seen, None, "", "  ", "unseen value", f" {seen[0]} " if seen else "a"]
        frame[column] = [cells[i % len(cells)] for i in range(count)]
    return pd.DataFrame(frame)


def matches_pipeline(compiled: Features, features: Any) -> bool:
    """Whether ``compiled`` reproduces ``features.transform`` exactly on :func:`probe_rows`, one row and many.

    Args:
        compiled: what :func:`compile_features` returned.
        features: the fitted features pipeline.

    Returns:
        True when every probe's matrix is identical (missing values in the same cells).
    """
    probe = probe_rows(features)
    many = probe.sample(CELLWISE_BELOW_ROWS * 2, replace=True, random_state=0).reset_index(drop=True)
    for rows in [probe.iloc[[i]].reset_index(drop=True) for i in range(len(probe))] + [probe, many]:
        # As a frame, and as the service passes a request: lists of cells.
        cells = {str(column): rows[column].tolist() for column in rows.columns}
        try:
            expected = np.asarray(features.transform(rows), dtype="float64")
            results = [compiled(rows), compiled(cells)]
        except (ValueError, TypeError, KeyError):
            return False
        for got in results:
            if got.shape != expected.shape or not np.array_equal(got, expected, equal_nan=True):
                return False
    return True
