"""``churnops`` commands end to end on Telco, in-process, against a throwaway MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from churnops.cli import main
from tests.helpers import write_config

pytestmark = pytest.mark.e2e

SUMMARY_KEYS = {"parent_run_id", "best_model", "cv_roc_auc", "test_roc_auc", "model_name", "model_version", "aliases"}


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else None), err


def test_train_on_telco_meets_the_cv_target_and_registers_a_champion(capsys, churnops_home):
    code, summary, err = run_cli(capsys, "train", "--json")
    assert code == 0, err
    assert SUMMARY_KEYS <= set(summary)
    assert summary["model_name"] == "churn-predictor"
    assert summary["model_version"] == "1" and summary["aliases"] == ["champion"]
    assert summary["best_model"] in {"logistic_regression", "random_forest", "xgboost", "lightgbm"}
    assert summary["cv_roc_auc"] >= 0.845, "champion 5-fold CV ROC-AUC target"
    assert summary["test_roc_auc"] >= 0.83


def test_rerunning_the_same_run_reuses_its_runs_and_version(capsys, churnops_home):
    from mlflow import MlflowClient

    args = ("train", "--json", "--families", "logistic_regression", "--cv-folds", "2", "--run-id", "nightly-7")
    code, first, err = run_cli(capsys, *args)
    assert code == 0, err
    code, again, err = run_cli(capsys, *args)
    assert code == 0, err
    assert again["parent_run_id"] == first["parent_run_id"]
    assert again["model_version"] == first["model_version"] == "1"
    assert again["created_version"] is False
    client = MlflowClient()
    assert len(client.search_model_versions("name = 'churn-predictor'")) == 1
    experiment = client.get_experiment_by_name("churnops-telco")
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first['parent_run_id']}'"
    )
    steps = [r.data.tags["churnops.step"] for r in children]
    assert sorted(steps) == sorted(set(steps)), "no step run was duplicated"
    assert len(steps) == 7


def test_validate_passes_on_telco_and_prints_json(capsys, churnops_home):
    code, result, err = run_cli(capsys, "validate", "--json")
    assert code == 0, err
    assert result["passed"] is True
    assert result["rows"] == {"customers": 4930, "services": 4930, "accounts": 4930}
    report = json.loads(Path(result["validation_report"]).read_text(encoding="utf-8"))
    assert report["passed"] and all(s["passed"] for s in report["sources"].values())


def test_config_errors_are_one_line_and_nonzero(capsys, churnops_home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "dataset:\n  name: x\n  id_column: id\n  target: y\n  positive_label: 1\n"
        "  sources: [{name: a, path: a.csv}]\n  numeric_features: [f]\ntraining:\n  foldz: 3\n"
    )
    for command in ("train", "validate"):
        code, _, err = run_cli(capsys, command, "--config", str(bad))
        assert code == 2
        assert err.count("\n") == 1 and "training.foldz" in err and err.startswith(f"churnops {command}: error:")


def test_config_from_environment_variable(capsys, churnops_home, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.yaml"
    monkeypatch.setenv("CHURNOPS_CONFIG", str(missing))
    code, _, err = run_cli(capsys, "validate")
    assert code == 2 and str(missing) in err


def test_training_chooses_the_threshold_by_the_config_rule_and_records_it_on_the_version(
    capsys, churnops_home, tmp_path
):
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.metrics import f1_score, precision_score, recall_score

    from churnops.config import load_config
    from churnops.data import SPLIT_COLUMN, label_vector
    from churnops.modeling import calibrated_scores, choose_threshold, fit_family
    from churnops.tracking import load_registered_model, version_tags, version_threshold

    config_path = write_config(
        tmp_path / "cost.yaml",
        training={
            "families": ["logistic_regression"],
            "cv_folds": 2,
            "threshold": {"rule": "cost", "cost_false_negative": 5, "cost_false_positive": 1},
        },
    )
    code, summary, err = run_cli(capsys, "train", "--json", "--config", str(config_path))
    assert code == 0, err
    config = load_config(config_path)
    tags = version_tags(config.registry, summary["model_version"])
    threshold = summary["threshold"]
    assert tags["churnops.threshold_rule"] == summary["threshold_rule"] == "cost:fn=5,fp=1"
    assert (
        float(tags["churnops.threshold"]) == threshold == version_threshold(summary["model_version"], config.registry)
    )

    # Chosen on the training split's out-of-fold scores as the model calibrates them, by the rule:
    # the same CV gives the same threshold.
    snapshot = pd.read_parquet(tags["churnops.snapshot_path"])
    train, test = snapshot[snapshot[SPLIT_COLUMN] == "train"], snapshot[snapshot[SPLIT_COLUMN] == "test"]
    features = config.dataset.feature_columns
    again = fit_family("logistic_regression", train[features], label_vector(train, config), config)
    logged = load_registered_model(config.registry, summary["model_version"]).get_raw_model()
    oof_scores = calibrated_scores(logged, again.oof_scores)
    assert choose_threshold(again.oof_labels, oof_scores, config.training.threshold) == threshold
    assert threshold < 0.5, "a missed churner costing five false alarms flags more customers than 0.5 would"

    # The holdout's business metrics are those at the threshold, on the version and on its training run.
    y_test = label_vector(test, config)
    flagged = (
        load_registered_model(config.registry, summary["model_version"]).predict(test[features])[:, 1] >= threshold
    )
    expected = {
        "precision": precision_score(y_test, flagged),
        "recall": recall_score(y_test, flagged),
        "f1": f1_score(y_test, flagged),
    }
    for name, value in expected.items():
        assert float(tags[f"churnops.test_{name}"]) == pytest.approx(value, abs=1e-6)
        assert summary[f"test_{name}"] == pytest.approx(value)
    client = MlflowClient()
    run = client.get_run(client.get_model_version(config.registry.model_name, summary["model_version"]).run_id)
    metrics = run.data.metrics
    assert metrics["threshold"] == threshold and metrics["test_f1"] == pytest.approx(expected["f1"])
    assert metrics["test_tp"] + metrics["test_fn"] == y_test.sum()
    assert metrics["test_tp"] + metrics["test_fp"] == flagged.sum()
    report = json.loads(
        Path(client.download_artifacts(run.info.run_id, "classification_report.json", str(tmp_path))).read_text()
    )
    assert report["threshold"] == threshold and report["Yes"]["recall"] == pytest.approx(expected["recall"])


def test_training_calibrates_the_model_it_logs_and_records_the_scores_before_and_after(capsys, churnops_home, tmp_path):
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline

    from churnops.config import load_config
    from churnops.data import SPLIT_COLUMN, label_vector
    from churnops.modeling import CalibratedPipeline, expected_calibration_error
    from churnops.tracking import load_registered_model, version_tags

    config_path = write_config(
        tmp_path / "isotonic.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2, "calibration": "isotonic"},
    )
    code, summary, err = run_cli(capsys, "train", "--json", "--config", str(config_path))
    assert code == 0, err
    config = load_config(config_path)
    tags = version_tags(config.registry, summary["model_version"])
    assert tags["churnops.calibration"] == summary["calibration"] == "isotonic"
    run = MlflowClient().get_run(MlflowClient().get_model_version("churn-predictor", summary["model_version"]).run_id)
    assert run.data.params["calibration"] == "isotonic" and run.data.params["calibration_setting"] == "isotonic"
    metrics = run.data.metrics

    # The registered pyfunc serves the calibrated probabilities: the holdout metrics are theirs ...
    snapshot = pd.read_parquet(tags["churnops.snapshot_path"])
    test = snapshot[snapshot[SPLIT_COLUMN] == "test"]
    y_test = label_vector(test, config)
    model = load_registered_model(config.registry, summary["model_version"])
    served = model.predict(test[config.dataset.feature_columns])[:, 1]
    assert type(model.get_raw_model()) is CalibratedPipeline
    assert metrics["test_ece"] == pytest.approx(expected_calibration_error(y_test, served), abs=1e-12)
    assert metrics["test_roc_auc"] == pytest.approx(roc_auc_score(y_test, served), abs=1e-12)
    assert float(tags["churnops.test_ece"]) == pytest.approx(metrics["test_ece"], abs=1e-6)
    # ... and the estimator's own scores, before the map, are recorded beside them.
    raw = Pipeline(model.get_raw_model().steps).predict_proba(test[config.dataset.feature_columns])[:, 1]
    assert not np.array_equal(raw, served)
    assert metrics["test_ece_uncalibrated"] == pytest.approx(expected_calibration_error(y_test, raw), abs=1e-12)
    assert metrics["test_roc_auc_uncalibrated"] == pytest.approx(roc_auc_score(y_test, raw), abs=1e-12)
    assert metrics["test_ece_isotonic"] == metrics["test_ece"]
