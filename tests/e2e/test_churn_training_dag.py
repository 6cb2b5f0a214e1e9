"""``churn_training`` run for real with ``dag.test()`` on Telco, against a throwaway MLflow store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pendulum
import pytest

from churnops.config import load_config
from tests.helpers import ROOT, telco_table

pytestmark = pytest.mark.e2e

STEP_RUNS = {"validate", "merge", "preprocess", "features", "evaluate", "register"}
FAMILIES = {"logistic_regression", "random_forest", "xgboost", "lightgbm"}


@pytest.fixture(scope="module")
def training_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags["churn_training"]


def task_states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            (ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
            for ti in dag_run.get_task_instances(session=session)
        }


def recorded_mlflow_runs(dag_run) -> dict[str, str]:
    """task (``task[i]`` when mapped) → the ``<experiment>/<run>`` it pushed for the MLflow link."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.key == "churnops_mlflow_run",
            )
            .all()
        )
        # The column is JSON: the value comes back as the pushed string.
        return {(r.task_id if r.map_index < 0 else f"{r.task_id}[{r.map_index}]"): r.value for r in rows}


def raw_merged_rows(n: int = 20) -> pd.DataFrame:
    """Rows as a user would send them: the sources read with pandas' default dtypes, joined."""
    return telco_table().drop(columns=["customerid", "churn"]).head(n)


def test_training_dag_end_to_end(training_dag, churnops_home):
    import mlflow
    from mlflow import MlflowClient

    dag_run = training_dag.test(logical_date=pendulum.datetime(2026, 11, 20, tz="UTC"), run_conf={"cv_folds": 3})
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert set(states.values()) == {"success"}
    assert sum(key.startswith("train[") for key in states) == 4

    mlflow.set_tracking_uri(f"sqlite:///{churnops_home / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("churnops-telco")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["churnops.dag_id"] == "churn_training"
    assert parent.data.tags["churnops.run_id"] == dag_run.run_id
    assert parent.data.tags["churnops.logical_date"].startswith("2026-11-20")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    steps = sorted(r.data.tags["churnops.step"] for r in children)
    assert steps == sorted(STEP_RUNS | {f"train/{f}" for f in FAMILIES}), "one nested run per step and family"
    assert all(r.info.status == "FINISHED" for r in children)

    # Each task recorded the MLflow run it logged to (the plugin's "MLflow run" link reads it).
    recorded = recorded_mlflow_runs(dag_run)
    by_step = {r.data.tags["churnops.step"]: r.info.run_id for r in children}
    for task in STEP_RUNS:  # task ids are the step names
        assert recorded[task] == f"{experiment.experiment_id}/{by_step[task]}", task
    assert recorded["start"] == f"{experiment.experiment_id}/{parent.info.run_id}"
    assert sorted(recorded[f"train[{i}]"] for i in range(4)) == sorted(
        f"{experiment.experiment_id}/{by_step[f'train/{f}']}" for f in FAMILIES
    )

    train_runs = [r for r in children if r.data.tags["churnops.step"].startswith("train/")]
    for run in train_runs:
        metrics = run.data.metrics
        for key in (
            "cv_roc_auc_mean",
            "cv_roc_auc_std",
            "test_roc_auc",
            "test_pr_auc",
            "test_f1",
            "test_precision",
            "test_recall",
            "test_accuracy",
            "test_log_loss",
            "test_brier",
            "threshold",
            "test_tp",
            "test_fp",
            "test_fn",
            "test_tn",
        ):
            assert key in metrics, (run.data.tags["churnops.step"], key)
        assert 0.75 < metrics["cv_roc_auc_mean"] < 1
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert plots == {
            f"plots/{n}.png" for n in ("roc_curve", "pr_curve", "confusion_matrix", "calibration", "feature_importance")
        }
    best = max(train_runs, key=lambda r: r.data.metrics["cv_roc_auc_mean"])
    assert parent.data.tags["churnops.best_model"] == best.data.params["family"], "chosen by CV ROC-AUC"
    assert "model_comparison.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}

    version = client.get_model_version_by_alias("churn-predictor", "champion")
    assert version.run_id == best.info.run_id
    assert version.tags["churnops.dag_run_id"] == dag_run.run_id
    assert version.tags["churnops.training_run_id"] == parent.info.run_id
    assert len(version.tags["churnops.dataset_digest"]) == 64
    assert version.tags["churnops.threshold_rule"] == "max_f1"
    assert float(version.tags["churnops.threshold"]) == best.data.metrics["threshold"]
    assert "classification_report.txt" in {a.path for a in client.list_artifacts(best.info.run_id)}

    rows = raw_merged_rows()
    rows.loc[rows.index[0], "contract"] = "Ten year"  # a category never seen in training
    rows.loc[rows.index[1], "paymentmethod"] = "Bitcoin"
    rows["totalcharges"] = rows["totalcharges"].astype(str)  # as read from the raw CSV: text
    rows.loc[rows.index[2], "totalcharges"] = " "
    model = mlflow.pyfunc.load_model("models:/churn-predictor@champion")
    proba = np.asarray(model.predict(rows))
    assert proba.shape == (len(rows), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[:, 1].std() > 0.01, "probabilities should depend on the rows"

    # No input schema for MLflow to enforce (see churnops.modeling.models.model_signature): the columns are in the
    # model's metadata, and the pipeline itself names a missing one.
    assert model.metadata.get_input_schema() is None
    assert model.metadata.metadata["churnops_input_columns"] == load_config().dataset.feature_columns
    with pytest.raises(ValueError, match=r"input lacks columns \['tenure'\]"):
        model.predict(rows.drop(columns=["tenure"]))


def test_second_training_run_adds_a_challenger_and_keeps_the_champion(training_dag, churnops_home):
    from mlflow import MlflowClient

    first = training_dag.test(
        logical_date=pendulum.datetime(2026, 11, 21, tz="UTC"),
        run_conf={"families": ["logistic_regression"], "cv_folds": 2},
    )
    second = training_dag.test(
        logical_date=pendulum.datetime(2026, 11, 22, tz="UTC"), run_conf={"families": ["lightgbm"], "cv_folds": 2}
    )
    assert str(first.state) == str(second.state) == "success"

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{churnops_home / 'mlflow.db'}")
    client = MlflowClient()
    champion = client.get_model_version_by_alias("churn-predictor", "champion")
    challenger = client.get_model_version_by_alias("churn-predictor", "challenger")
    assert (str(champion.version), str(challenger.version)) == ("1", "2")
    assert champion.tags["churnops.family"] == "logistic_regression"
    assert challenger.tags["churnops.family"] == "lightgbm"


def test_bad_source_fails_validate_quarantines_and_registers_nothing(
    training_dag, churnops_home, telco_copy, monkeypatch
):
    from mlflow import MlflowClient

    monkeypatch.setenv("CHURNOPS_ALLOWED_PATHS", str(telco_copy.parent))  # the copy lives outside CHURNOPS_HOME

    accounts = telco_copy.parent / "data" / "accounts.csv"
    frame = pd.read_csv(accounts, dtype=str, keep_default_na=False)
    frame.loc[5, "churn"] = "Maybe"
    frame.to_csv(accounts, index=False)
    before = accounts.read_bytes()

    dag_run = training_dag.test(
        logical_date=pendulum.datetime(2026, 11, 23, tz="UTC"), run_conf={"config_path": str(telco_copy)}
    )
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed"
    assert states["start"] == "success" and states["validate"] == "failed"
    assert {states[t] for t in ("merge", "preprocess", "features", "evaluate", "register")} == {"upstream_failed"}

    assert accounts.read_bytes() == before
    reasons = list((churnops_home / "quarantine").rglob("reason.json"))
    assert len(reasons) == 1
    reason = json.loads(reasons[0].read_text())
    assert reason["source"] == "accounts"
    assert reason["findings"][0]["column"] == "churn" and reason["findings"][0]["rule"] == "label_values"
    assert (reasons[0].parent / "accounts.csv").read_bytes() == before

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{churnops_home / 'mlflow.db'}")
    assert MlflowClient().search_registered_models() == []


def test_a_config_path_outside_the_allowed_folders_fails_the_run_at_once(training_dag, churnops_home, telco_copy):
    """The same copy without CHURNOPS_ALLOWED_PATHS: the first task refuses it, nothing else runs."""
    dag_run = training_dag.test(
        logical_date=pendulum.datetime(2026, 11, 24, tz="UTC"), run_conf={"config_path": str(telco_copy)}
    )
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed" and states["start"] == "failed"
    assert states["validate"] == "upstream_failed"
