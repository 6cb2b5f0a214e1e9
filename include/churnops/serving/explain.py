"""Reasons: each row's feature contributions, computed by the model family's own exact method, in raw feature names.

A churnops model is a pipeline (``churnops.features`` steps, then the estimator), so the
estimator sees transformed columns: scaled numbers, one-hot indicators or ordinal codes, and
derived features. Contributions are computed on those columns in one call for the whole
request, then summed back onto the raw columns a caller sent, through one matrix product:

- an encoded column belongs to the raw column it encodes (a raw categorical column's one-hot
  indicators are summed);
- a derived feature (``features.derived``) is shared equally by the raw columns it is computed
  from (a ratio by its numerator and denominator, ``count_equal`` by its columns, ``bins`` by its column).

The methods, per family (none permutes or samples; each row's contributions plus the bias
add up exactly to the estimator's output for that row):

- ``lightgbm``, ``xgboost``: TreeSHAP, the libraries' own ``pred_contrib`` / ``pred_contribs``,
  in log-odds;
- ``logistic_regression``: ``coef * x`` of each transformed column, in log-odds (numeric columns
  are standardised, so a number's contribution is relative to the training mean);
- ``random_forest``: the fallback, the decision-path decomposition (Saabas): along each tree's
  path the change in the positive class's share at every split goes to the split's feature,
  averaged over the trees, in probability.

A calibrated model (:class:`churnops.modeling.CalibratedPipeline`) serves its estimator's
probability passed through a monotone map fitted after training. Reasons stay contributions to
the estimator's own output (its log-odds margin, or the forest's probability) before that map:
the map does not reverse the order of scores (isotonic is non-decreasing, the sigmoid increasing
for any model that ranks better than chance), so a feature that raises the margin does not lower
the served probability, but the contributions add up to the uncalibrated output, not to the served one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Explainer", "build_explainer", "positive_column", "predict_options", "top_reasons"]

ONE_THREAD_BELOW_ROWS = 1000
"""LightGBM predicts fewer rows than this on one thread: starting its OpenMP threads costs more
than a small request's work (milliseconds on a busy machine); the results are the same."""

UNITS = {
    "lightgbm": "log_odds",
    "xgboost": "log_odds",
    "logistic_regression": "log_odds",
    "random_forest": "probability",
}


@dataclass(frozen=True)
class Explainer:
    """How to turn a request's transformed rows into contributions per raw column."""

    family: str
    raw_columns: list[str]
    """The model's raw input columns, in the order of the contributions' columns."""
    to_raw: np.ndarray
    """``(transformed columns, raw columns)`` weights: a transformed column's share of each raw column."""
    unit: str
    """``log_odds`` or ``probability``: what the contributions add up to."""
    transformed_contributions: Callable[[np.ndarray], np.ndarray]
    """Transformed rows → ``(rows, transformed columns)`` contributions, bias left out."""

    def contributions(self, transformed: np.ndarray) -> np.ndarray:
        """Each row's contribution per raw column.

        Args:
            transformed: the rows as the estimator sees them (the pipeline's features step's output).

        Returns:
            A ``(rows, raw columns)`` array.
        """
        return self.transformed_contributions(transformed) @ self.to_raw


def build_explainer(pipeline: Any, family: str) -> Explainer:
    """The explainer of a fitted churnops pipeline (``features`` steps, then the estimator).

    Args:
        pipeline: the fitted scikit-learn pipeline (the registered model's raw model).
        family: its model family (the version's ``churnops.family`` tag).

    Returns:
        The explainer.

    Raises:
        ValueError: the family is unknown or the pipeline is not shaped like churnops' models.
    """
    if family not in UNITS:
        raise ValueError(f"no contribution method for model family {family!r}; known: {sorted(UNITS)}")
    features, estimator = pipeline[:-1], pipeline[-1]
    steps = _feature_steps(features)
    raw_columns = [str(c) for c in steps["coerce"].columns_]
    to_raw = _to_raw(steps["encode"], steps.get("derive"), raw_columns)
    method = {
        "lightgbm": _lightgbm,
        "xgboost": _xgboost,
        "logistic_regression": _linear,
        "random_forest": _forest,
    }[family](estimator)
    return Explainer(family, raw_columns, to_raw, UNITS[family], method)


def _feature_steps(features: Any) -> dict[str, Any]:
    """The fitted ``coerce``, ``derive`` and ``encode`` steps, however deep the features pipeline nests them."""
    found: dict[str, Any] = {}

    def walk(step: Any) -> None:
        for name, inner in getattr(step, "steps", []):
            if hasattr(inner, "steps"):
                walk(inner)
            else:
                found[name] = inner

    walk(features)
    if not {"coerce", "encode"} <= set(found):
        raise ValueError(f"the model's features have steps {sorted(found)}, not churnops' coerce … encode")
    return found


def _to_raw(encode: Any, derive: Any, raw_columns: list[str]) -> np.ndarray:
    """The ``(transformed, raw)`` weights: encoded columns to their input column, derived ones shared."""
    from churnops.features import CategoryEncoder

    sources: dict[str, list[str]] = {}
    for spec in getattr(derive, "specs_", []) or []:
        used = {"ratio": [spec.get("numerator"), spec.get("denominator")], "count_equal": spec.get("columns")}
        sources[spec["name"]] = [str(c) for c in used.get(spec["kind"], [spec.get("column")]) or []]
    index = {name: i for i, name in enumerate(raw_columns)}
    owners: list[str] = []  # the encode step's input column of each transformed column
    for name, transformer, columns in encode.transformers_:
        if name == "remainder" or transformer == "drop" or not len(columns):
            continue
        if isinstance(transformer, CategoryEncoder) and transformer.encoding == "onehot":
            for column, categories in zip(columns, transformer.categories_, strict=True):
                owners += [str(column)] * len(categories)
        else:
            owners += [str(column) for column in columns]
    width = len(encode.get_feature_names_out())
    if len(owners) != width:
        raise ValueError(f"mapped {len(owners)} transformed columns back, the model has {width}")
    weights = np.zeros((width, len(raw_columns)))
    for row, owner in enumerate(owners):
        shared = sources.get(owner, [owner])
        for column in shared:
            weights[row, index[column]] += 1.0 / len(shared)
    return weights


def positive_column(estimator: Any) -> int:
    """The column of ``predict_proba`` that holds the positive class (label 1)."""
    classes = list(getattr(estimator, "classes_", [0, 1]))
    return classes.index(1) if 1 in classes else len(classes) - 1


def predict_options(family: str, rows: int) -> dict[str, Any]:
    """Keyword arguments for the estimator's ``predict_proba`` on ``rows`` rows (threads only, never the result).

    Args:
        family: the model family.
        rows: the rows to predict.

    Returns:
        ``{"num_threads": 1}`` for LightGBM on fewer than :data:`ONE_THREAD_BELOW_ROWS` rows, else nothing.
    """
    return {"num_threads": 1} if family == "lightgbm" and rows < ONE_THREAD_BELOW_ROWS else {}


def _lightgbm(estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
    from churnops.serving.treeshap import TABLE_FROM_ROWS, tabulate

    booster = estimator.booster_
    table = tabulate(booster, booster.num_feature())

    def contributions(X: np.ndarray) -> np.ndarray:
        if table is not None and len(X) >= TABLE_FROM_ROWS:
            return table(X)
        # The booster itself: the scikit-learn wrapper re-reads its parameters on every call.
        options = predict_options("lightgbm", len(X))
        return np.asarray(booster.predict(X, pred_contrib=True, **options))[:, :-1]

    return contributions


def _xgboost(estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
    import xgboost

    booster = estimator.get_booster()

    def contributions(X: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(xgboost.DMatrix(X, missing=np.nan), pred_contribs=True))[:, :-1]

    return contributions


def _linear(estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
    # Binary logistic regression: one row of coefficients, for the class classes_[1].
    coef = np.asarray(estimator.coef_, dtype="float64")[0]
    sign = 1.0 if positive_column(estimator) == 1 else -1.0

    def contributions(X: np.ndarray) -> np.ndarray:
        return sign * X * coef

    return contributions


def _forest(estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
    from scipy import sparse

    positive = positive_column(estimator)
    rows, columns, values = [], [], []
    offset = 0
    for tree in estimator.estimators_:
        t = tree.tree_
        value = t.value[:, 0, :]
        share = value[:, positive] / np.maximum(value.sum(axis=1), 1e-300)
        for parent in range(t.node_count):
            for child in (t.children_left[parent], t.children_right[parent]):
                if child >= 0:  # a split: the child's change in share goes to the split's feature
                    rows.append(offset + child)
                    columns.append(t.feature[parent])
                    values.append((share[child] - share[parent]) / len(estimator.estimators_))
        offset += t.node_count
    deltas = sparse.csr_matrix((values, (rows, columns)), shape=(offset, estimator.n_features_in_))

    def contributions(X: np.ndarray) -> np.ndarray:
        paths, _ = estimator.decision_path(X)
        return np.asarray((paths @ deltas).todense())

    return contributions


def top_reasons(
    contributions: np.ndarray, values: np.ndarray, columns: list[str], k: int
) -> list[list[dict[str, Any]]]:
    """Each row's ``k`` raw features with the largest absolute contributions, largest first.

    Args:
        contributions: ``(rows, raw columns)`` contributions (:meth:`Explainer.contributions`).
        values: the rows' raw values in the same column order (an object array), shown beside each reason.
        columns: the raw column names.
        k: reasons per row (fewer when the model has fewer columns).

    Returns:
        Per row, a list of ``{"feature", "value", "contribution"}``.
    """
    k = min(k, contributions.shape[1])
    if k == 0 or len(contributions) == 0:
        return [[] for _ in range(len(contributions))]
    size = np.abs(contributions)
    picked = np.argpartition(-size, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(picked, np.argsort(-np.take_along_axis(size, picked, axis=1), axis=1), axis=1)
    chosen = np.take_along_axis(contributions, order, axis=1).round(6).ravel().tolist()
    # Gathered as whole arrays first, then built in one flat pass and cut into rows of k.
    features = np.asarray(columns, dtype=object)[order].ravel().tolist()
    shown = np.take_along_axis(values, order, axis=1).ravel().tolist()
    if not set(map(type, shown)) <= _PLAIN_TYPES:  # a float (maybe NaN) or a NumPy scalar
        shown = list(map(_plain, shown))
    flat = [
        {"feature": feature, "value": value, "contribution": amount}
        for feature, value, amount in zip(features, shown, chosen, strict=True)
    ]
    return list(map(list, zip(*[iter(flat)] * k, strict=True)))


_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> Any:
    # JSON has no NaN: a missing number reads null.
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if isinstance(value, np.generic) else value
