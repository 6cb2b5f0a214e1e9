"""The monitoring history: the table from the days a real monitoring run wrote, its chart on each
day's MLflow run and page, and ``churnops history`` end to end, across a promotion and a rollback."""

from __future__ import annotations

import json
import re
import struct
from datetime import date, timedelta
from pathlib import Path

import pytest

from churnops.cli import main
from tests.helpers import churnops_environment, write_config

pytestmark = pytest.mark.e2e

D0 = date(2026, 10, 1)
GAP = D0 + timedelta(days=3)  # simulated but never monitored
LAST = D0 + timedelta(days=6)
WINDOW = 7


def day(offset: int) -> str:
    return (D0 + timedelta(days=offset)).isoformat()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """v1 then v2 trained; days 0-2 monitored with v1, day 3 not at all, v2 promoted for days 4-5,
    rolled back to v1 for day 6 (the only day with an HTML page)."""
    root = tmp_path_factory.mktemp("history-home")
    settings = {"html_report": False, "history_days": 5, "label_delay_days": 2}
    config = write_config(
        root / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        policy={"bootstrap_samples": 100},
        monitoring=settings,
    )
    with_page = write_config(
        root / "with-page.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        monitoring={**settings, "html_report": True},
    )
    with churnops_environment(root, config):
        from churnops.config import load_config
        from churnops.tracking import configure_mlflow, promote_version

        assert main(["train"]) == 0
        assert main(["train", "--run-id", "second"]) == 0  # v2, @challenger
        assert main(["simulate", "--start", day(0), "--days", "7", "--rows-per-day", "600", "--seed", "5"]) == 0
        for offset in (0, 1, 2):
            assert main(["monitor", "--date", day(offset)]) == 0
        configure_mlflow(load_config())
        promotion = {"churnops.decision": "promoted", "churnops.decision_as_of": day(3)}
        promote_version(load_config().registry, "2", "1", promotion)
        for offset in (4, 5):
            assert main(["monitor", "--date", day(offset)]) == 0
        assert main(["rollback", "--date", day(5), "--reason", "history test"]) == 0
        assert main(["monitor", "--date", day(6), "--config", str(with_page)]) == 0
        yield root


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


def test_the_table_holds_what_each_days_report_says_with_gaps_and_champion_moves(home):
    from churnops.config import load_config
    from churnops.monitoring import champion_moves, logged_champion_moves, read_history

    rows = read_history(LAST, WINDOW)
    assert [r.date for r in rows] == [D0 + timedelta(days=k) for k in range(WINDOW)]
    assert [r.monitored for r in rows] == [True, True, True, False, True, True, True]
    assert [r.model_version for r in rows] == ["1", "1", "1", None, "2", "2", "1"]
    assert champion_moves(rows) == [  # as the scoring tells them
        {"date": day(4), "from": "1", "to": "2", "decision": "scored"},
        {"date": day(6), "from": "2", "to": "1", "decision": "scored"},
    ]
    # The registry's move log tells the days they happened, and what they were.
    assert champion_moves(rows, logged_champion_moves(load_config(), rows)) == [
        {"date": day(3), "from": "1", "to": "2", "decision": "promoted"},
        {"date": day(5), "from": "2", "to": "1", "decision": "rolled_back"},
    ]
    for row in rows:
        if not row.monitored:
            continue
        report = json.loads((home / "reports" / f"date={row.date}" / "drift_report.json").read_text())
        assert row.drift_share == report["drift_share"] and row.dataset_drift == report["dataset_drift"]
        assert row.drifted_features == len(report["drifted_features"])
        assert row.prediction_drift == report["prediction_drift"]
        assert row.prediction_drift_statistic == report["details"]["prediction"]["statistic"]
        assert row.realized_roc_auc == report["realized_roc_auc"] and row.n_labels == report["n_labels"]
        assert row.decision == report["decision"] and row.estimated_roc_auc == report["estimated_roc_auc"]
        assert row.estimated_roc_auc_low < row.estimated_roc_auc < row.estimated_roc_auc_high
    assert rows[0].realized_roc_auc is None, "no label matured on the first day (delay 2)"
    assert rows[-1].realized_roc_auc is not None and 0.6 < rows[-1].realized_roc_auc < 0.95


def test_each_monitoring_run_draws_its_window_logs_the_chart_and_links_it_from_the_page(home):
    from mlflow import MlflowClient

    from churnops.config import load_config
    from churnops.monitoring import write_history

    folder = home / "reports" / f"date={LAST}"
    chart = (folder / "history.png").read_bytes()
    assert png_size(chart) == (1000, 700)
    page = (folder / "drift_report.html").read_text()
    assert page.count('<a href="history.png">History of the last 5 days</a>') == 1
    assert re.search(r'<body[^>]*>\s*<div id="churnops-history"', page), "the link comes first"
    assert not (home / "reports" / f"date={D0}" / "drift_report.html").exists()
    assert (home / "reports" / f"date={D0}" / "history.png").is_file(), "drawn without a page too"

    client = MlflowClient()
    experiment = client.get_experiment_by_name("churnops-telco-monitoring")
    (run,) = client.search_runs([experiment.experiment_id], f"tags.`churnops.monitoring_date` = '{LAST}'")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "drift_report.json",
        "drift_report.html",
        "history.png",
    }
    logged = client.download_artifacts(run.info.run_id, "history.png", str(home / "downloaded"))
    assert Path(logged).read_bytes() == chart

    # The day's chart is its 5-day window drawn from the day files: drawn again, the same bytes.
    _, again = write_history(load_config(), LAST, path=home / "again.png")
    assert again.read_bytes() == chart


def test_history_command_prints_the_table_and_writes_the_chart(home, capsys, tmp_path):
    output = tmp_path / "chart.png"
    code, result, err = run(capsys, "history", "--date", day(6), "--days", "7", "--output", str(output), "--json")
    assert code == 0, err
    assert result["date"] == day(6) and result["days"] == 7 and result["chart"] == str(output)
    assert [r["date"] for r in result["rows"]] == [day(k) for k in range(7)]
    assert result["rows"][3] == {"date": day(3), "monitored": False} | {
        k: None for k in result["rows"][3] if k not in {"date", "monitored"}
    }
    assert result["champion_moves"] == [
        {"date": day(3), "from": "1", "to": "2", "decision": "promoted"},
        {"date": day(5), "from": "2", "to": "1", "decision": "rolled_back"},
    ]
    first = output.read_bytes()
    assert png_size(first) == (1000, 700)

    code, text, err = run(capsys, "history", "--days", "7", "--output", str(output))  # default: the last monitored day
    assert code == 0, err
    assert output.read_bytes() == first, "the same days draw the same chart"
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["date", "champion"]
    assert lines[4].split() == [day(3), "no", "run"]
    assert "v2 (was v1)" in lines[5] and "v1 (was v2)" in lines[7]
    assert f"@champion moved from v1 to v2 on {day(3)} (promoted)" in text and f"chart: {output}" in text

    code, result, err = run(capsys, "history", "--json")  # the config's 5 days, to the default place
    assert code == 0, err
    assert result["date"] == day(6) and [r["date"] for r in result["rows"]] == [day(k) for k in range(2, 7)]
    assert result["chart"] == str(home / "history" / f"history_{day(6)}_5d.png")
    assert (home / "history" / f"history_{day(6)}_5d.png").is_file()


def test_history_command_refuses_bad_input_in_one_line(home, capsys, monkeypatch, tmp_path):
    code, _, err = run(capsys, "history", "--days", "0")
    assert code == 2 and err.count("\n") == 1 and "--days must be at least 1" in err
    code, _, err = run(capsys, "history", "--date", "yesterday")
    assert code == 2 and "not a date" in err
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path / "empty"))
    code, _, err = run(capsys, "history")
    assert code == 2 and "no monitored day" in err and "--date" in err
