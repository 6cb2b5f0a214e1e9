"""The training pipeline's steps, shared by the ``churn_training`` DAG and the CLI.

Each step takes the small dict the previous step returned (paths, ids, digests: what
XCom carries), does its work inside its own nested MLflow run, and returns a dict for
the next step. Files are written under ``$CHURNOPS_HOME/runs/<dataset>/<dag id>/<run id>/``,
so a rerun of the same DAG run overwrites its own outputs and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnops.config import PACKAGE_DIR
from churnops.data import write_json
from churnops.errors import ChurnopsInputError
from churnops.faults import crash_point
from churnops.tracking import RunContext
from churnops.training.checks import check_sources, quarantine_dir, reject
from churnops.training.run import git_commit, start_run, training_step

__all__ = [
    "build_features",
    "evaluate_candidates",
    "merge",
    "preprocess",
    "register_chosen",
    "run_training",
    "train_family",
    "validate_sources",
]


def validate_sources(previous: dict[str, Any]) -> dict[str, Any]:
    """Check every raw source; on any failure quarantine it and raise ``DataValidationError``.

    Args:
        previous: :func:`~churnops.training.run.start_run`'s result.

    Returns:
        ``previous`` plus ``validation_report`` (its path) and ``sources_digest``.

    Raises:
        DataValidationError: a source breaks a rule (the failing sources are quarantined first).
    """
    import mlflow

    from churnops.data import DataValidationError

    with training_step(previous, "validate") as (run, config, run_dir):
        try:
            checked = check_sources(config, run.ctx, run_dir)
        except DataValidationError:
            mlflow.set_tag("churnops.quarantine", str(quarantine_dir(config, run.ctx)))
            raise
        finally:
            if (run_dir / "validation_report.json").is_file():
                mlflow.log_artifact(str(run_dir / "validation_report.json"))
        mlflow.log_metrics({f"rows_{name}": rows for name, rows in checked["rows"].items()})
        return {
            **previous,
            "validation_report": checked["validation_report"],
            "sources_digest": checked["sources_digest"],
        }


def merge(previous: dict[str, Any]) -> dict[str, Any]:
    """Inner-join the typed sources on the id; fail when a source loses too many ids.

    Args:
        previous: :func:`validate_sources`' result.

    Returns:
        ``previous`` plus ``merged`` (the merged table's Parquet path) and ``rows_merged``.

    Raises:
        DataValidationError: a source loses more than ``validation.max_unmatched_fraction`` of
            its ids, or no id is in every source (the sources are quarantined first).
    """
    import mlflow

    from churnops.data import Finding, coerce_types, merge_sources, read_source

    with training_step(previous, "merge") as (run, config, run_dir):
        ds = config.dataset
        frames = {s.name: coerce_types(read_source(s), ds) for s in ds.sources}
        merged, report = merge_sources(frames, ds.id_column)
        limit = config.validation.max_unmatched_fraction
        findings = [
            Finding(
                name,
                ds.id_column,
                "max_unmatched_fraction",
                f"{r['unmatched']} ids ({r['unmatched_fraction']:.2%}) have no match in the other sources, "
                f"above the limit {limit:.2%}; e.g. {r['unmatched_sample'][:3]}",
            )
            for name, r in report.items()
            if r["unmatched_fraction"] > limit
        ]
        if merged.empty:
            findings.append(Finding("*", ds.id_column, "merge_not_empty", "no id is present in every source"))
        path = write_json(run_dir / "merge_report.json", {"rows": len(merged), "sources": report})
        mlflow.log_artifact(str(path))
        mlflow.log_metrics(
            {"rows_merged": len(merged), **{f"unmatched_{name}": r["unmatched"] for name, r in report.items()}}
        )
        if findings:
            mlflow.set_tag("churnops.quarantine", str(quarantine_dir(config, run.ctx)))
            reject(config, run.ctx, findings, "merge")
        merged = merged[[ds.id_column, *ds.feature_columns, ds.target]]
        merged_path = run_dir / "merged.parquet"
        merged.to_parquet(merged_path, index=False)
        return {**previous, "merged": str(merged_path), "rows_merged": len(merged)}


def _local_file_source(path: Path) -> Any:
    """An MLflow dataset source for a local file, named without ambiguity.

    MLflow registers its local-file source twice (for the schemes ``""`` and ``file``), so letting
    it resolve a path warns on every run that the path "can be interpreted in multiple ways";
    both are the same kind of source, so the first is named.
    """
    from mlflow.data.dataset_source_registry import get_registered_sources, resolve_dataset_source

    # The registry holds the source classes, though mlflow annotates them as DatasetSource instances.
    local = [
        source for source in get_registered_sources() if getattr(source, "__name__", "") == "LocalArtifactDatasetSource"
    ]
    return resolve_dataset_source(str(path), candidate_sources=local[:1] or None)


def _active_run_id() -> str:
    """The id of the step's own MLflow run, which :func:`training_step` keeps active."""
    import mlflow

    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("no active MLflow run: a step's body runs inside training_step")
    return active.info.run_id


def preprocess(previous: dict[str, Any]) -> dict[str, Any]:
    """Clean the merged table and add the hash-based split: this run's training snapshot.

    Args:
        previous: :func:`merge`'s result.

    Returns:
        ``previous`` plus ``snapshot`` (its Parquet path), ``snapshot_digest``, ``rows_train``
        and ``rows_test``.

    Raises:
        ChurnopsInputError: the training or the holdout split holds a single class.
    """
    import hashlib

    import mlflow
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    from churnops.data import SPLIT_COLUMN, assign_split, label_vector

    with training_step(previous, "preprocess") as (run, config, run_dir):
        ds = config.dataset
        frame = pd.read_parquet(previous["merged"])
        frame[SPLIT_COLUMN] = assign_split(frame[ds.id_column], config.training.test_fraction, salt=ds.name)
        y = label_vector(frame, config)
        is_test = (frame[SPLIT_COLUMN] == "test").to_numpy()
        if y[~is_test].min() == y[~is_test].max() or y[is_test].min() == y[is_test].max():
            raise ChurnopsInputError("the training or holdout split holds a single class; more data is needed")
        snapshot_path = run_dir / "snapshot.parquet"
        frame.to_parquet(snapshot_path, index=False)
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()
        stats = {
            "rows_train": int((~is_test).sum()),
            "rows_test": int(is_test.sum()),
            "positive_rate_train": float(y[~is_test].mean()),
            "positive_rate_test": float(y[is_test].mean()),
            **{f"null_{c}": int(frame[c].isna().sum()) for c in ds.feature_columns if frame[c].isna().any()},
        }
        mlflow.log_metrics(stats)
        mlflow.set_tag("churnops.snapshot_digest", digest)
        mlflow.log_input(
            from_pandas(frame, source=_local_file_source(snapshot_path), name=f"{ds.name}-snapshot", targets=ds.target),
            context="training",
        )
        return {
            **previous,
            "snapshot": str(snapshot_path),
            "snapshot_digest": digest,
            "rows_train": stats["rows_train"],
            "rows_test": stats["rows_test"],
        }


def build_features(previous: dict[str, Any]) -> dict[str, Any]:
    """Materialise and profile the derived and encoded features the model pipeline will use.

    The features themselves are computed inside every logged model (so serving cannot
    drift from training); this step fails early when a declared feature cannot be built
    and records what the models will see.

    Args:
        previous: :func:`preprocess`' result.

    Returns:
        ``previous`` plus ``features`` (the derived features' Parquet path) and ``feature_summary``.
    """
    import mlflow
    import pandas as pd

    from churnops.data import SPLIT_COLUMN
    from churnops.features import build_preprocessor, derived_columns

    with training_step(previous, "features") as (run, config, run_dir):
        ds = config.dataset
        snapshot = pd.read_parquet(previous["snapshot"])
        train = snapshot[snapshot[SPLIT_COLUMN] == "train"]
        preprocessor = build_preprocessor(config).fit(train[ds.feature_columns])
        derived = preprocessor[:-1].transform(snapshot[ds.feature_columns])
        numeric, categorical = derived_columns(config)
        features_path = run_dir / "features.parquet"
        pd.concat([snapshot[[ds.id_column, SPLIT_COLUMN]], derived[numeric + categorical]], axis=1).to_parquet(
            features_path, index=False
        )
        encoded = [str(n) for n in preprocessor.get_feature_names_out()]
        summary = {
            "input_columns": ds.feature_columns,
            "derived": {
                **{
                    c: {
                        "kind": "numeric",
                        "mean": float(derived[c].mean()),
                        "null_fraction": float(derived[c].isna().mean()),
                    }
                    for c in numeric
                },
                **{
                    c: {
                        "kind": "categorical",
                        "counts": {str(k): int(n) for k, n in derived[c].value_counts().items() if n},
                    }
                    for c in categorical
                },
            },
            "encoded_features": encoded,
        }
        path = write_json(run_dir / "feature_summary.json", summary)
        mlflow.log_artifact(str(path))
        mlflow.log_metrics(
            {
                "n_input_columns": len(ds.feature_columns),
                "n_derived": len(numeric + categorical),
                "n_encoded_features": len(encoded),
            }
        )
        return {**previous, "features": str(features_path), "feature_summary": str(path)}


def train_family(previous: dict[str, Any], family: str) -> dict[str, Any]:
    """Cross-validate and fit one model family; log metrics, plots and the model.

    Args:
        previous: :func:`build_features`' result.
        family: one of :data:`~churnops.config.MODEL_FAMILIES`.

    Returns:
        ``previous`` plus ``candidate``: the family, its run and model URI, CV and holdout metrics.
    """
    import matplotlib.pyplot as plt
    import mlflow
    import pandas as pd

    from churnops.data import SPLIT_COLUMN, label_vector
    from churnops.modeling import (
        classification_metrics,
        diagnostic_figures,
        feature_importance,
        fit_family,
        model_signature,
    )

    with training_step(previous, f"train/{family}", **{"churnops.family": family}) as (run, config, run_dir):
        ds = config.dataset
        snapshot = pd.read_parquet(previous["snapshot"])
        train, test = snapshot[snapshot[SPLIT_COLUMN] == "train"], snapshot[snapshot[SPLIT_COLUMN] == "test"]
        X_train, X_test = train[ds.feature_columns], test[ds.feature_columns]
        y_train, y_test = label_vector(train, config), label_vector(test, config)
        result = fit_family(family, X_train, y_train, config)
        proba = result.model.predict_proba(X_test)[:, 1]
        test_metrics = classification_metrics(y_test, proba)

        mlflow.log_params(
            {"family": family, "cv_folds": config.training.cv_folds, "cv_rows": result.cv_rows, **result.params}
        )
        for fold, score in enumerate(result.cv_scores):
            mlflow.log_metric("cv_roc_auc", float(score), step=fold)
        mlflow.log_metrics(
            {
                "cv_roc_auc_mean": result.cv_roc_auc_mean,
                "cv_roc_auc_std": result.cv_roc_auc_std,
                **{f"test_{k}": v for k, v in test_metrics.items()},
            }
        )
        importance = feature_importance(result.model)
        mlflow.log_text(importance.to_csv(header=["importance"]), "feature_importance.csv")
        for name, figure in diagnostic_figures(y_test, proba, importance, family).items():
            mlflow.log_figure(figure, f"plots/{name}")
            plt.close(figure)
        example = X_train.dropna().head(5)
        info = mlflow.sklearn.log_model(
            result.model,
            name="model",
            signature=model_signature(config, result.model.predict_proba(example)),
            input_example=example,
            metadata={"churnops_input_columns": ds.feature_columns},
            pyfunc_predict_fn="predict_proba",
            # skops refuses RF/XGBoost/LightGBM pipelines; cloudpickle with the package
            # shipped in code_paths loads anywhere churnops' dependencies are installed.
            serialization_format="cloudpickle",
            code_paths=[str(PACKAGE_DIR)],
        )
        candidate = {
            "family": family,
            "run_id": _active_run_id(),
            "model_uri": info.model_uri,
            "cv_folds": config.training.cv_folds,
            "cv_rows": result.cv_rows,
            "cv_roc_auc_mean": result.cv_roc_auc_mean,
            "cv_roc_auc_std": result.cv_roc_auc_std,
            "test_metrics": test_metrics,
        }
        return {**previous, "candidate": candidate}


def evaluate_candidates(trained: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare the candidates in the parent run and choose by CV ROC-AUC.

    Args:
        trained: :func:`train_family`'s results, one per family.

    Returns:
        The run's lineage (the results without ``candidate``) plus ``best`` (the chosen
        candidate), ``reason`` and ``comparison`` (the table's CSV path).

    Raises:
        ValueError: ``trained`` is empty.
    """
    import mlflow
    from mlflow import MlflowClient

    from churnops.modeling import choose_best, comparison_table

    trained = list(trained)
    if not trained:
        raise ValueError("no model was trained")
    lineage = {k: v for k, v in trained[0].items() if k != "candidate"}
    candidates = [t["candidate"] for t in trained]
    with training_step(lineage, "evaluate") as (run, config, run_dir):
        table = comparison_table(candidates)
        best, reason = choose_best(candidates)
        path = run_dir / "model_comparison.csv"
        table.to_csv(path, index=False, float_format="%.5f")
        markdown = table.drop(columns=["run_id"]).to_markdown(index=False, floatfmt=".4f")
        client = MlflowClient()
        for target in (_active_run_id(), run.parent_run_id):
            client.log_artifact(target, str(path))
            client.log_text(target, f"{markdown}\n\n**Choice:** {reason}\n", "model_comparison.md")
            client.set_tag(target, "churnops.best_model", best["family"])
            client.set_tag(target, "churnops.choice_reason", reason)
        for key, value in {
            "best_cv_roc_auc": best["cv_roc_auc_mean"],
            "best_test_roc_auc": best["test_metrics"]["roc_auc"],
            "best_test_ece": best["test_metrics"]["ece"],
        }.items():
            client.log_metric(run.parent_run_id, key, value)
        mlflow.log_metrics({"n_candidates": len(candidates), "best_cv_roc_auc": best["cv_roc_auc_mean"]})
        return {**lineage, "best": best, "reason": reason, "comparison": str(path)}


def register_chosen(chosen: dict[str, Any]) -> dict[str, Any]:
    """Register the chosen model once; make it ``@champion`` if there is none, else ``@challenger``.

    Args:
        chosen: :func:`evaluate_candidates`' result.

    Returns:
        The run's summary (also written as ``summary.json``): the parent run, the chosen family
        and its scores, the model version and its aliases, and whether this call created the version.
    """
    import mlflow
    from mlflow import MlflowClient

    from churnops.tracking import assign_training_alias, finish_parent_run, model_aliases, register_version

    with training_step(chosen, "register") as (run, config, run_dir):
        best, ctx = chosen["best"], run.ctx
        tags = {
            "churnops.family": best["family"],
            "churnops.dataset": config.dataset.name,
            "churnops.dataset_digest": chosen["sources_digest"],
            "churnops.snapshot_digest": chosen["snapshot_digest"],
            "churnops.snapshot_path": chosen["snapshot"],
            "churnops.config_path": run.config_path,
            "churnops.git_commit": git_commit(),
            "churnops.dag_id": ctx.dag_id,
            "churnops.dag_run_id": ctx.run_id,
            "churnops.logical_date": ctx.logical_date or "",
            "churnops.training_run_id": run.parent_run_id,
            "churnops.cv_roc_auc": f"{best['cv_roc_auc_mean']:.6f}",
            **{f"churnops.test_{k}": f"{v:.6f}" for k, v in best["test_metrics"].items()},
        }
        version, created = register_version(best["model_uri"], best["run_id"], config.registry, tags)
        crash_point("register:after_version")  # the fault tests' SIGKILL: a version without its alias
        alias = assign_training_alias(config.registry, version)
        aliases = model_aliases(config.registry, version)
        mlflow.set_tags({"churnops.model_version": version, "churnops.alias": alias})
        client = MlflowClient()
        client.set_tag(run.parent_run_id, "churnops.model_version", version)
        client.set_tag(run.parent_run_id, "churnops.aliases", ",".join(aliases))
        summary = {
            "parent_run_id": run.parent_run_id,
            "best_model": best["family"],
            "cv_roc_auc": best["cv_roc_auc_mean"],
            "test_roc_auc": best["test_metrics"]["roc_auc"],
            "test_ece": best["test_metrics"]["ece"],
            "rows": chosen["rows_merged"],
            "model_name": config.registry.model_name,
            "model_version": version,
            "aliases": aliases,
            "created_version": created,
        }
        write_json(run_dir / "summary.json", summary)
    finish_parent_run(run.parent_run_id)
    return summary


def run_training(
    ctx: RunContext, config_path: str | None = None, families: list[str] | None = None, cv_folds: int | None = None
) -> dict[str, Any]:
    """All steps in one process, in DAG order: what ``churnops train`` runs.

    Args:
        ctx: the pipeline run.
        config_path: the config file (None: the default one).
        families: families to train instead of the config's.
        cv_folds: CV folds instead of the config's.

    Returns:
        :func:`register_chosen`'s summary.
    """
    started = start_run(ctx, config_path, families, cv_folds)
    prepared = build_features(preprocess(merge(validate_sources(started))))
    trained = [train_family(prepared, family) for family in started["run"]["families"]]
    return register_chosen(evaluate_candidates(trained))
