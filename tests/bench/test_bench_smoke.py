"""The benchmark scripts at toy sizes, so they keep working; the real figures are run by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.e2e


def test_run_all_smoke_writes_every_result_and_the_plot(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHURNOPS_"))}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--smoke", "--out-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (tmp_path / "RESULTS.md").read_text()
    for section in ("## Training", "## Training on big tables", "## DAG parse time", "![scaling](scaling.png)"):
        assert section in summary
    assert "| 5,000 |" in summary and "| 3,000 |" in summary and "| logistic_regression |" in summary
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "monitoring.json").read_text())
    assert [m["rows"] for m in results["monitoring"]] == [2000, 5000]
    assert all(m["max_p_value_diff"] < 1e-9 for m in results["monitoring"]), "churnops' p-values equal scipy's"
    assert "Scoring throughput" in (tmp_path / "RESULTS_MONITORING.md").read_text()
    serving = json.loads((tmp_path / "serving.json").read_text())
    assert serving["single"]["requests"] == 20 and serving["single"]["versions"] == ["1"]
    assert [(b["form"], b["explain"]) for b in serving["big"]] == [("rows", False), ("columns", False), ("rows", True)]
    assert {b["rows"] for b in serving["big"]} == {500} and serving["concurrent"]["errors"] == 0
    assert "## Serving (`bench/bench_serving.py`)" in summary
    assert (
        "| 500 rows as JSON columns, without reasons |" in summary
        and "| 500 rows as JSON rows, with reasons |" in summary
    )
    # The Airflow benchmarks are left to `make bench`; their paths run as integration tests.
    assert "## Sharded monitoring under Airflow\n\nSkipped: not run by --smoke." in summary
    assert not (tmp_path / "sharded.json").exists() and not (tmp_path / "backfill.json").exists()
