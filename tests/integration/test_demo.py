"""`make demo`'s script end to end with --exit: the whole loop on the embedded default (SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, write_config

pytestmark = pytest.mark.integration


def test_demo_promotes_on_the_shift_then_stops_at_the_cooldown_and_stops_everything(tmp_path):
    home = tmp_path / "demo"
    # One family, 2 folds, no HTML pages and 1,000-row days keep it short; `make demo` trains all
    # four families on 2,000-row days. 18 days: 2 stable, then the 16 the shift and the cooldown need.
    config = write_config(
        tmp_path / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        policy={"bootstrap_samples": 200},
        monitoring={"html_report": False},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_", "CHURNOPS_"))}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            "--exit",
            "--home",
            str(home),
            "--airflow-port",
            "0",
            "--mlflow-port",
            "0",
            "--rows-per-day",
            "1000",
            "--days",
            "18",
            "--config",
            str(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((home / "summary.json").read_text())
    decisions = summary["monitoring"]
    assert len(decisions) == 18 and "(no report)" not in decisions.values(), decisions
    days = sorted(decisions)
    assert [decisions[d] for d in days[:2]] == ["none"] * 2, f"stable days: {decisions}"
    assert [decisions[d] for d in days[-2:]] == ["retrain"] * 2, f"yesterday and today are shifted: {decisions}"

    # Yesterday's retraining promotes the challenger that learnt the shift; today's stops at the cooldown.
    promoted, stopped = summary["retraining_decisions"]
    assert promoted["dag_run_id"] == f"monitoring__{days[-2]}" and promoted["as_of"] == days[-2], summary
    assert promoted["decision"] == "promoted" and promoted["gain"] > 0.01, promoted
    assert "is more than the required 0.0100" in promoted["reason"], promoted
    assert stopped["dag_run_id"] == f"monitoring__{days[-1]}" and stopped["as_of"] == days[-1], summary
    assert stopped["decision"] == "stopped_by_cooldown" and stopped["gain"] is None, stopped
    assert f"in cooldown: last promotion on {days[-2]}" in stopped["reason"], stopped
    assert summary["aliases"] == {"champion": "v2", "previous_champion": "v1", "challenger": None}, summary
    assert f"monitoring__{days[-2]} (as of {days[-2]}): promoted, gain +" in done.stdout
    assert f"monitoring__{days[-1]} (as of {days[-1]}): stopped_by_cooldown" in done.stdout
    assert "@champion v2, @previous_champion v1, @challenger None" in done.stdout

    assert "Airflow UI  http://127.0.0.1:" in done.stdout and "login: admin / " in done.stdout
    assert "MLflow UI   http://127.0.0.1:" in done.stdout
    listening = summary["listening"]  # every socket the demo's processes listened on, read while they ran
    assert len(listening) >= 2 and all(address.startswith("127.0.0.1:") for address in listening), listening
    # Nothing the demo started is left running.
    leftovers = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True).stdout.split()
    assert not leftovers, f"processes left running: {leftovers}"
