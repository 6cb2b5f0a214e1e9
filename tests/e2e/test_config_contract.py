"""The config contract: another binary table trains end to end by changing only the config.

The data is scikit-learn's bundled breast-cancer table (no download), written as two raw
sources in two formats, with its own id, target, labels, features and model name.
"""

from __future__ import annotations

import numpy as np
import pendulum
import pytest
import yaml

from churnops.cli import main
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture
def breast_cancer_config(tmp_path):
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    frame.insert(0, "patient_id", [f"P{i:05d}" for i in range(len(frame))])
    frame["diagnosis"] = np.where(frame.pop("target") == 0, "malignant", "benign")
    half = len(features) // 2
    frame[["patient_id", *features[:half]]].to_csv(tmp_path / "measurements.csv", index=False)
    frame[["patient_id", *features[half:], "diagnosis"]].sample(frac=1, random_state=0).to_parquet(
        tmp_path / "outcomes.parquet", index=False
    )
    config = {
        "dataset": {
            "name": "breast_cancer",
            "id_column": "patient_id",
            "target": "diagnosis",
            "positive_label": "malignant",
            "sources": [
                {"name": "measurements", "path": "measurements.csv"},
                {"name": "outcomes", "path": "outcomes.parquet"},
            ],
            "numeric_features": features,
        },
        "features": {
            "derived": [
                {"kind": "ratio", "name": "area_growth", "numerator": "worst_area", "denominator": "mean_area"},
                {"kind": "bins", "name": "radius_band", "column": "mean_radius", "edges": [10, 15, 20]},
            ]
        },
        "training": {"cv_folds": 3, "test_fraction": 0.25},
        "registry": {"model_name": "breast-cancer-classifier"},
    }
    path = tmp_path / "breast_cancer.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, frame


def test_another_table_trains_with_the_cli(breast_cancer_config, churnops_home, capsys):
    import json

    import mlflow

    path, frame = breast_cancer_config
    code = main(["train", "--config", str(path), "--json", "--families", "logistic_regression", "lightgbm"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model_name"] == "breast-cancer-classifier"
    assert summary["aliases"] == ["champion"]
    assert summary["cv_roc_auc"] > 0.95 and summary["test_roc_auc"] > 0.95

    model = mlflow.pyfunc.load_model("models:/breast-cancer-classifier@champion")
    rows = frame.drop(columns=["patient_id", "diagnosis"]).head(50)
    proba = np.asarray(model.predict(rows))[:, 1]
    truth = (frame["diagnosis"].head(50) == "malignant").to_numpy()
    assert ((proba > 0.5) == truth).mean() > 0.9
    assert mlflow.get_experiment_by_name("churnops-breast_cancer") is not None


def test_another_table_trains_with_the_dag_from_churnops_config(
    breast_cancer_config, churnops_home, airflow_db, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag
    from mlflow import MlflowClient

    path, _ = breast_cancer_config
    monkeypatch.setenv("CHURNOPS_CONFIG", str(path))  # no config_path Param: the tasks must honour it
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["churn_training"]
    dag_run = dag.test(
        logical_date=pendulum.datetime(2026, 10, 1, tz="UTC"), run_conf={"families": ["logistic_regression"]}
    )
    assert str(dag_run.state) == "success"
    version = MlflowClient().get_model_version_by_alias("breast-cancer-classifier", "champion")
    assert version.tags["churnops.dataset"] == "breast_cancer"
    assert version.tags["churnops.family"] == "logistic_regression"
