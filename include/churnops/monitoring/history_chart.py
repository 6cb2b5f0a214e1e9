"""The monitoring history chart: three panels over the days of a history table (:mod:`~churnops.monitoring.history`).

1. drift: the share of drifted features (with the dataset-drift share) and the scores' KS
   statistic, a drifted day's KS filled;
2. ROC-AUC: realized on matured labels (with ``min_roc_auc``) and the label-free estimate with its
   band where reports hold one;
3. decisions: ``retrain``, ``none`` or no run, a day each.

Every panel marks the days ``@champion`` moved with a vertical line labelled with the versions.
matplotlib draws on its Agg canvas directly (no pyplot, no global backend), imported only here
when a chart is drawn; the PNG carries no software version, so the same table gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.data import replaced_atomically

if TYPE_CHECKING:
    from churnops.monitoring.history import HistoryDay

__all__ = ["CHART_DPI", "CHART_SIZE", "render_history", "scored_moves"]

CHART_SIZE = (10.0, 7.0)
CHART_DPI = 100
"""The chart is ``CHART_SIZE`` inches at ``CHART_DPI`` dots an inch: 1000 × 700 pixels."""

_MOVE_COLOUR = "#7b3294"
_RETRAIN_COLOUR = "#d7301f"
_NONE_COLOUR = "#1a9850"
_GAP_COLOUR = "#bdbdbd"


def _values(rows: Sequence[HistoryDay], field: str) -> list[float]:
    # NaN breaks a line, so a day without a value (or without a run) shows as a gap.
    return [math.nan if getattr(r, field) is None else float(getattr(r, field)) for r in rows]


def scored_moves(rows: Sequence[HistoryDay]) -> list[dict[str, Any]]:
    """The ``@champion`` moves the scoring versions tell: each first day a new version scored.

    Args:
        rows: the days, oldest first.

    Returns:
        ``[{"date", "from", "to", "decision": "scored"}]``.
    """
    return [
        {"date": r.date.isoformat(), "from": r.champion_moved_from, "to": str(r.model_version), "decision": "scored"}
        for r in rows
        if r.champion_moved_from is not None
    ]


def render_history(
    rows: Sequence[HistoryDay],
    path: Path,
    title: str,
    drift_share_threshold: float | None = None,
    min_roc_auc: float | None = None,
    moves: Sequence[dict[str, Any]] | None = None,
) -> Path:
    """Draw the history table as a PNG of :data:`CHART_SIZE` at :data:`CHART_DPI`.

    Args:
        rows: the days, oldest first (:func:`~churnops.monitoring.history.read_history`).
        path: the PNG to write, whole or not at all (parent folders are created).
        title: the chart's title.
        drift_share_threshold: drawn on the drift panel (``monitoring.drifted_feature_share``).
        min_roc_auc: drawn on the ROC-AUC panel (``monitoring.min_roc_auc``).
        moves: the ``@champion`` moves to mark (:func:`~churnops.monitoring.history.champion_moves`);
            None: the versions that scored the days tell them.

    Returns:
        ``path``.
    """
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=CHART_SIZE, dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    drift_axes, auc_axes, decision_axes = figure.subplots(3, 1, sharex=True, height_ratios=[3, 3, 1.2])
    first = next((r.model_version for r in rows if r.model_version is not None), None)
    figure.suptitle(title + (f" (@champion v{first} at the start)" if first else ""), fontsize=11)
    x = [mdates.date2num(r.date) for r in rows]

    _drift_panel(drift_axes, rows, x, drift_share_threshold)
    _auc_panel(auc_axes, rows, x, min_roc_auc)
    _decision_panel(decision_axes, rows, x)
    _champion_moves((drift_axes, auc_axes, decision_axes), scored_moves(rows) if moves is None else moves)

    if rows:
        decision_axes.set_xlim(mdates.date2num(rows[0].date) - 0.5, mdates.date2num(rows[-1].date) + 0.5)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=10)
    decision_axes.xaxis.set_major_locator(locator)
    decision_axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for axes in (drift_axes, auc_axes, decision_axes):
        axes.grid(axis="x", color="#eeeeee")

    path = Path(path)
    with replaced_atomically(path) as temporary:
        figure.savefig(temporary, format="png", metadata={"Software": None})
    return path


def _drift_panel(axes: Any, rows: Sequence[HistoryDay], x: list[float], threshold: float | None) -> None:
    axes.plot(x, _values(rows, "drift_share"), "o-", color="#2c7bb6", markersize=4, label="drifted feature share")
    statistic = _values(rows, "prediction_drift_statistic")
    axes.plot(x, statistic, "s--", color="#fdae61", markersize=4, label="prediction drift (KS)")
    flagged = [(xi, s) for xi, s, r in zip(x, statistic, rows, strict=True) if r.prediction_drift]
    if flagged:
        axes.plot(*zip(*flagged, strict=True), "s", color=_RETRAIN_COLOUR, markersize=6, label="prediction drifted")
    if threshold is not None:
        axes.axhline(threshold, color="#2c7bb6", linestyle=":", linewidth=1, label=f"dataset drift above {threshold:g}")
    axes.set_ylim(-0.03, 1.03)
    axes.set_ylabel("drift")
    axes.legend(loc="upper left", fontsize=8, ncols=2, frameon=False)


def _auc_panel(axes: Any, rows: Sequence[HistoryDay], x: list[float], floor: float | None) -> None:
    realized = _values(rows, "realized_roc_auc")
    estimated = _values(rows, "estimated_roc_auc")
    low, high = _values(rows, "estimated_roc_auc_low"), _values(rows, "estimated_roc_auc_high")
    axes.plot(x, realized, "o-", color="#1a9641", markersize=4, label="realized ROC-AUC (matured labels)")
    if any(not math.isnan(v) for v in estimated):
        axes.plot(x, estimated, "d--", color="#a6d96a", markersize=4, label="estimated ROC-AUC (no labels)")
    if any(not math.isnan(v) for v in low + high):
        axes.fill_between(x, low, high, color="#a6d96a", alpha=0.3, linewidth=0, label="estimate's 95% band")
    if floor is not None:
        axes.axhline(floor, color="#1a9641", linestyle=":", linewidth=1, label=f"min_roc_auc {floor:g}")
    known = [v for v in realized + estimated + low if not math.isnan(v)]
    if not known:
        axes.text(
            0.5, 0.5, "no ROC-AUC yet: too few matured labels", transform=axes.transAxes, ha="center", color="#777777"
        )
    bottom = min([*known, floor if floor is not None else 1.0])
    axes.set_ylim(max(0.0, bottom - 0.05), 1.0)
    axes.set_ylabel("ROC-AUC")
    axes.legend(loc="lower left", fontsize=8, ncols=3, frameon=False)


def _decision_panel(axes: Any, rows: Sequence[HistoryDay], x: list[float]) -> None:
    for kind, colour, marker, label in (
        ("retrain", _RETRAIN_COLOUR, "v", "retrain"),
        ("none", _NONE_COLOUR, "o", "none"),
        (None, _GAP_COLOUR, "x", "no run"),
    ):
        days = [xi for xi, r in zip(x, rows, strict=True) if (r.decision if r.monitored else None) == kind]
        axes.plot(days, [0] * len(days), marker, color=colour, markersize=7, linestyle="none", label=label)
    axes.set_yticks([])
    axes.set_ylim(-1, 1)
    axes.set_ylabel("decision")
    axes.legend(loc="upper left", fontsize=8, ncols=3, frameon=False)


def _champion_moves(panels: Sequence[Any], moves: Sequence[dict[str, Any]]) -> None:
    import matplotlib.dates as mdates
    from matplotlib.transforms import blended_transform_factory

    top = panels[0]
    text_at = blended_transform_factory(top.transData, top.transAxes)
    for move in moves:
        day = mdates.date2num(date.fromisoformat(str(move["date"])))
        if move.get("decision") == "scored":
            # Only the scoring told it: between the last day the old version scored and the first of the new one.
            at, label = day - 0.5, f"@champion v{move['from']} → v{move['to']}"
        else:
            # A logged promotion or rollback: after its as-of day's monitoring, which triggered it.
            at = day + 0.4
            label = f"@champion v{move['from']} → v{move['to']} ({move['decision']})"
            if move.get("from") is None:
                label = f"@champion v{move['to']} ({move['decision']})"
        for axes in panels:
            axes.axvline(at, color=_MOVE_COLOUR, linewidth=1.2)
        top.text(
            at + 0.05,
            0.97,
            label,
            transform=text_at,
            fontsize=8,
            color=_MOVE_COLOUR,
            va="top",
            rotation=90,
        )
