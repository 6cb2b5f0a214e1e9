"""The label-free estimate end to end: a trained champion, simulated days, ``churnops monitor``.

Every output carries the estimate (``--json``, ``performance.json``, the report, its MLflow run,
the page, the history); once a day's labels mature, a later day records the estimate's error
for it; a trusted estimated drop decides ``retrain``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnops.cli import main
from tests.helpers import churnops_environment, read_drift_page, write_config

pytestmark = pytest.mark.e2e

D0 = date(2026, 9, 1)
ROWS = 800
ESTIMATE_KEYS = ("estimated_roc_auc", "estimated_roc_auc_low", "estimated_roc_auc_high", "estimate_trusted")


def day(offset: int) -> str:
    return (D0 + timedelta(days=offset)).isoformat()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A logistic-regression champion and 3 stable days (labels mature 2 days later)."""
    root = tmp_path_factory.mktemp("estimate-home")
    training = {"families": ["logistic_regression"], "cv_folds": 2}
    config = write_config(root / "config.yaml", training=training, monitoring={"label_delay_days": 2})
    with churnops_environment(root, config):
        assert main(["train"]) == 0
        simulate = ["simulate", "--start", day(0), "--days", "3", "--rows-per-day", str(ROWS), "--seed", "4"]
        assert main(simulate) == 0
        yield root


def monitor(capsys, date_text: str, *config: str) -> dict:
    assert main(["monitor", "--date", date_text, "--json", *config]) == 0
    out, err = capsys.readouterr()
    return json.loads(out)


def test_every_output_of_a_monitored_day_carries_the_estimate_with_its_band_and_trust(home, capsys):
    from mlflow import MlflowClient

    from churnops.config import load_config
    from churnops.monitoring import read_history
    from churnops.tracking import configure_mlflow, version_tags

    result = monitor(capsys, day(0))
    reports = home / "reports" / f"date={day(0)}"
    estimate = json.loads((reports / "performance.json").read_text())["estimate"]
    report = json.loads((reports / "drift_report.json").read_text())
    assert {key: result[key] for key in ESTIMATE_KEYS} == {key: report[key] for key in ESTIMATE_KEYS}
    assert result["estimated_roc_auc"] == estimate["estimated_roc_auc"]
    assert result["estimate_trusted"] is estimate["trusted"]
    assert estimate["estimated_roc_auc_low"] < estimate["estimated_roc_auc"] < estimate["estimated_roc_auc_high"]
    assert 0.7 < estimate["estimated_roc_auc"] < 0.95
    assert estimate["rows"] == ROWS and 0 < estimate["estimated_f1"] < 1

    config = load_config()
    configure_mlflow(config)
    tags = version_tags(config.registry, result["model_version"])
    ece = float(tags["churnops.test_ece"])
    assert estimate["holdout_ece"] == pytest.approx(ece, abs=1e-6)
    assert estimate["threshold"] == pytest.approx(float(tags["churnops.threshold"]), abs=1e-6)
    assert estimate["reference_roc_auc"] == pytest.approx(float(tags["churnops.test_roc_auc"]), abs=1e-6)
    assert estimate["trusted"] is (ece <= config.monitoring.max_estimate_ece), estimate["reasons"]

    metrics = MlflowClient().get_run(result["mlflow_run_id"]).data.metrics
    for key in ESTIMATE_KEYS[:3]:
        assert metrics[key] == pytest.approx(result[key])
    assert metrics["estimate_trusted"] == float(result["estimate_trusted"])

    page = read_drift_page((reports / "drift_report.html").read_text(encoding="utf-8"))["fields"]
    assert page["estimated_roc_auc"] == f"{result['estimated_roc_auc']:.4f}"
    assert page["estimate_trusted"] == ("yes" if result["estimate_trusted"] else "no")
    (row,) = read_history(day(0), 1)
    assert (row.estimated_roc_auc, row.estimated_roc_auc_low, row.estimated_roc_auc_high) == tuple(
        result[key] for key in ESTIMATE_KEYS[:3]
    )


def test_a_day_whose_labels_matured_gets_the_error_of_its_estimate(home, capsys):
    first = monitor(capsys, day(0))
    later = monitor(capsys, day(2))  # day 0's labels matured (delay 2); day 1 was never monitored
    errors = json.loads((home / "reports" / f"date={day(2)}" / "performance.json").read_text())["estimate_errors"]
    (entry,) = errors
    predictions = pd.read_parquet(home / "predictions" / f"date={day(0)}" / "predictions.parquet")
    labels = pd.read_parquet(home / "labels" / f"date={day(0)}" / "labels.parquet")
    joined = predictions.merge(labels, on="customerid")
    realized = roc_auc_score(joined["churn"] == "Yes", joined["score"])
    assert entry["day"] == day(0) and entry["n_labels"] == ROWS
    assert entry["estimated_roc_auc"] == first["estimated_roc_auc"]
    assert entry["realized_roc_auc"] == pytest.approx(realized, abs=1e-9)
    assert entry["error"] == pytest.approx(first["estimated_roc_auc"] - realized, abs=1e-9)
    assert later["realized_roc_auc"] == pytest.approx(realized, abs=1e-9), "one matured day: the same ROC-AUC"


def test_a_trusted_estimated_drop_decides_retrain_and_an_untrusted_one_never(home, capsys):
    strict = {"label_delay_days": 2, "max_estimate_ece": 1.0, "max_estimated_roc_auc_drop": 0.0}
    config = write_config(
        home / "strict.yaml", training={"families": ["logistic_regression"], "cv_folds": 2}, monitoring=strict
    )
    result = monitor(capsys, day(1), "--config", str(config))
    estimate = json.loads((home / "reports" / f"date={day(1)}" / "performance.json").read_text())["estimate"]
    assert estimate["trusted"] is True and result["dataset_drift"] is False
    assert estimate["drop"] > 0, "the day's estimate is below the holdout ROC-AUC: any drop exceeds 0"
    assert result["decision"] == "retrain" and estimate["alarm"] is True
    (reason,) = result["reasons"]
    assert result["triggers"] == ["estimated_performance"]
    assert reason.startswith("estimated performance: estimated ROC-AUC") and "max_estimated_roc_auc_drop 0" in reason

    untrusted = write_config(
        home / "untrusted.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        monitoring={**strict, "min_estimate_rows": ROWS + 1},
    )
    result = monitor(capsys, day(1), "--config", str(untrusted))
    assert result["estimate_trusted"] is False and result["decision"] == "none" and result["triggers"] == []
    assert not any("estimated ROC-AUC" in r for r in result["reasons"])
