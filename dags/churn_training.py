"""
### churn_training

Train the churn model end to end and register the best candidate.

`start → validate → merge → preprocess → features → train[family] → evaluate → register`

* Every step is a function of the `churnops` library (`include/churnops/pipeline.py`) and logs
  to MLflow as a **nested run** under one parent run per DAG run (tags `churnops.dag_id`,
  `churnops.run_id`, `churnops.logical_date`). A retried task resumes its own step run.
* `train` is mapped: one task per model family, each cross-validated on the training split.
* `evaluate` chooses by mean CV ROC-AUC (never by the holdout); `register` adds a version of the
  registered model, `@champion` if there is none yet, else `@challenger`. Promotion of a
  challenger is `churn_retraining`'s decision.
* Bad input fails `validate` (or `merge`) without retries; the offending file is copied to
  `$CHURNOPS_HOME/quarantine/…` beside a `reason.json`, and nothing downstream runs.

Leave a Param empty to use the config file's value.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from churnops.orchestration import (
    airflow_run_context,
    config_path_param,
    confined_config_path,
    fail_fast_on_bad_input,
    task_defaults,
)
from churnops.training_tasks import evaluate, features, merge, model_families, preprocess, register, train, validate

FAMILIES = ["logistic_regression", "random_forest", "xgboost", "lightgbm"]


@dag(
    dag_id=Path(__file__).stem,
    description="Validate, merge, preprocess, featurise, train per family, evaluate and register a churn model.",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["churnops", "training", "mlflow"],
    default_args=task_defaults(),
    params={
        "config_path": config_path_param(),
        "families": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "enum": FAMILIES},
            uniqueItems=True,
            title="Model families",
            description=f"Subset of {FAMILIES} to train. Empty: the config's list.",
        ),
        "cv_folds": Param(
            None,
            type=["null", "integer"],
            minimum=2,
            maximum=20,
            title="CV folds",
            description="Stratified k-fold CV folds used to choose the model. Empty: the config's value.",
        ),
    },
)
def churn_training():
    @task
    @fail_fast_on_bad_input
    def start(params: dict | None = None) -> dict:
        """Freeze the run's config (Params applied) and open its parent MLflow run."""
        from churnops.pipeline import start_run
        from churnops.tracking import RunContext

        return start_run(
            RunContext(**airflow_run_context()),
            confined_config_path(params["config_path"]),
            params["families"],
            params["cv_folds"],
        )

    prepared = features(preprocess(merge(validate(start()))))
    trained = train.partial(prepared=prepared).expand(family=model_families(prepared))
    register(evaluate(trained))


churn_training()
