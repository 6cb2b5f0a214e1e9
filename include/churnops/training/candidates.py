"""The candidates: each model family cross-validated, fitted and logged; the best chosen; it registered.

``train_family`` runs once per family (one mapped Airflow task each); ``evaluate_candidates``
chooses by mean CV ROC-AUC (never by the holdout); ``register_chosen`` adds the version.
"""

from __future__ import annotations

from typing import Any

from churnops.config import PACKAGE_DIR
from churnops.data import write_json, write_text_atomically
from churnops.faults import crash_point
from churnops.training.run import git_commit, training_step

__all__ = ["evaluate_candidates", "register_chosen", "train_family"]


def _active_run_id() -> str:
    """The id of the step's own MLflow run, which :func:`training_step` keeps active."""
    import mlflow

    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("no active MLflow run: a step's body runs inside training_step")
    return active.info.run_id


def train_family(previous: dict[str, Any], family: str) -> dict[str, Any]:
    """Cross-validate and fit one model family; calibrate it; choose its threshold; log metrics, plots and the model.

    The calibration (``training.calibration``) is fitted on the out-of-fold probabilities of the
    training split and logged inside the model, so every metric, the threshold and every later
    score are the calibrated probability's; the uncalibrated holdout ECE and ROC-AUC are logged
    beside them (``test_ece_uncalibrated``, ``test_roc_auc_uncalibrated``). The decision
    threshold is chosen by ``training.threshold`` on the calibrated out-of-fold probabilities;
    the holdout's F1, precision, recall, accuracy and confusion counts are measured at it, and
    its classification report is logged (text and JSON).

    Args:
        previous: :func:`build_features`' result.
        family: one of :data:`~churnops.config.MODEL_FAMILIES`.

    Returns:
        ``previous`` plus ``candidate``: the family, its run and model URI, CV and holdout
        metrics, ``threshold``, ``threshold_rule``, ``confusion`` (holdout counts at the threshold)
        and ``calibration`` (the map applied: ``isotonic``, ``sigmoid`` or ``none``).
    """
    import matplotlib.pyplot as plt
    import mlflow
    import pandas as pd

    from churnops.data import SPLIT_COLUMN, label_vector
    from churnops.modeling import (
        calibrated_model,
        calibrated_scores,
        choose_calibration,
        choose_threshold,
        classification_metrics,
        classification_report_at,
        diagnostic_figures,
        feature_importance,
        fit_family,
        model_signature,
        threshold_metrics,
    )

    with training_step(previous, f"train/{family}", **{"churnops.family": family}) as (run, config, run_dir):
        ds = config.dataset
        snapshot = pd.read_parquet(previous["snapshot"])
        train, test = snapshot[snapshot[SPLIT_COLUMN] == "train"], snapshot[snapshot[SPLIT_COLUMN] == "test"]
        X_train, X_test = train[ds.feature_columns], test[ds.feature_columns]
        y_train, y_test = label_vector(train, config), label_vector(test, config)
        result = fit_family(family, X_train, y_train, config)
        uncalibrated = result.model.predict_proba(X_test)[:, 1]
        calibration = choose_calibration(
            config.training.calibration, result.oof_labels, result.oof_scores, y_test, uncalibrated
        )
        model = calibrated_model(result.model, calibration.calibrator)
        proba, oof_scores = calibrated_scores(model, uncalibrated), calibrated_scores(model, result.oof_scores)
        rule = config.training.threshold
        threshold = choose_threshold(result.oof_labels, oof_scores, rule)
        test_metrics = classification_metrics(y_test, proba, threshold)
        at_threshold = threshold_metrics(y_test, proba, threshold)
        confusion = {k: at_threshold[k] for k in ("tn", "fp", "fn", "tp")}
        report_text, report = classification_report_at(
            y_test, proba, threshold, (f"not {ds.positive_label}", ds.positive_label)
        )

        mlflow.log_params(
            {
                "family": family,
                "cv_folds": config.training.cv_folds,
                "cv_rows": result.cv_rows,
                "threshold_rule": rule.label,
                "calibration": calibration.method,
                "calibration_setting": calibration.setting,
                **result.params,
            }
        )
        for fold, score in enumerate(result.cv_scores):
            mlflow.log_metric("cv_roc_auc", float(score), step=fold)
        mlflow.log_metrics(
            {
                "cv_roc_auc_mean": result.cv_roc_auc_mean,
                "cv_roc_auc_std": result.cv_roc_auc_std,
                "threshold": threshold,
                "cv_f1_at_threshold": threshold_metrics(result.oof_labels, oof_scores, threshold)["f1"],
                **{f"test_{k}": v for k, v in test_metrics.items()},
                **{
                    f"test_{measure}_{'uncalibrated' if method == 'none' else method}": value
                    for method, measured in calibration.holdout.items()
                    for measure, value in measured.items()
                },
                **{f"test_{k}": float(v) for k, v in confusion.items()},
            }
        )
        mlflow.set_tag("churnops.calibration_reason", calibration.reason)
        mlflow.log_dict(
            {
                "setting": calibration.setting,
                "method": calibration.method,
                "reason": calibration.reason,
                "holdout": calibration.holdout,
            },
            "calibration.json",
        )
        mlflow.log_text(f"threshold {threshold!r} ({rule.label})\n\n{report_text}", "classification_report.txt")
        mlflow.log_dict({"threshold": threshold, "threshold_rule": rule.label, **report}, "classification_report.json")
        importance = feature_importance(result.model)
        mlflow.log_text(importance.to_csv(header=["importance"]), "feature_importance.csv")
        for name, figure in diagnostic_figures(y_test, proba, importance, family, threshold, uncalibrated).items():
            mlflow.log_figure(figure, f"plots/{name}")
            plt.close(figure)
        example = X_train.dropna().head(5)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=model_signature(config, model.predict_proba(example)),
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
            "threshold": threshold,
            "threshold_rule": rule.label,
            "confusion": confusion,
            "calibration": calibration.method,
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
        write_text_atomically(path, table.to_csv(index=False, float_format="%.5f"))
        markdown = table.drop(columns=["run_id"]).to_markdown(index=False, floatfmt=".4f")
        client = MlflowClient()
        for target in (_active_run_id(), run.parent_run_id):
            client.log_artifact(target, str(path))
            client.log_text(target, f"{markdown}\n\n**Choice:** {reason}\n", "model_comparison.md")
            client.set_tag(target, "churnops.best_model", best["family"])
            client.set_tag(target, "churnops.choice_reason", reason)
            client.set_tag(target, "churnops.threshold_rule", best["threshold_rule"])
            client.set_tag(target, "churnops.calibration", best.get("calibration", "none"))
        for key, value in {
            "best_cv_roc_auc": best["cv_roc_auc_mean"],
            "best_test_roc_auc": best["test_metrics"]["roc_auc"],
            "best_test_ece": best["test_metrics"]["ece"],
            "threshold": best["threshold"],
            "best_test_precision": best["test_metrics"]["precision"],
            "best_test_recall": best["test_metrics"]["recall"],
            "best_test_f1": best["test_metrics"]["f1"],
        }.items():
            client.log_metric(run.parent_run_id, key, value)
        mlflow.log_metrics({"n_candidates": len(candidates), "best_cv_roc_auc": best["cv_roc_auc_mean"]})
        return {**lineage, "best": best, "reason": reason, "comparison": str(path)}


def register_chosen(chosen: dict[str, Any]) -> dict[str, Any]:
    """Register the chosen model once; make it ``@champion`` if there is none, else ``@challenger``.

    The SHA-256 of the model's artifacts is recorded with the version, as its
    ``churnops.artifact_sha256`` tag and in churnops' own record (:mod:`churnops.tracking.integrity`):
    every later load checks the files against it.

    Args:
        chosen: :func:`evaluate_candidates`' result.

    Returns:
        The run's summary (also written as ``summary.json``): the parent run, the chosen family
        and its scores, the model version and its aliases, and whether this call created the version.
    """
    import mlflow
    from mlflow import MlflowClient

    from churnops.tracking import (
        assign_training_alias,
        finish_parent_run,
        model_aliases,
        record_artifact_digest,
        register_version,
        threshold_tags,
    )

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
            **threshold_tags(best["threshold"], best["threshold_rule"]),
            "churnops.calibration": best.get("calibration", "none"),
        }
        version, created = register_version(best["model_uri"], best["run_id"], config.registry, tags)
        record_artifact_digest(config.registry, version)
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
            "threshold": best["threshold"],
            "threshold_rule": best["threshold_rule"],
            "calibration": best.get("calibration", "none"),
            "test_precision": best["test_metrics"]["precision"],
            "test_recall": best["test_metrics"]["recall"],
            "test_f1": best["test_metrics"]["f1"],
            "rows": chosen["rows_merged"],
            "model_name": config.registry.model_name,
            "model_version": version,
            "aliases": aliases,
            "created_version": created,
        }
        write_json(run_dir / "summary.json", summary)
    finish_parent_run(run.parent_run_id)
    return summary
