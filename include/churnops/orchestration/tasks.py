"""TaskFlow tasks for the training steps, shared by ``churn_training`` and ``churn_retraining``.

Each task only calls its :mod:`churnops.training` step. Imported at the top of DAG files,
so it imports nothing heavy: the library is imported inside each task.
"""

from __future__ import annotations

from airflow.sdk import get_current_context, task

from churnops.orchestration.runtime import airflow_run_context, fail_fast_on_bad_input, run_as_of, run_config_path

__all__ = ["evaluate", "features", "merge", "model_families", "preprocess", "register", "start", "train", "validate"]


@task
@fail_fast_on_bad_input
def start(params: dict | None = None) -> dict:
    """Freeze the run's config (Params applied) and open its parent MLflow run.

    A retraining run (one with an ``as_of`` Param) is dated by its as-of day, not its trigger time.

    Args:
        params: the run's Params (``config_path``, ``families``, ``cv_folds``, ``as_of``).

    Returns:
        :func:`churnops.training.start_run`'s result.
    """
    from churnops.tracking import RunContext
    from churnops.training import start_run

    params = params or {}
    context = airflow_run_context()
    if "as_of" in params:
        context["logical_date"] = run_as_of(params)
    return start_run(RunContext(**context), run_config_path(params), params.get("families"), params.get("cv_folds"))


@task
@fail_fast_on_bad_input
def validate(run: dict) -> dict:
    """Check each raw source; quarantine and fail on any broken rule (:func:`churnops.training.validate_sources`)."""
    from churnops.training import validate_sources

    return validate_sources(run)


@task
@fail_fast_on_bad_input
def merge(validated: dict) -> dict:
    """Join the sources on the id and report unmatched keys (:func:`churnops.training.merge`)."""
    from churnops.training import merge as merge_sources

    return merge_sources(validated)


@task
@fail_fast_on_bad_input
def preprocess(merged: dict) -> dict:
    """Clean and split by id hash; write this run's Parquet snapshot (:func:`churnops.training.preprocess`)."""
    from churnops.training import preprocess as make_snapshot

    return make_snapshot(merged)


@task
@fail_fast_on_bad_input
def features(snapshot: dict) -> dict:
    """Build and profile the derived and encoded features (:func:`churnops.training.build_features`)."""
    from churnops.training import build_features

    return build_features(snapshot)


@task
def model_families(prepared: dict) -> list[str]:
    """The families to train, one mapped `train` task each (Params, else config).

    Returns:
        The family names.
    """
    return prepared["families"]


@task(map_index_template="{{ family }}")
@fail_fast_on_bad_input
def train(prepared: dict, family: str) -> dict:
    """Cross-validate, fit and log one model family (:func:`churnops.training.train_family`)."""
    from churnops.training import train_family

    # map_index_template renders {{ family }} from the task's context, which Airflow's Context type does not declare.
    get_current_context()["family"] = family  # type: ignore[typeddict-unknown-key]
    return train_family(prepared, family)


@task
@fail_fast_on_bad_input
def evaluate(trained: list[dict]) -> dict:
    """Compare the candidates and choose by CV ROC-AUC (:func:`churnops.training.evaluate_candidates`)."""
    from churnops.training import evaluate_candidates

    return evaluate_candidates(trained)


@task
@fail_fast_on_bad_input
def register(chosen: dict) -> dict:
    """Register the chosen model, @champion if none yet else @challenger (:func:`churnops.training.register_chosen`)."""
    from churnops.training import register_chosen

    return register_chosen(chosen)
