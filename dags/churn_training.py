"""
### churn_training

Train the churn model end to end and register the best candidate.

`start → validate → merge → preprocess → features → train[family] → evaluate → register`

* Every step is a function of the `churnops` library (`churnops.training`) and logs
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

from airflow.sdk import Param, dag

from churnops.orchestration import common_params, dag_settings, families_param, tasks, with_step_timeouts


@dag(
    dag_id=Path(__file__).stem,
    description="Validate, merge, preprocess, featurise, train per family, evaluate and register a churn model.",
    doc_md=__doc__,
    schedule=None,
    params={
        **common_params(),
        "families": families_param(),
        "cv_folds": Param(
            None,
            type=["null", "integer"],
            minimum=2,
            maximum=20,
            title="CV folds",
            description="Stratified k-fold CV folds used to choose the model. Empty: the config's value.",
        ),
    },
    **dag_settings("training", "mlflow"),
)
def churn_training():
    prepared = tasks.features(tasks.preprocess(tasks.merge(tasks.validate(tasks.start()))))
    trained = tasks.train.partial(prepared=prepared).expand(family=tasks.model_families(prepared))
    tasks.register(tasks.evaluate(trained))


with_step_timeouts(churn_training())
