"""Feature engineering that travels inside the logged model.

Type coercion, derived features, imputation, scaling and one-hot encoding are all
scikit-learn steps of one pipeline, so the registered model takes raw merged rows
and serving and monitoring never re-implement a feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from churnops.config import ChurnopsConfig

__all__ = ["MISSING", "DerivedFeatures", "RawInputCoercer", "build_preprocessor", "derived_columns"]

MISSING = "__missing__"
"""Category given to missing categorical values, so encoders see one uniform type."""


def _text(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text if text else MISSING


def _texts(series: pd.Series) -> pd.Series:
    """``series.map(_text).astype(object)`` computed once per distinct value, not per cell.

    Exact for columns of ``str`` (and pandas' string dtype) and for plain numeric or boolean
    columns, where equal values always read the same; other columns (mixed objects, where
    ``1`` and ``True`` are equal but read differently, or extension dtypes) are mapped cell by cell.
    """
    dtype = series.dtype
    text_column = isinstance(dtype, pd.StringDtype) or (
        pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"))
    if not (text_column or (isinstance(dtype, np.dtype) and dtype.kind in "biuf")):
        return series.map(_text).astype(object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = np.array([_text(value) for value in np.asarray(uniques, dtype=object).tolist()] + [MISSING], dtype=object)
    out = labels[codes]
    nulls = np.flatnonzero(codes < 0)
    if text_column and len(nulls):
        # factorize's nulls (None, NaN, pd.NA, NaT, ...) are MISSING for _text too, save exotic
        # ones such as Decimal("NaN"): the few null cells are passed through _text itself.
        values = series.to_numpy(dtype=object)
        out[nulls] = [_text(value) for value in values[nulls]]
    return pd.Series(out, index=series.index, name=series.name, dtype=object)


class RawInputCoercer(TransformerMixin, BaseEstimator):
    """Cast raw rows to the training types: numbers to float64, categories to str.

    Tolerates what callers actually send: numbers as strings (``"29.85"``), blanks,
    ints for flag columns, and extra columns (dropped).

    Parameters:
        numeric: numeric input columns.
        categorical: categorical input columns.
    """

    def __init__(self, numeric: list[str] | None = None, categorical: list[str] | None = None) -> None:
        self.numeric = numeric
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y: Any = None) -> RawInputCoercer:
        missing = [c for c in self._columns() if c not in X.columns]
        if missing:
            raise ValueError(f"input lacks columns {missing}")
        self.columns_ = self._columns()
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "columns_")
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"input lacks columns {missing}")
        out = pd.DataFrame(index=X.index)
        for column in self.numeric or []:
            values = X[column]
            if not pd.api.types.is_numeric_dtype(values):
                values = pd.to_numeric(values.astype("string").str.strip(), errors="coerce")
            out[column] = values.astype("float64").replace([np.inf, -np.inf], np.nan)
        for column in self.categorical or []:
            out[column] = _texts(X[column])
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "columns_")
        return np.asarray(self.columns_, dtype=object)

    def _columns(self) -> list[str]:
        return list(self.numeric or []) + list(self.categorical or [])


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Add config-declared features to a coerced frame.

    Parameters:
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
    return sum((_as_str(frame[c]) == value).astype("float64") for c in spec["columns"])


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
    index = np.searchsorted(edges, values, side="right")
    binned = np.asarray(labels, dtype=object)[index]
    binned[np.isnan(values)] = MISSING
    return pd.Series(binned, index=frame.index, dtype=object)


_BUILDERS = {"ratio": _ratio, "count_equal": _count_equal, "bins": _bins}


def derived_columns(config: ChurnopsConfig) -> tuple[list[str], list[str]]:
    """(numeric, categorical) names of the derived features."""
    numeric = [s.name for s in config.features.derived if s.kind in {"ratio", "count_equal"}]
    categorical = [s.name for s in config.features.derived if s.kind == "bins"]
    return numeric, categorical


def build_preprocessor(config: ChurnopsConfig) -> Pipeline:
    """Raw merged rows → a dense numeric matrix: coerce, derive, impute, scale, one-hot."""
    ds = config.dataset
    derived_numeric, derived_categorical = derived_columns(config)
    encode = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
             ds.numeric_features + derived_numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32),
             ds.categorical_features + derived_categorical),
        ],
        remainder="drop",
    )
    return Pipeline([
        ("coerce", RawInputCoercer(ds.numeric_features, ds.categorical_features)),
        ("derive", DerivedFeatures([s.model_dump() for s in config.features.derived])),
        ("encode", encode),
    ])
