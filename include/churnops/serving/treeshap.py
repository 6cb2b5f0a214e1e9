"""LightGBM's TreeSHAP, tabulated per tree once and looked up per request.

A tree's TreeSHAP values for a row depend on the row only through the side it takes at each
of the tree's splits, so a tree whose splits are ``feature <= threshold`` has one vector of
contributions per cell of the grid its thresholds cut its features into. A churnops LightGBM
model has shallow trees (a few splits each), so that grid is small: :func:`tabulate` asks
LightGBM itself (``pred_contrib`` restricted to that one tree) for the contributions of one
representative row per cell, and a request then costs a ``searchsorted`` per feature and a few
array lookups per tree instead of the recursive TreeSHAP of every tree for every row.

A row's cell is found the way LightGBM decides a split (``NumericalDecision``): NaN reads as 0
unless the split's missing type is NaN, a missing type Zero or NaN sends such values to the
default side, and otherwise ``value <= threshold`` goes left. Every threshold and the zero band
are class boundaries, so rows in one class take the same side at every split. The table is
used only once it reproduces ``pred_contrib`` on rows reaching every class (:func:`tabulate`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["TABLE_FROM_ROWS", "tabulate"]

TABLE_FROM_ROWS = 64
"""Requests of fewer rows go through ``pred_contrib`` itself: the lookups cost a fixed few milliseconds."""

MAX_CELLS = 4096
"""A tree cutting its features into more cells than this is not tabulated (the model is not)."""

_ZERO = float(np.float32(1e-35))
"""LightGBM's ``kZeroThreshold`` (a float, widened): ``|value| <= _ZERO`` is zero for a missing type Zero."""


def tabulate(booster: Any, n_features: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """The table version of ``booster.predict(X, pred_contrib=True)[:, :-1]``, or None when it does not apply.

    Args:
        booster: a fitted binary LightGBM booster.
        n_features: the columns of the rows it predicts.

    Returns:
        A function from rows (float64, ``(rows, n_features)``) to their contributions, equal to
        LightGBM's within floating-point rounding (checked here on probe rows), or None for a
        model with categorical splits, very wide trees or a table that does not reproduce it.
    """
    trees = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    splits = [_splits(tree) for tree in trees]
    if any(s is None for s in splits):
        return None
    # Per tree and feature, the thresholds cutting that feature (the zero band's too, when a split
    # reads zero as missing); per feature, all of them: a class of the feature cuts every tree's.
    local: list[dict[int, np.ndarray]] = []
    for tree_splits in splits:
        found: dict[int, set[float]] = {}
        for feature, threshold, missing in tree_splits or []:
            found.setdefault(feature, set()).add(threshold)
            if missing == "Zero":
                found[feature] |= {float(np.nextafter(-_ZERO, -np.inf)), _ZERO}
        local.append({f: np.array(sorted(c)) for f, c in found.items()})
    used = sorted({feature for tree_cuts in local for feature in tree_cuts})
    edges = {f: np.unique(np.concatenate([tree_cuts[f] for tree_cuts in local if f in tree_cuts])) for f in used}
    reads = {f: _as_lightgbm_reads(_representatives(feature_edges)[:-1]) for f, feature_edges in edges.items()}
    tables = []
    for index, cuts in enumerate(local):
        features = sorted(cuts)
        sizes = [len(cuts[f]) + 2 for f in features]  # at or under each cut, over the last, NaN
        cells = int(np.prod(sizes))
        if cells > MAX_CELLS:
            return None
        grid = np.zeros((cells, n_features))
        for feature, column in zip(features, np.unravel_index(np.arange(cells), sizes), strict=True):
            grid[:, feature] = _representatives(cuts[feature])[column]
        values = booster.predict(grid, pred_contrib=True, start_iteration=index, num_iteration=1)
        strides = np.cumprod([1, *sizes[::-1]])[-2::-1]
        # Each feature's class (over its global edges) → this tree's class × stride.
        lookups = [
            np.append(np.searchsorted(cuts[f], reads[f], side="left"), len(cuts[f]) + 1) * stride
            for f, stride in zip(features, strides, strict=True)
        ]
        tables.append((features, lookups, np.asarray(values)[:, features].T.copy()))

    def contributions(X: np.ndarray) -> np.ndarray:
        classes = {f: _classes(X[:, f], cuts) for f, cuts in edges.items()}
        out = np.zeros((len(X), n_features))
        for features, lookups, table in tables:
            cell = lookups[0][classes[features[0]]]
            for feature, lookup in zip(features[1:], lookups[1:], strict=True):
                cell += lookup[classes[feature]]
            for feature, column in zip(features, table, strict=True):
                out[:, feature] += column[cell]
        return out

    probe = _probe_rows(edges, n_features)
    expected = np.asarray(booster.predict(probe, pred_contrib=True))[:, :-1]
    if not np.allclose(contributions(probe), expected, rtol=0, atol=1e-9):
        return None
    return contributions


def _splits(node: dict[str, Any]) -> list[tuple[int, float, str]] | None:
    """A tree's splits as (feature, threshold, missing type), or None for a split other than ``<=``."""
    if "leaf_value" in node:
        return []
    if node.get("decision_type") != "<=":
        return None
    left, right = _splits(node["left_child"]), _splits(node["right_child"])
    if left is None or right is None:
        return None
    return [(int(node["split_feature"]), float(node["threshold"]), str(node["missing_type"])), *left, *right]


def _representatives(cuts: np.ndarray) -> np.ndarray:
    """One value per class of ``cuts`` (at or under each cut, over the last, NaN) that LightGBM reads in that class.

    LightGBM reads a value within its zero band as 0 (it keeps only the others of a row), so a
    class is represented by its cut only when the cut reads as itself; else by 0 or a value just
    outside the band, whichever falls in the class (none does for a class holding nothing but
    band values: no row reaches it).
    """
    lows = np.concatenate([[-np.inf], cuts])
    highs = np.concatenate([cuts, [np.inf]])
    out = []
    for low, high in zip(lows, highs, strict=True):
        candidates = [high if np.isfinite(high) else np.nextafter(low, np.inf), 0.0]
        candidates += [np.nextafter(-_ZERO, -np.inf), np.nextafter(_ZERO, np.inf)]
        fits = [c for c in candidates if low < _as_lightgbm_reads(c) <= high]
        out.append(fits[0] if fits else candidates[0])
    return np.array([*out, np.nan])


def _as_lightgbm_reads(value: Any) -> Any:
    """Values within the zero band as 0, as LightGBM's prediction reads a row."""
    if np.ndim(value) == 0:
        return 0.0 if abs(value) <= _ZERO else value
    return np.where(np.abs(value) <= _ZERO, 0.0, value)


def _classes(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Each value's class: how many cuts lie under it as LightGBM reads it, or ``len(cuts) + 1`` for NaN."""
    classes = np.searchsorted(cuts, _as_lightgbm_reads(values), side="left")
    classes[np.isnan(values)] = len(cuts) + 1
    return classes


def _probe_rows(edges: dict[int, np.ndarray], n_features: int) -> np.ndarray:
    """Rows reaching every class of every feature, each cut and its neighbours, in shifting combinations."""
    count = max([4 * len(e) + 7 for e in edges.values()] + [1])
    rng = np.random.default_rng(0)
    probe = np.zeros((3 * count, n_features))
    for feature, cuts in edges.items():
        near = [cuts, np.nextafter(cuts, -np.inf), np.nextafter(cuts, np.inf), [0.0, 1e-36, -1e-36, _ZERO, -_ZERO]]
        values = np.concatenate([_representatives(cuts), *near])
        probe[:, feature] = np.concatenate([np.resize(values, count), rng.choice(values, 2 * count)])
    return probe
