"""The day's verdict and its record: the decision, the report (JSON + HTML page) and its MLflow run.

:func:`decide` turns the drift and performance results into ``retrain`` or ``none``;
:func:`build_report` assembles the report, :func:`write_report` writes it (and the Evidently
page for people to browse: its numbers are illustrative, decisions use only churnops' own
statistics), :func:`log_report` records it on the day's one MLflow run.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnops.config import ChurnopsConfig
from churnops.data import partition, write_json, write_text_atomically
from churnops.features import MISSING
from churnops.monitoring.history import link_history_chart
from churnops.monitoring.sampling import as_numeric, capped_pair, category_label
from churnops.monitoring.scoring import reference_frame
from churnops.tracking import announce_run, ensure_experiment

__all__ = ["build_report", "decide", "drift_report_html", "log_report", "monitoring_run", "write_report"]


def decide(summary: dict, prediction: dict, performance: dict) -> dict:
    """Whether monitoring asks for retraining.

    Dataset drift or a performance alarm triggers retraining. Prediction drift does not on
    its own (the model may simply be seeing a different mix of the customers it already
    handles well), nor do a few drifted features below the dataset-drift share: both are
    recorded as notes, for people to watch.

    Args:
        summary: :func:`drift_summary` output.
        prediction: :func:`prediction_drift` output.
        performance: :func:`realized_performance` output.

    Returns:
        ``{"decision": "retrain" | "none", "reasons": [what triggered retraining],
        "notes": [non-triggering observations]}``.
    """
    reasons: list[str] = []
    notes: list[str] = []
    drifted = summary["drifted_features"]
    if drifted:
        text = (
            f"{len(drifted)} of {summary['n_features']} features drifted"
            f" (share {summary['drift_share']:.3f}): {', '.join(drifted)}"
        )
        if summary["dataset_drift"]:
            reasons.append(f"dataset drift: {text}")
        else:
            notes.append(f"{text}; below the dataset-drift share")
    if prediction.get("drifted"):
        notes.append(
            f"prediction drift: KS {prediction['statistic']:.3f}, p-value {prediction['p_value']:.3g}"
            " (not a retraining trigger on its own)"
        )
    # realized_performance's reasons explain an alarm, or why performance could not be judged.
    (reasons if performance["alarm"] else notes).extend(performance["reasons"])
    return {
        "decision": "retrain" if summary["dataset_drift"] or performance["alarm"] else "none",
        "reasons": reasons,
        "notes": notes,
    }


def drift_report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    path: Path,
    sample_size: int,
    seed: int,
) -> Path:
    """Write an Evidently (0.7) data-drift report comparing capped samples of both sides.

    The samples are drawn as in :func:`feature_drift` (same ``sample_size`` and ``seed`` give
    the same rows). Numeric columns use Evidently's KS test, hence the same p-values as
    churnops; categoricals use Jensen–Shannon distance, because Evidently's ``chisquare`` is a
    goodness-of-fit test that divides by zero on a category new in the current data. Evidently
    judges drift by its own rules (p-value or distance alone, dataset drift above half the
    columns); a banner at the top of the page says that churnops' decisions use its own statistics.

    Args:
        reference: reference rows.
        current: current rows.
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        path: the HTML file to write (parent folders are created).
        sample_size: rows per side at most.
        seed: seed of the reference sample (current: ``seed + 1``).

    Returns:
        ``path``. When a side has no rows, a short page saying so is written instead, since
        Evidently refuses empty data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(numeric) + list(categorical)
    ref, cur = capped_pair(reference, current, sample_size, seed, columns)
    ref, cur = _evidently_frame(ref, numeric, categorical), _evidently_frame(cur, numeric, categorical)

    if ref.empty or cur.empty:
        body = (
            f"<p>No drift report: the reference has {len(ref)} rows and the current data {len(cur)} rows.</p>"
            f"<p>Features: {html.escape(', '.join(columns))}</p>"
        )
        write_text_atomically(
            path,
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>churnops drift</title></head>"
            f"<body>{body}</body></html>",
        )
        return path

    # Evidently raises on a numeric column without any value on one side; such a column is
    # listed in the banner instead (churnops' own test reports it with p-value 1).
    empty = [c for c in numeric if ref[c].isna().all() or cur[c].isna().all()]
    kept_numeric = [c for c in numeric if c not in empty]

    # Importing evidently takes seconds and pulls its UI stack (which emits deprecation warnings).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=kept_numeric, categorical_columns=list(categorical))
    kept = kept_numeric + list(categorical)
    report = Report([DataDriftPreset(columns=kept, num_method="ks", cat_method="jensenshannon")])
    snapshot = report.run(
        Dataset.from_pandas(cur[kept], data_definition=definition),
        Dataset.from_pandas(ref[kept], data_definition=definition),
    )
    # Snapshot.save_html silently writes nothing when given a Path (it only handles str),
    # so the page is rendered and written here.
    page = snapshot.get_html_str(as_iframe=False)
    write_text_atomically(path, _with_banner(page, len(ref), len(cur), empty))
    return path


def _evidently_frame(frame: pd.DataFrame, numeric: Iterable[str], categorical: Iterable[str]) -> pd.DataFrame:
    # Give Evidently the values churnops tests: parsed numbers, and categories as text with
    # MISSING for nulls (Evidently would otherwise drop missing categoricals).
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[column] = as_numeric(frame[column])
    for column in categorical:
        # Normalise the distinct values, not every row; code -1 (null) picks the trailing MISSING.
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        labels = np.array([category_label(value) for value in uniques] + [MISSING], dtype=object)
        out[column] = labels[codes]
    return out.reset_index(drop=True)


def _with_banner(page: str, n_reference: int, n_current: int, empty: list[str]) -> str:
    text = (
        f"churnops drift report on seeded samples of {n_reference} reference and {n_current} current rows. "
        "Evidently's verdicts below are illustrative: churnops decides from its own tests "
        "(KS / chi-square contingency with p-value and effect-size thresholds)."
    )
    if empty:
        text += f" Not shown (no value on one side): {', '.join(empty)}."
    banner = (
        f'<div style="padding:8px 16px;background:#fff3cd;font-family:sans-serif;font-size:14px">'
        f"{html.escape(text)}</div>"
    )
    head, sep, rest = page.partition("<body>")
    if not sep:
        return banner + page
    return head + sep + banner + rest


def monitoring_run(config: ChurnopsConfig, day: date) -> str:
    """The one MLflow run of a monitored day, created once and reused by reruns.

    Args:
        config: names the monitoring experiment (``<experiment>-monitoring``).
        day: the monitored day.

    Returns:
        The run's id.
    """
    from mlflow import MlflowClient

    experiment_id = ensure_experiment(f"{config.experiment_name}-monitoring")
    client = MlflowClient()
    found = client.search_runs([experiment_id], f"tags.`churnops.monitoring_date` = '{day.isoformat()}'", max_results=1)
    run_id = (
        found[0].info.run_id
        if found
        else client.create_run(
            experiment_id, run_name=f"monitoring {day}", tags={"churnops.monitoring_date": day.isoformat()}
        ).info.run_id
    )
    announce_run(experiment_id, run_id)
    return run_id


def build_report(
    day: date,
    scored: dict[str, Any],
    features: dict[str, Any],
    prediction: dict[str, Any],
    performance: dict[str, Any],
    decision: dict[str, Any],
) -> dict[str, Any]:
    """The day's report from the steps' results and :func:`decide`'s decision (nothing is read or written).

    Args:
        day: the monitored day.
        scored: ``merge_shards``' result (model version, rows, shards).
        features: ``feature_drift_step``'s result.
        prediction: ``prediction_drift_step``'s result.
        performance: ``performance_step``'s result.
        decision: :func:`decide`'s result.

    Returns:
        The report: the headline figures (realized ROC-AUC, and precision, recall and F1 at the
        version's ``threshold``: None until labels are judged), the decision with its reasons and notes (a rejected
        label file is a note) and ``details`` (the path of ``feature_drift.json``, the prediction
        and performance results).
    """
    realized = performance["performance"]
    rejected_labels = (
        f"label file {Path(r['file']).name} of {Path(r['file']).parent.name} rejected (quarantined): "
        f"{r['findings'][0]['rule']}: {r['findings'][0]['message']}"
        for r in performance.get("rejected_label_files", [])
    )
    return {
        "date": day.isoformat(),
        "model_version": scored["model_version"],
        "rows": scored["rows"],
        "shards": scored.get("shards", 1),
        "drifted_features": features["drifted_features"],
        "drift_share": features["drift_share"],
        "dataset_drift": features["dataset_drift"],
        "prediction_drift": prediction["drifted"],
        "target_drift": performance["target_drift"]["drifted"],
        "realized_roc_auc": realized["realized_roc_auc"],
        "threshold": realized["threshold"],
        "precision": realized["precision"],
        "recall": realized["recall"],
        "f1": realized["f1"],
        "n_labels": realized["n_labels"],
        "decision": decision["decision"],
        "reasons": decision["reasons"],
        "notes": [*decision.get("notes", []), *rejected_labels],
        "details": {"features": features["feature_drift"], "prediction": prediction, "performance": performance},
    }


def write_report(
    config: ChurnopsConfig, day: date, report: dict[str, Any], scored: dict[str, Any]
) -> tuple[Path, Path | None]:
    """Write ``drift_report.json`` and, unless ``monitoring.html_report`` is off, the HTML page.

    The page compares the scoring version's training split with the shards' sample of the day.
    A rerun with the page switched off removes a page an earlier run left.

    Args:
        config: the dataset's features and the monitoring settings.
        day: the monitored day (its ``reports`` partition).
        report: :func:`build_report`'s report.
        scored: ``merge_shards``' result (the model version and the drift parts).

    Returns:
        The JSON path and the HTML path (None when switched off).
    """

    folder = partition("reports", day)
    json_path = write_json(folder / "drift_report.json", report)
    html_path = folder / "drift_report.html"
    if not config.monitoring.html_report:
        html_path.unlink(missing_ok=True)
        return json_path, None
    current = pd.read_parquet(Path(scored["drift_parts"]) / "page_sample.parquet")  # the shards' sample
    drift_report_html(
        reference_frame(config, scored["model_version"]),
        current,
        config.dataset.numeric_features,
        config.dataset.categorical_features,
        html_path,
        config.monitoring.sample_size,
        config.monitoring.seed,
    )
    link_history_chart(html_path, config.monitoring.history_days)  # history.png, written beside it by report_step
    return json_path, html_path


def log_report(
    config: ChurnopsConfig,
    day: date,
    report: dict[str, Any],
    json_path: Path,
    html_path: Path | None,
    context: dict[str, str] | None = None,
    chart: Path | None = None,
) -> str:
    """Record the report on the day's MLflow run (metrics, decision tags, the files) and finish it.

    Args:
        config: names the monitoring experiment.
        day: the monitored day.
        report: :func:`build_report`'s report.
        json_path: the written report.
        html_path: the written page, or None.
        context: more tags for the run (e.g. the DAG's id and run id).
        chart: the written history chart, or None.

    Returns:
        The run's id.
    """
    from mlflow import MlflowClient

    run_id = monitoring_run(config, day)
    client = MlflowClient()
    metrics = {
        key: float(report[key])
        for key in ("rows", "drift_share", "dataset_drift", "prediction_drift", "target_drift", "n_labels")
    }
    metrics["retrain"] = float(report["decision"] == "retrain")
    for key in ("realized_roc_auc", "threshold", "precision", "recall", "f1"):
        if report.get(key) is not None:
            metrics[key] = float(report[key])
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, step=0)
    for key, value in {
        "churnops.model_version": report["model_version"],
        "churnops.decision": report["decision"],
        "churnops.reasons": "; ".join(report["reasons"])[:4000],
        **(context or {}),
    }.items():
        client.set_tag(run_id, key, value)
    client.log_artifact(run_id, str(json_path))
    for path in (html_path, chart):
        if path is not None:
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return run_id
