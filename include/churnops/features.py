"""Feature engineering that travels inside the logged model.

Type coercion, derived features, imputation, scaling and category encoding are all
scikit-learn steps of one pipeline, so the registered model takes raw merged rows
and serving and monitoring never re-implement a feature.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from churnops.config import ChurnopsConfig

__all__ = [
    "ENCODINGS",
    "MISSING",
    "CategoryEncoder",
    "DerivedFeatures",
    "RawInputCoercer",
    "build_preprocessor",
    "derived_columns",
    "text_categorical",
]

ENCODINGS = ("onehot", "ordinal")

MISSING = "__missing__"
"""Category given to missing categorical values, so encoders see one uniform type."""


def _text(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text if text else MISSING


def text_categorical(series: pd.Series) -> pd.Categorical:
    """``series.map(_text)`` as a categorical, computed once per distinct value, not per cell.

    Its categories are the distinct labels, sorted. Exact for columns of ``str`` (and pandas'
    string dtype), for categoricals and for plain numeric or boolean columns, where equal values
    always read the same; other columns (mixed objects, where ``1`` and ``True`` are equal but
    read differently, or extension dtypes) are mapped cell by cell first.

    Args:
        series: a categorical column as read (any dtype).

    Returns:
        One label per cell, :data:`MISSING` for missing and blank cells.
    """
    dtype = series.dtype
    text_column = False
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy(dtype=np.intp)
        uniques = np.asarray(series.cat.categories, dtype=object)
    elif isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
    else:
        codes, text_uniques = _factorize_text(series)
        text_column = text_uniques is not None
        if text_uniques is None:
            codes, uniques = pd.factorize(series.map(_text), use_na_sentinel=True)
            uniques = np.asarray(uniques, dtype=object)
        else:
            uniques = text_uniques
    labels = [_text(value) for value in uniques.tolist()]
    null = codes < 0
    if null.any():
        labels.append(MISSING)
        codes = np.where(null, len(uniques), codes)
    if text_column and null.any():
        # factorize's nulls (None, NaN, pd.NA, NaT, ...) are MISSING for _text too, save exotic
        # ones such as Decimal("NaN"): the few null cells are passed through _text itself.
        nulls = np.flatnonzero(codes == len(uniques))
        texts = [_text(value) for value in series.to_numpy(dtype=object)[nulls].tolist()]
        if any(text != MISSING for text in texts):
            codes[nulls] = len(labels) + np.arange(len(nulls))
            labels += texts
    categories, inverse = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(inverse.ravel()[codes], categories=pd.Index(categories, dtype=object))


def _factorize_text(series: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    # factorize first, then look at the few distinct values: a column whose non-null values
    # are all str is factorized exactly (no other value can equal a str), at the cost of one pass.
    if not (isinstance(series.dtype, pd.StringDtype) or pd.api.types.is_object_dtype(series.dtype)):
        return np.empty(0, dtype=np.intp), None
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells
        return np.empty(0, dtype=np.intp), None
    uniques = np.asarray(uniques, dtype=object)
    if not all(isinstance(value, str) for value in uniques.tolist()):
        return codes, None
    return codes, uniques


def _texts(series: pd.Series) -> pd.Series:
    """``series.map(_text).astype(object)`` computed once per distinct value, not per cell."""
    values = text_categorical(series)
    out = np.asarray(values.categories, dtype=object)[values.codes]
    return pd.Series(out, index=series.index, name=series.name, dtype=object)


def _require_columns(X: pd.DataFrame, columns: Iterable[str]) -> None:
    # The error a caller sees for a row without a feature column, serving included (no input schema).
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"input lacks columns {missing}")


class RawInputCoercer(TransformerMixin, BaseEstimator):
    """Cast raw rows to the training types: numbers to float64, categories to str.

    Tolerates what callers actually send: numbers as strings (``"29.85"``), blanks,
    ints for flag columns, and extra columns (dropped).

    Args:
        numeric: numeric input columns.
        categorical: categorical input columns.
        as_category: return categorical columns as pandas categoricals (labels as categories)
            instead of object columns of str: the same labels, but later steps work on integer
            codes instead of comparing and hashing a Python string per cell.
    """

    # Models pickled before ``as_category`` existed have no such attribute: they keep object output.
    as_category = False

    def __init__(
        self, numeric: list[str] | None = None, categorical: list[str] | None = None, as_category: bool = False
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.as_category = as_category

    def fit(self, X: pd.DataFrame, y: Any = None) -> RawInputCoercer:
        _require_columns(X, self._columns())
        self.columns_ = self._columns()
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "columns_")
        _require_columns(X, self.columns_)
        # Columns are built first and framed once: inserting them one by one costs a block
        # insertion each, most of the time of a request of a few rows.
        columns: dict[str, pd.Series] = {}
        for column in self.numeric or []:
            values = X[column]
            if not pd.api.types.is_numeric_dtype(values):
                values = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
            columns[column] = values.astype("float64").replace([np.inf, -np.inf], np.nan)
        for column in self.categorical or []:
            if self.as_category:
                columns[column] = pd.Series(text_categorical(X[column]), index=X.index, name=column)
            else:
                columns[column] = _texts(X[column])
        return pd.DataFrame(columns, index=X.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)

    def _columns(self) -> list[str]:
        return list(self.numeric or []) + list(self.categorical or [])


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Add config-declared features to a coerced frame.

    Args:
        specs: derived-feature specs as plain dicts (``kind`` ratio, count_equal or bins),
            as in the ``features.derived`` config section.
    """

    def __init__(self, specs: list[dict[str, Any]] | None = None) -> None:
        self.specs = specs

    def fit(self, X: pd.DataFrame, y: Any = None) -> DerivedFeatures:
        self.specs_ = [dict(s) for s in self.specs or []]
        for spec in self.specs_:
            if spec["kind"] not in _BUILDERS:
                raise ValueError(f"unknown derived feature kind {spec['kind']!r}")
        self.feature_names_out_ = list(X.columns) + [s["name"] for s in self.specs_]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "specs_")
        # A shallow copy: the new columns go to ``out`` only and no existing column is written,
        # so X is left as it was, without a deep copy (which also consolidates every object
        # column into one block: seconds on a million rows).
        out = X.copy(deep=False)
        for spec in self.specs_:
            out[spec["name"]] = _BUILDERS[spec["kind"]](out, spec)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "specs_")
        return np.asarray(self.feature_names_out_, dtype=object)


def _ratio(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.Series:
    denominator = frame[spec["denominator"]].replace(0, np.nan)
    return (frame[spec["numerator"]] / denominator).astype("float64")


def _count_equal(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.Series:
    value = str(spec["value"])
    # Counted in one array (exact: whole numbers), not as a Series per column added up.
    hits = np.zeros(len(frame), dtype="float64")
    for column in spec["columns"]:
        hits += _equals(frame[column], value)
    return pd.Series(hits, index=frame.index)


def _equals(values: pd.Series, value: str) -> np.ndarray:
    # ``str(cell) == value`` for every cell; a categorical compares its few categories instead.
    if isinstance(values.dtype, pd.CategoricalDtype):
        hits = [code for code, category in enumerate(values.cat.categories) if str(category) == value]
        return np.isin(values.cat.codes.to_numpy(), hits)
    return (_as_str(values) == value).to_numpy()


def _as_str(values: pd.Series) -> pd.Series:
    # astype(str) leaves a column of str unchanged (it would only copy it): skip it then.
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return values.astype(str)


def _bins(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.Series:
    edges = [float(e) for e in spec["edges"]]
    inner = [f"[{low:g},{high:g})" for low, high in zip(edges, edges[1:], strict=False)]
    labels = [f"<{edges[0]:g}", *inner, f">={edges[-1]:g}"]
    values = frame[spec["column"]].to_numpy(dtype="float64")
    codes = np.searchsorted(edges, values, side="right")
    codes[np.isnan(values)] = len(labels)
    binned = pd.Categorical.from_codes(codes, categories=pd.Index([*labels, MISSING], dtype=object))
    return pd.Series(binned, index=frame.index)


_BUILDERS = {"ratio": _ratio, "count_equal": _count_equal, "bins": _bins}


class CategoryEncoder(TransformerMixin, BaseEstimator):
    """Categorical columns to one-hot indicators or to ordinal codes, for the categories seen in fit.

    What scikit-learn's ``OneHotEncoder(handle_unknown="ignore")`` and ``OrdinalEncoder``
    compute, from pandas category codes: their transform looks every cell of an object column
    up in a Python dict, a second per 200,000 rows across Telco's columns, more than the
    models themselves take to predict.

    Args:
        encoding: ``onehot`` (a 0/1 column per category; an unseen category is an all-zero
            row, for linear models) or ``ordinal`` (one column of category indexes in sorted
            order; an unseen category is NaN, which tree ensembles route as missing).
    """

    def __init__(self, encoding: str = "onehot") -> None:
        self.encoding = encoding

    def fit(self, X: pd.DataFrame, y: Any = None) -> CategoryEncoder:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; known: {list(ENCODINGS)}")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_ = []
        for column in X.columns:
            values = _labels(X[column])
            seen = values.categories[np.unique(values.codes[values.codes >= 0])]
            self.categories_.append(np.unique(np.asarray([str(v) for v in seen], dtype=object)))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "categories_")
        _require_columns(X, self.feature_names_in_)
        codes = [
            self._codes(X[column], categories)
            for column, categories in zip(self.feature_names_in_, self.categories_, strict=True)
        ]
        if self.encoding == "ordinal":
            out = np.column_stack(codes).astype("float64") if codes else np.empty((len(X), 0))
            out[out < 0] = np.nan
            return out
        out = np.zeros((len(X), sum(len(c) for c in self.categories_)), dtype="float64")
        offset = 0
        for column_codes, categories in zip(codes, self.categories_, strict=True):
            rows = np.flatnonzero(column_codes >= 0)
            out[rows, offset + column_codes[rows]] = 1.0
            offset += len(categories)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "categories_")
        if self.encoding == "ordinal":
            return self.feature_names_in_.copy()
        return np.asarray(
            [
                f"{column}_{category}"
                for column, categories in zip(self.feature_names_in_, self.categories_, strict=True)
                for category in categories
            ],
            dtype=object,
        )

    @staticmethod
    def _codes(values: pd.Series, categories: np.ndarray) -> np.ndarray:
        # Re-mapped once per distinct value (an index lookup of the few labels, then a take);
        # a cell outside ``categories`` gets -1.
        labels = _labels(values)
        mapping = pd.Index(categories, dtype=object).get_indexer(labels.categories)
        return np.append(mapping, -1).astype(np.intp)[np.asarray(labels.codes, dtype=np.intp)]


def _labels(values: pd.Series) -> pd.Categorical:
    # What RawInputCoercer(as_category=True) produces passes as is; anything else is read as it would.
    if isinstance(values.dtype, pd.CategoricalDtype) and all(isinstance(v, str) for v in values.cat.categories):
        return values.array
    return text_categorical(values)


def derived_columns(config: ChurnopsConfig) -> tuple[list[str], list[str]]:
    """(numeric, categorical) names of the derived features."""
    numeric = [s.name for s in config.features.derived if s.kind in {"ratio", "count_equal"}]
    categorical = [s.name for s in config.features.derived if s.kind == "bins"]
    return numeric, categorical


def build_preprocessor(config: ChurnopsConfig, encoding: str = "onehot") -> Pipeline:
    """Raw merged rows → a dense numeric matrix: coerce, derive, impute, scale, encode categories.

    Args:
        config: the dataset's configuration.
        encoding: how categories become numbers (see :class:`CategoryEncoder`): ``onehot``
            for linear models, ``ordinal`` for tree ensembles (as good on Telco, and a fraction
            of the columns to build and to walk at prediction time).

    Returns:
        The unfitted pipeline (``coerce``, ``derive``, ``encode``).
    """
    ds = config.dataset
    derived_numeric, derived_categorical = derived_columns(config)
    encode = ColumnTransformer(
        [
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                ds.numeric_features + derived_numeric,
            ),
            ("cat", CategoryEncoder(encoding), ds.categorical_features + derived_categorical),
        ],
        remainder="drop",
    )
    return Pipeline(
        [
            ("coerce", RawInputCoercer(ds.numeric_features, ds.categorical_features, as_category=True)),
            ("derive", DerivedFeatures([s.model_dump() for s in config.features.derived])),
            ("encode", encode),
        ]
    )
