"""Monitoring history at a glance: the last N days' reports as one table and one chart.

The table is read from the day files monitoring already writes (``reports/date=D/drift_report.json``),
for the days ``D - N + 1 .. D`` only: the history of a day never depends on when it is drawn.
A day without a report (not run, rejected, still running) is a gap, never an error. The
``@champion`` in effect on a day is the version that scored it (the report's ``model_version``),
so a change between two monitored days is a move of the alias (a promotion or a rollback).

:func:`write_history` draws ``history.png`` beside the day's report (the monitoring run logs it
to the day's MLflow run and the HTML report links it first, :func:`history_link`);
``churnops history`` draws any day and window.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from churnops.config import ChurnopsConfig, churnops_home
from churnops.data import partition
from churnops.days import parse_day, trailing_days
from churnops.monitoring.history_chart import CHART_DPI, CHART_SIZE, render_history, scored_moves
from churnops.tracking import read_champion_moves

__all__ = [
    "CHART_DPI",
    "CHART_SIZE",
    "HISTORY_CHART",
    "HistoryDay",
    "champion_moves",
    "format_history",
    "last_monitored_day",
    "history_link",
    "logged_champion_moves",
    "read_history",
    "render_history",
    "write_history",
]

log = logging.getLogger(__name__)

HISTORY_CHART = "history.png"
"""The chart's file name, beside the day's ``drift_report.json`` (and the page's link to it)."""

REPORT = "drift_report.json"


@dataclass(frozen=True)
class HistoryDay:
    """One day of the history: what its monitoring report says, or a gap.

    Attributes:
        date: the day.
        monitored: whether the day has a report; every other field is None when it has not.
        model_version: the ``@champion`` version that scored the day.
        champion_moved_from: the version that scored the previous monitored day of the window,
            when it differs (``@champion`` moved in between); else None.
        drift_share: the share of features that drifted.
        dataset_drift: whether that share made it dataset drift.
        drifted_features: how many features drifted.
        prediction_drift: whether the scores drifted.
        prediction_drift_statistic: the scores' KS statistic.
        realized_roc_auc: ROC-AUC on the matured labels (None until enough have matured).
        estimated_roc_auc: an estimate of the ROC-AUC without labels, when the report holds one.
        estimated_roc_auc_low: the low end of the estimate's band.
        estimated_roc_auc_high: the high end of the estimate's band.
        n_labels: matured labels judged.
        decision: ``retrain`` or ``none``.
    """

    date: date
    monitored: bool = False
    model_version: str | None = None
    champion_moved_from: str | None = None
    drift_share: float | None = None
    dataset_drift: bool | None = None
    drifted_features: int | None = None
    prediction_drift: bool | None = None
    prediction_drift_statistic: float | None = None
    realized_roc_auc: float | None = None
    estimated_roc_auc: float | None = None
    estimated_roc_auc_low: float | None = None
    estimated_roc_auc_high: float | None = None
    n_labels: int | None = None
    decision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The day as JSON-ready values (the date as ``YYYY-MM-DD``)."""
        return {**asdict(self), "date": self.date.isoformat()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HistoryDay:
        """The day back from :meth:`to_dict`'s values."""
        return cls(**{**values, "date": parse_day(values["date"])})


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _day_from_report(day: date, report: dict[str, Any]) -> HistoryDay:
    details = report.get("details") or {}
    prediction = details.get("prediction") or {}
    version = report.get("model_version")
    return HistoryDay(
        date=day,
        monitored=True,
        model_version=None if version is None else str(version),
        drift_share=_optional_float(report.get("drift_share")),
        dataset_drift=report.get("dataset_drift"),
        drifted_features=len(report.get("drifted_features") or []),
        prediction_drift=report.get("prediction_drift"),
        prediction_drift_statistic=_optional_float(prediction.get("statistic")),
        realized_roc_auc=_optional_float(report.get("realized_roc_auc")),
        estimated_roc_auc=_optional_float(report.get("estimated_roc_auc")),
        estimated_roc_auc_low=_optional_float(report.get("estimated_roc_auc_low")),
        estimated_roc_auc_high=_optional_float(report.get("estimated_roc_auc_high")),
        n_labels=report.get("n_labels"),
        decision=report.get("decision"),
    )


def _read_report(day: date) -> dict[str, Any] | None:
    path = partition("reports", day) / REPORT
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # cut short or edited by hand: a gap, said once, not a failed chart
        log.warning("monitoring history: %s is unreadable (%s); the day is shown as a gap", path, exc)
        return None
    return report if isinstance(report, dict) else None


def read_history(day: date | str, days: int) -> list[HistoryDay]:
    """The history table of the ``days`` days ending with ``day``, oldest first.

    Args:
        day: the last day (a date or ``YYYY-MM-DD``).
        days: how many days.

    Returns:
        One :class:`HistoryDay` a day, a gap (``monitored`` False) for a day without a readable
        report; ``champion_moved_from`` is set on the first day a new ``@champion`` scored.
    """
    rows: list[HistoryDay] = []
    scored_by: str | None = None
    for current in trailing_days(parse_day(day), days):
        report = _read_report(current)
        if report is None:
            rows.append(HistoryDay(date=current))
            continue
        row = _day_from_report(current, report)
        if scored_by is not None and row.model_version is not None and row.model_version != scored_by:
            row = HistoryDay(**{**asdict(row), "champion_moved_from": scored_by})
        scored_by = row.model_version or scored_by
        rows.append(row)
    return rows


def logged_champion_moves(config: ChurnopsConfig, rows: list[HistoryDay]) -> list[dict[str, Any]]:
    """The ``@champion`` moves the registry's move log holds for the table's days.

    Args:
        config: the registered model.
        rows: :func:`read_history`'s table (its first and last day bound the moves).

    Returns:
        ``[{"date": the move's as-of day, "from", "to", "decision", "run_id"}]``, oldest first.
    """
    if not rows:
        return []
    first, last = rows[0].date.isoformat(), rows[-1].date.isoformat()
    return [m for m in read_champion_moves(config.registry) if first <= str(m["date"]) <= last]


def champion_moves(rows: list[HistoryDay], logged: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The ``@champion`` moves of the table's days.

    A move in the registry's log (``logged``) is shown on its as-of day, with its decision
    (``promoted`` or ``rolled_back``); a version that first scored a day without a logged move
    to it (a registry moved by hand, or days before the log existed) is shown on that day.

    Args:
        rows: :func:`read_history`'s table.
        logged: :func:`logged_champion_moves` for the same days (None: none).

    Returns:
        ``[{"date", "from", "to", "decision"}]``, by date; ``decision`` is ``scored`` for a move
        seen only in which version scored the days.
    """
    logged = logged or []
    covered = {str(m["to"]) for m in logged}
    seen = [m for m in scored_moves(rows) if m["to"] not in covered]
    moves = [{key: m.get(key) for key in ("date", "from", "to", "decision")} for m in logged] + seen
    return sorted(moves, key=lambda m: str(m["date"]))


def last_monitored_day() -> date | None:
    """The latest day with a monitoring report under ``$CHURNOPS_HOME/reports``, or None."""
    days = []
    for folder in (churnops_home() / "reports").glob("date=*"):
        try:
            found = date.fromisoformat(folder.name.removeprefix("date="))
        except ValueError:
            continue
        if (folder / REPORT).is_file():
            days.append(found)
    return max(days, default=None)


def _text(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def format_history(rows: list[HistoryDay]) -> str:
    """The table as fixed-width text, one line a day (``churnops history``'s output).

    Args:
        rows: :func:`read_history`'s table.

    Returns:
        The text, with a header line; a gap reads ``no run``.
    """
    header = ("date", "champion", "drift share", "pred. drift KS", "ROC-AUC", "estimated", "labels", "decision")
    lines = [header]
    for r in rows:
        if not r.monitored:
            lines.append((r.date.isoformat(), "", "", "", "", "", "", "no run"))
            continue
        champion = f"v{r.model_version}" + (f" (was v{r.champion_moved_from})" if r.champion_moved_from else "")
        drift = _text(r.drift_share, ".3f") + (" dataset drift" if r.dataset_drift else "")
        prediction = _text(r.prediction_drift_statistic, ".3f") + (" drifted" if r.prediction_drift else "")
        lines.append(
            (
                r.date.isoformat(),
                champion,
                drift,
                prediction,
                _text(r.realized_roc_auc, ".4f"),
                _text(r.estimated_roc_auc, ".4f"),
                _text(r.n_labels),
                str(r.decision),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def write_history(
    config: ChurnopsConfig, day: date | str, days: int | None = None, path: Path | None = None
) -> tuple[list[HistoryDay], Path]:
    """Read the history of the days ending with ``day`` and draw it.

    Args:
        config: ``monitoring.history_days`` and the thresholds drawn on the chart.
        day: the last day (a date or ``YYYY-MM-DD``).
        days: how many days (default: ``monitoring.history_days``).
        path: the PNG to write (default: ``reports/date=D/history.png``, the monitoring run's).

    Returns:
        The table (:func:`read_history`) and the PNG's path.
    """
    day = parse_day(day)
    rows = read_history(day, days or config.monitoring.history_days)
    target = Path(path) if path is not None else partition("reports", day) / HISTORY_CHART
    render_history(
        rows,
        target,
        moves=champion_moves(rows, logged_champion_moves(config, rows)),
        title=f"{config.registry.model_name} on {config.dataset.name}: monitoring {rows[0].date} to {day}",
        drift_share_threshold=config.monitoring.drifted_feature_share,
        min_roc_auc=config.monitoring.min_roc_auc,
    )
    return rows, target


def history_link(days: int) -> str:
    """The block that links the day's history chart (``history.png`` beside the page), put first on the page.

    Args:
        days: the days the chart covers (named in the link).

    Returns:
        The HTML ``<div id="churnops-history">`` with the link.
    """
    return (
        '<div id="churnops-history" style="padding:8px 16px;font-family:sans-serif;font-size:14px">'
        f'<a href="{HISTORY_CHART}">History of the last {days} days</a>: drift share, prediction drift, '
        "ROC-AUC, decisions and @champion moves</div>"
    )
