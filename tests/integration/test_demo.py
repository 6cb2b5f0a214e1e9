"""`make demo`'s script end to end with --exit: the whole loop on the embedded default (SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, write_config

pytestmark = pytest.mark.integration


def test_demo_runs_the_loop_and_stops_everything(tmp_path):
    home = tmp_path / "demo"
    # One family, 2 folds and 9 days keep it short; `make demo` trains all four families on 15 days.
    config = write_config(
        tmp_path / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        policy={"bootstrap_samples": 200},
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
            "9",
            "--config",
            str(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((home / "summary.json").read_text())
    assert summary["retraining_state"] == "success", summary
    decisions = summary["monitoring"]
    assert len(decisions) == 9 and "(no report)" not in decisions.values(), decisions
    days = sorted(decisions)
    assert [decisions[d] for d in days[:4]] == ["none"] * 4, f"stable days: {decisions}"
    assert decisions[days[-1]] == "retrain", f"today is fully drifted: {decisions}"
    assert summary["champion"] is not None
    decision = summary["last_decision"]
    assert decision["decision"] in ("promoted", "rejected") and decision["version"] == "2", summary
    assert f"decision on v2: {decision['decision']} (" in done.stdout
    assert "Airflow UI  http://127.0.0.1:" in done.stdout and "login: admin / " in done.stdout
    assert "MLflow UI   http://127.0.0.1:" in done.stdout
    listening = summary["listening"]  # every socket the demo's processes listened on, read while they ran
    assert len(listening) >= 2 and all(address.startswith("127.0.0.1:") for address in listening), listening
    # Nothing the demo started is left running.
    leftovers = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True).stdout.split()
    assert not leftovers, f"processes left running: {leftovers}"
