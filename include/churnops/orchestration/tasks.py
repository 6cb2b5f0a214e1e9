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
    """Check each raw source; quarantine and fail on any broken rule.

    Args:
        run: :func:`start`'s result.

    Returns:
        :func:`churnops.training.validate_sources`' result.
    """
    from churnops.training import validate_sources

    return validate_sources(run)


@task
@fail_fast_on_bad_input
def merge(validated: dict) -> dict:
    """Join the sources on the id and report unmatched keys.

    Args:
        validated: :func:`validate`'s result.

    Returns:
        :func:`churnops.training.merge`'s result.
    """
    from churnops.training import merge as merge_sources

    return merge_sources(validated)


@task
@fail_fast_on_bad_input
def preprocess(merged: dict) -> dict:
    """Clean and split by id hash; write this run's Parquet snapshot.

    Args:
        merged: :func:`merge`'s result.

    Returns:
        :func:`churnops.training.preprocess`' result.
    """
    from churnops.training import preprocess as make_snapshot

    return make_snapshot(merged)


@task
@fail_fast_on_bad_input
def features(snapshot: dict) -> dict:
    """Build and profile the derived and encoded features.

    Args:
        snapshot: :func:`preprocess`' result.

    Returns:
        :func:`churnops.training.build_features`' result.
    """
    from churnops.training import build_features

    return build_features(snapshot)


@task
def model_families(prepared: dict) -> list[str]:
    """The families to train, one mapped `train` task each (Params, else config).

    Args:
        prepared: :func:`features`' result.

    Returns:
        The family names.
    """
    return prepared["families"]


@task(map_index_template="{{ family }}")
@fail_fast_on_bad_input
def train(prepared: dict, family: str) -> dict:
    """Cross-validate, fit and log one model family.

    Args:
        prepared: :func:`features`' result.
        family: the family (one mapped task each).

    Returns:
        :func:`churnops.training.train_family`'s result.
    """
    from churnops.training import train_family

    # map_index_template renders {{ family }} from the task's context, which Airflow's Context type does not declare.
    get_current_context()["family"] = family  # type: ignore[typeddict-unknown-key]
    return train_family(prepared, family)


@task
@fail_fast_on_bad_input
def evaluate(trained: list[dict]) -> dict:
    """Compare the candidates and choose by CV ROC-AUC.

    Args:
        trained: the mapped :func:`train` tasks' results.

    Returns:
        :func:`churnops.training.evaluate_candidates`' result.
    """
    from churnops.training import evaluate_candidates

    return evaluate_candidates(trained)


@task
@fail_fast_on_bad_input
def register(chosen: dict) -> dict:
    """Register the chosen model; @champion if none yet, else @challenger.

    Args:
        chosen: :func:`evaluate`'s result.

    Returns:
        :func:`churnops.training.register_chosen`'s result.
    """
    from churnops.training import register_chosen

    return register_chosen(chosen)
