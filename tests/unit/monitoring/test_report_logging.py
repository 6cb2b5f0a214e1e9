"""churnops.monitoring.report.log_report: the day's one MLflow run with the report's figures and files."""

from __future__ import annotations

import json

from churnops.config import load_config
from churnops.monitoring.report import build_report, decide, log_report
from tests.unit.monitoring.test_report import DAY, FEATURES, PREDICTION, SCORED, performance_result


def test_the_days_run_holds_the_reports_metrics_tags_and_files_and_a_rerun_reuses_it(churnops_home, tmp_path):
    from mlflow import MlflowClient

    config = load_config()
    performance = performance_result(rejected_label_files=[])
    report = build_report(
        DAY, SCORED, FEATURES, PREDICTION, performance, decide(FEATURES, PREDICTION, performance["performance"])
    )
    report["reasons"] = ["x" * 5000]  # a long reason is cut to MLflow's tag length
    json_path, chart = tmp_path / "drift_report.json", tmp_path / "history.png"
    json_path.write_text(json.dumps(report))
    chart.write_bytes(b"png")

    run_id = log_report(config, DAY, report, json_path, None, {"churnops.dag_id": "cli"}, chart)
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.data.metrics == {
        "rows": 12_000.0,
        "drift_share": 0.2,
        "dataset_drift": 0.0,
        "prediction_drift": 1.0,
        "target_drift": 1.0,
        "n_labels": 500.0,
        "retrain": 0.0,
        "estimate_trusted": 1.0,
        "estimated_precision": 0.5,
        "realized_roc_auc": 0.81,
        "threshold": 0.31,
        "precision": 0.52,
        "recall": 0.74,
        "f1": 0.61,
        "estimated_roc_auc": 0.8,
        "estimated_roc_auc_low": 0.79,
        "estimated_roc_auc_high": 0.81,
    }
    assert [m.step for m in client.get_metric_history(run_id, "drift_share")] == [0]
    tags = run.data.tags
    assert {key: tags[key] for key in ("churnops.model_version", "churnops.decision", "churnops.triggers")} == {
        "churnops.model_version": "3",
        "churnops.decision": "none",
        "churnops.triggers": "",
    }
    assert tags["churnops.reasons"] == "x" * 4000 and tags["churnops.dag_id"] == "cli"
    assert tags["churnops.monitoring_date"] == DAY.isoformat() and run.info.status == "FINISHED"
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["drift_report.json", "history.png"]

    assert log_report(config, DAY, report, json_path, None, None, chart) == run_id, "one run a day, reused"
