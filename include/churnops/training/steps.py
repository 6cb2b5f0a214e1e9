"""The training pipeline's steps, shared by the ``churn_training`` DAG and the CLI.

Each step takes the small dict the previous step returned (paths, ids, digests: what
XCom carries), does its work inside its own nested MLflow run, and returns a dict for
the next step. Files are written under ``$CHURNOPS_HOME/runs/<dataset>/<dag id>/<run id>/``,
so a rerun of the same DAG run overwrites its own outputs and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnops.data import write_json, write_parquet
from churnops.errors import ChurnopsInputError
from churnops.tracking import RunContext
from churnops.training.candidates import evaluate_candidates, register_chosen, train_family
from churnops.training.checks import check_sources, quarantine_dir, reject
from churnops.training.run import start_run, training_step

__all__ = [
    "SourcesChangedError",
    "build_features",
    "merge",
    "preprocess",
    "run_training",
    "validate_sources",
]


class SourcesChangedError(ChurnopsInputError):
    """A training source changed between ``validate`` and a later step reading it.

    A retry would read the changed file against the same validation: the run fails at once, and
    a new run validates the sources as they are.
    """


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
        SourcesChangedError: a source is not the one ``validate`` checked.
    """
    import mlflow

    from churnops.data import Finding, coerce_types, merge_sources, read_source, sources_digest

    with training_step(previous, "merge") as (run, config, run_dir):
        ds = config.dataset
        frames = {s.name: coerce_types(read_source(s), ds) for s in ds.sources}
        # Read first, then compare: what was read is what validate checked, or nothing is trained.
        if (digest := sources_digest(config)) != previous["sources_digest"]:
            raise SourcesChangedError(
                f"the training sources changed after validate checked them (digest {previous['sources_digest'][:12]}, "
                f"now {digest[:12]}): nothing is trained on unchecked data; run the training again to validate "
                "them as they are now"
            )
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
        write_parquet(merged, merged_path)
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
        write_parquet(frame, snapshot_path)
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
        write_parquet(
            pd.concat([snapshot[[ds.id_column, SPLIT_COLUMN]], derived[numeric + categorical]], axis=1), features_path
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
