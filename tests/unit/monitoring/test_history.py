"""churnops.monitoring.history: the table read from the day reports, its gaps and @champion moves,
the chart (a deterministic PNG of the documented size) and the page's link to it."""

from __future__ import annotations

import json
import struct
from datetime import date, timedelta

import pytest

from churnops.data import partition, write_json
from churnops.monitoring.history import (
    HistoryDay,
    champion_moves,
    format_history,
    last_monitored_day,
    read_history,
)
from churnops.monitoring.history_chart import render_history
from churnops.monitoring.report import build_report, decide

D0 = date(2026, 5, 1)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path))
    return tmp_path


def write_day(
    day: date,
    version: str,
    *,
    drifted: int = 0,
    roc_auc: float | None = 0.8,
    estimated_roc_auc: float | None = None,
    band: float = 0.01,
    **performance_extra,
) -> dict:
    """A day's ``drift_report.json`` as ``report_step`` writes it (built by ``build_report``), with a
    trusted label-free estimate when ``estimated_roc_auc`` is given (its band ± ``band``)."""
    features = {
        "n_features": 10,
        "drifted_features": [f"f{k}" for k in range(drifted)],
        "drift_share": drifted / 10,
        "dataset_drift": drifted > 3,
        "feature_drift": "feature_drift.json",
    }
    prediction = {"drifted": drifted > 2, "statistic": 0.05 * drifted, "p_value": 0.5, "effect_size": 0.05 * drifted}
    realized = {
        "n_labels": 0 if roc_auc is None else 400,
        "realized_roc_auc": roc_auc,
        "reference_roc_auc": 0.83,
        "drop": None,
        "threshold": 0.5,
        "precision": None,
        "recall": None,
        "f1": None,
        "alarm": False,
        "reasons": [],
        **performance_extra,
    }
    performance = {"target_drift": {"drifted": False}, "performance": realized, "rejected_label_files": []}
    if estimated_roc_auc is not None:
        performance["estimate"] = {
            "estimated_roc_auc": estimated_roc_auc,
            "estimated_roc_auc_low": estimated_roc_auc - band,
            "estimated_roc_auc_high": estimated_roc_auc + band,
            "trusted": True,
            "alarm": False,
            "reasons": [],
        }
    decision = decide(features, prediction, realized)
    scored = {"model_version": version, "rows": 100}
    report = build_report(day, scored, features, prediction, performance, decision)
    write_json(partition("reports", day) / "drift_report.json", report)
    return report


def test_the_table_covers_exactly_the_window_with_gaps_for_days_without_a_report(home):
    for offset in (0, 1, 3, 5):  # day 5 is after the window, day 0 before it
        write_day(D0 + timedelta(days=offset), "1", drifted=offset)
    rows = read_history(D0 + timedelta(days=4), 4)
    assert [r.date for r in rows] == [D0 + timedelta(days=k) for k in (1, 2, 3, 4)]
    assert [r.monitored for r in rows] == [True, False, True, False]
    assert rows[1] == HistoryDay(date=D0 + timedelta(days=2)), "a gap holds nothing but its date"
    assert [r.drift_share for r in rows] == [0.1, None, 0.3, None]
    assert [r.prediction_drift for r in rows] == [False, None, True, None]
    assert rows[2].prediction_drift_statistic == pytest.approx(0.15) and rows[2].drifted_features == 3


def test_an_unreadable_report_is_a_gap_not_an_error(home, caplog):
    write_day(D0, "1")
    broken = partition("reports", D0 + timedelta(days=1)) / "drift_report.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"date": "2026-05-02", "drift_sha')
    (partition("reports", D0 + timedelta(days=2)) / "drift_report.json").parent.mkdir(parents=True)
    (partition("reports", D0 + timedelta(days=2)) / "drift_report.json").write_text("[1, 2]")
    rows = read_history(D0 + timedelta(days=2), 3)
    assert [r.monitored for r in rows] == [True, False, False]
    assert "unreadable" in caplog.text and "drift_report.json" in caplog.text


def test_a_new_version_scoring_a_day_is_a_champion_move_even_across_a_gap(home):
    versions = {0: "1", 1: "1", 3: "2", 4: "2", 5: "1"}
    for offset, version in versions.items():
        write_day(D0 + timedelta(days=offset), version)
    rows = read_history(D0 + timedelta(days=5), 6)
    assert [r.champion_moved_from for r in rows] == [None, None, None, "1", None, "2"]
    assert champion_moves(rows) == [
        {"date": "2026-05-04", "from": "1", "to": "2", "decision": "scored"},
        {"date": "2026-05-06", "from": "2", "to": "1", "decision": "scored"},
    ]
    # The window starts the history: the first day scored by v2 in it is no move.
    assert champion_moves(read_history(D0 + timedelta(days=4), 2)) == []


def test_the_estimated_roc_auc_is_read_when_a_report_holds_one(home):
    write_day(D0, "1", estimated_roc_auc=0.79)
    write_day(D0 + timedelta(days=1), "1")
    rows = read_history(D0 + timedelta(days=1), 2)
    assert [r.estimated_roc_auc for r in rows] == [0.79, None]
    assert [(r.estimated_roc_auc_low, r.estimated_roc_auc_high) for r in rows] == [(0.78, 0.8), (None, None)]
    assert [r.realized_roc_auc for r in rows] == [0.8, 0.8]


def test_the_last_monitored_day_is_the_latest_report(home):
    assert last_monitored_day() is None
    write_day(D0 + timedelta(days=2), "1")
    write_day(D0, "1")
    (home / "reports" / "date=2026-06-30").mkdir()  # a folder without a report
    (home / "reports" / "date=not-a-day").mkdir()
    assert last_monitored_day() == D0 + timedelta(days=2)


def test_a_day_survives_its_json_form_and_the_text_table_names_gaps_and_moves(home):
    write_day(D0, "1", drifted=5)
    write_day(D0 + timedelta(days=2), "2", roc_auc=None)
    rows = read_history(D0 + timedelta(days=2), 3)
    assert [HistoryDay.from_dict(json.loads(json.dumps(r.to_dict()))) for r in rows] == rows
    lines = format_history(rows).splitlines()
    assert lines[1].split() == ["2026-05-01", "v1", "0.500", "dataset", "drift", "0.250", "drifted"] + [
        "0.8000",
        "-",
        "400",
        "retrain",
    ]
    assert lines[2].split() == ["2026-05-02", "no", "run"]
    assert lines[3].split()[:4] == ["2026-05-03", "v2", "(was", "v1)"] and lines[3].split()[-4:-1] == ["-", "-", "0"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_chart_is_a_png_of_the_documented_size_and_the_same_table_gives_the_same_bytes(home, tmp_path):
    for offset, version in {0: "1", 1: "1", 3: "2", 4: "2"}.items():
        write_day(D0 + timedelta(days=offset), version, drifted=offset, estimated_roc_auc=0.78)
    rows = read_history(D0 + timedelta(days=4), 5)
    first = render_history(rows, tmp_path / "a" / "chart.png", "t", drift_share_threshold=0.3, min_roc_auc=0.75)
    second = render_history(rows, tmp_path / "b.png", "t", drift_share_threshold=0.3, min_roc_auc=0.75)
    assert png_size(first.read_bytes()) == (1000, 700)
    assert first.read_bytes() == second.read_bytes()
    assert b"matplotlib" not in first.read_bytes(), "no software version in the file"
    moved = HistoryDay(**{**rows[3].to_dict(), "date": rows[3].date, "champion_moved_from": None})
    unmoved = render_history([*rows[:3], moved, rows[4]], tmp_path / "c.png", "t")
    assert unmoved.read_bytes() != first.read_bytes(), "a champion move is drawn"
    unbanded = [HistoryDay(**{**r.to_dict(), "date": r.date, "estimated_roc_auc_low": None}) for r in rows]
    assert render_history(unbanded, tmp_path / "d.png", "t").read_bytes() != first.read_bytes(), "the band is drawn"


def test_a_window_without_any_run_still_draws(tmp_path):
    rows = [HistoryDay(date=D0 + timedelta(days=k)) for k in range(3)]
    assert png_size(render_history(rows, tmp_path / "empty.png", "nothing yet").read_bytes()) == (1000, 700)
