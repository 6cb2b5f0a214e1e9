"""The training pipeline's steps, shared by the ``churn_training`` DAG and the CLI.

Each step takes the small dict the previous step returned (paths, ids, digests: what
XCom carries), does its work inside its own nested MLflow run, and returns a dict for
the next step. Files are written under ``$CHURNOPS_HOME/runs/<dataset>/<dag id>/<run id>/``,
so a rerun of the same DAG run overwrites its own outputs and nothing else.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from churnops.config import ChurnopsConfig, churnops_home, load_config
from churnops.errors import ChurnopsInputError
from churnops.faults import crash_point
from churnops.tracking import RunContext

__all__ = [
    "TrainingRun",
    "build_features",
    "check_sources",
    "evaluate_candidates",
    "merge",
    "preprocess",
    "register_chosen",
    "run_training",
    "start_run",
    "train_family",
    "validate_sources",
    "write_json",
]


@dataclass(frozen=True)
class TrainingRun:
    """Identity of one pipeline run, passed from step to step."""

    config_path: str
    """The run's frozen copy of the config (Params applied, source paths absolute)."""
    experiment_id: str
    parent_run_id: str
    run_dir: str
    context: dict[str, Any]
    families: list[str] = field(default_factory=list)

    @property
    def ctx(self) -> RunContext:
        return RunContext(**self.context)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_dir_for(config: ChurnopsConfig, ctx: RunContext) -> Path:
    return churnops_home() / "runs" / config.dataset.name / ctx.dag_id / ctx.slug


def start_run(
    ctx: RunContext, config_path: str | None = None, families: list[str] | None = None, cv_folds: int | None = None
) -> dict[str, Any]:
    """Freeze the run's config and open (or find again) its parent MLflow run."""
    from mlflow import MlflowClient

    from churnops.tracking import configure_mlflow, get_or_create_parent_run

    config = load_config(config_path).with_training(families=families or None, cv_folds=cv_folds)
    run_dir = run_dir_for(config, ctx)
    run_dir.mkdir(parents=True, exist_ok=True)
    frozen = run_dir / "config.yaml"
    frozen.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    experiment_id = configure_mlflow(config)
    parent = get_or_create_parent_run(experiment_id, ctx, name=f"{ctx.dag_id} {ctx.logical_date or ctx.run_id}")
    client = MlflowClient()
    client.log_artifact(parent, str(frozen))
    for key, value in {
        "dataset": config.dataset.name,
        "families": ",".join(config.training.families),
        "cv_folds": config.training.cv_folds,
        "seed": config.training.seed,
        "test_fraction": config.training.test_fraction,
        "config_source": str(Path(config_path).resolve()) if config_path else "default",
    }.items():
        client.log_param(parent, key, value)
    run = TrainingRun(str(frozen), experiment_id, parent, str(run_dir), ctx.to_dict(), list(config.training.families))
    return {"run": run.to_dict(), "families": run.families}


@contextmanager
def _step(previous: dict[str, Any], name: str, **tags: str) -> Iterator[tuple[TrainingRun, ChurnopsConfig, Path]]:
    """Load the run's config and open the step's nested MLflow run."""
    from churnops.tracking import configure_mlflow, step_run

    run = TrainingRun(**previous["run"])
    config = load_config(run.config_path)
    configure_mlflow(config)
    with step_run(run.experiment_id, run.parent_run_id, run.ctx, name, **tags):
        yield run, config, Path(run.run_dir)


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON (parents created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def quarantine_dir(config: ChurnopsConfig, ctx: RunContext) -> Path:
    return churnops_home() / "quarantine" / config.dataset.name / ctx.dag_id / ctx.slug


def reject(config: ChurnopsConfig, ctx: RunContext, findings: list, step: str) -> NoReturn:
    """Quarantine every source named by a finding (all of them for dataset-wide ones), then raise."""
    from churnops.validation import DataValidationError, quarantine

    folder = quarantine_dir(config, ctx)
    named = {f.source for f in findings}
    for source in config.dataset.sources:
        if source.name in named or "*" in named:
            own = [f for f in findings if f.source in {source.name, "*"}]
            quarantine(
                source,
                own,
                folder / source.name,
                {"step": step, **ctx.tags(), "message": str(DataValidationError(own))},
            )
    raise DataValidationError(findings, folder)


def check_sources(config: ChurnopsConfig, ctx: RunContext, out_dir: Path) -> dict[str, Any]:
    """Validate every raw source and write ``validation_report.json``; no MLflow involved.

    Raises:
        DataValidationError: after quarantining the failing sources.
    """
    from churnops.data import file_sha256, sources_digest
    from churnops.validation import Finding, validate_source

    ds = config.dataset
    report: dict[str, Any] = {}
    findings: list[Finding] = []
    provided: set[str] = set()
    for source in ds.sources:
        frame, found = validate_source(source, config)
        findings += found
        provided |= set(frame.columns)
        report[source.name] = {
            "path": str(source.path),
            "sha256": file_sha256(source.path) if Path(source.path).is_file() else None,
            "rows": int(len(frame)),
            "columns": list(map(str, frame.columns)),
            "findings": [asdict(f) for f in found],
            "passed": not found,
        }
    if not findings:
        for column in [*ds.feature_columns, ds.target]:
            if column not in provided:
                findings.append(Finding("*", column, "required_column", "no source provides this column"))
    path = write_json(out_dir / "validation_report.json", {"passed": not findings, "sources": report})
    if findings:
        reject(config, ctx, findings, "validate")
    return {
        "validation_report": str(path),
        "sources_digest": sources_digest(config),
        "rows": {name: r["rows"] for name, r in report.items()},
    }


def validate_sources(previous: dict[str, Any]) -> dict[str, Any]:
    """Check every raw source; on any failure quarantine it and raise ``DataValidationError``."""
    import mlflow

    from churnops.validation import DataValidationError

    with _step(previous, "validate") as (run, config, run_dir):
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
    """Inner-join the typed sources on the id; fail when a source loses too many ids."""
    import mlflow

    from churnops.data import coerce_types, merge_sources, read_source
    from churnops.validation import Finding

    with _step(previous, "merge") as (run, config, run_dir):
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


def preprocess(previous: dict[str, Any]) -> dict[str, Any]:
    """Clean the merged table and add the hash-based split: this run's training snapshot."""
    import hashlib

    import mlflow
    import pandas as pd

    from churnops.data import SPLIT_COLUMN, assign_split, label_vector

    with _step(previous, "preprocess") as (run, config, run_dir):
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
            mlflow.data.from_pandas(frame, source=str(snapshot_path), name=f"{ds.name}-snapshot", targets=ds.target),
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
    """
    import mlflow
    import pandas as pd

    from churnops.data import SPLIT_COLUMN
    from churnops.features import build_preprocessor, derived_columns

    with _step(previous, "features") as (run, config, run_dir):
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
    """Cross-validate and fit one model family; log metrics, plots and the model."""
    import matplotlib.pyplot as plt
    import mlflow
    import pandas as pd

    import churnops
    from churnops.data import SPLIT_COLUMN, label_vector
    from churnops.evaluate import classification_metrics, diagnostic_figures, feature_importance
    from churnops.train import fit_family, model_signature

    with _step(previous, f"train/{family}", **{"churnops.family": family}) as (run, config, run_dir):
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
            code_paths=[str(Path(churnops.__file__).parent)],
        )
        candidate = {
            "family": family,
            "run_id": mlflow.active_run().info.run_id,
            "model_uri": info.model_uri,
            "cv_folds": config.training.cv_folds,
            "cv_rows": result.cv_rows,
            "cv_roc_auc_mean": result.cv_roc_auc_mean,
            "cv_roc_auc_std": result.cv_roc_auc_std,
            "test_metrics": test_metrics,
        }
        return {**previous, "candidate": candidate}


def evaluate_candidates(trained: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare the candidates in the parent run and choose by CV ROC-AUC."""
    import mlflow
    from mlflow import MlflowClient

    from churnops.evaluate import choose_best, comparison_table

    trained = list(trained)
    if not trained:
        raise ValueError("no model was trained")
    lineage = {k: v for k, v in trained[0].items() if k != "candidate"}
    candidates = [t["candidate"] for t in trained]
    with _step(lineage, "evaluate") as (run, config, run_dir):
        table = comparison_table(candidates)
        best, reason = choose_best(candidates)
        path = run_dir / "model_comparison.csv"
        table.to_csv(path, index=False, float_format="%.5f")
        markdown = table.drop(columns=["run_id"]).to_markdown(index=False, floatfmt=".4f")
        client = MlflowClient()
        for target in (mlflow.active_run().info.run_id, run.parent_run_id):
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


def git_commit() -> str:
    """The commit of the checkout churnops runs from, or ``unknown``."""
    import churnops

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(churnops.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def register_chosen(chosen: dict[str, Any]) -> dict[str, Any]:
    """Register the chosen model once; make it ``@champion`` if there is none, else ``@challenger``."""
    import mlflow
    from mlflow import MlflowClient

    from churnops.registry import assign_training_alias, model_aliases, register_version
    from churnops.tracking import finish_parent_run

    with _step(chosen, "register") as (run, config, run_dir):
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
    """All steps in one process, in DAG order: what ``churnops train`` runs."""
    started = start_run(ctx, config_path, families, cv_folds)
    prepared = build_features(preprocess(merge(validate_sources(started))))
    trained = [train_family(prepared, family) for family in started["run"]["families"]]
    return register_chosen(evaluate_candidates(trained))
