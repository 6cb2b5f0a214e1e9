"""The day's verdict and its record: the decision, the report (JSON + HTML page) and its MLflow run.

:func:`decide` turns the drift and performance results into ``retrain`` or ``none`` by the
enabled triggers (``monitoring.triggers``);
:func:`build_report` assembles the report, :func:`write_report_json` and :func:`write_page` write it (the page for
people to browse, :mod:`~churnops.monitoring.report_page`: churnops' verdicts first, rendered
from ``feature_drift.json``, evidently's plots below), :func:`log_report` records it on the
day's one MLflow run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnops.config import ChurnopsConfig, MonitoringConfig
from churnops.data import partition, write_json
from churnops.monitoring.history import history_link
from churnops.monitoring.report_page import drift_report_html
from churnops.monitoring.scoring import reference_frame
from churnops.tracking import announce_run, ensure_experiment

if TYPE_CHECKING:
    from churnops.monitoring.page_worker import PageWorker

__all__ = [
    "ESTIMATE_KEYS",
    "build_report",
    "decide",
    "log_report",
    "monitoring_run",
    "write_page",
    "write_report_json",
]


ESTIMATE_KEYS = ("estimated_roc_auc", "estimated_roc_auc_low", "estimated_roc_auc_high")
"""The label-free estimate's figures a report carries at its top level (None without an estimate);
``estimate_trusted`` goes with them."""


def decide(
    summary: dict,
    prediction: dict,
    performance: dict,
    estimate: dict | None = None,
    *,
    target: dict | None = None,
    triggers: Sequence[str] | None = None,
) -> dict:
    """Whether monitoring asks for retraining, and which signals triggered it.

    Five signals may fire: ``dataset_drift`` (more than the dataset-drift share of features
    drifted), ``performance`` (the realized-performance alarm), ``estimated_performance`` (the
    label-free estimate's alarm), ``prediction_drift`` and ``target_drift``. Only those listed
    in ``triggers`` (``monitoring.triggers``) retrain; one that fires but is not listed is a
    note. By default prediction drift does not retrain (the model may simply be seeing a
    different mix of the customers it already handles well), nor target drift (the churn rate
    moves with the season; the performance alarm says whether the model suffers). A few drifted
    features below the dataset-drift share are a note too. Every reason and note of a signal
    starts with its name.

    Args:
        summary: :func:`drift_summary` output.
        prediction: :func:`prediction_drift` output.
        performance: :func:`realized_performance` output (``alarm``, ``reasons``).
        estimate: :func:`~churnops.monitoring.estimate.estimated_performance` output (its ``alarm``:
            a trusted estimated drop; its ``reasons``), or None without one.
        target: :func:`target_drift` output (its ``drifted`` flag), or None without one.
        triggers: the signals that retrain (None: ``monitoring.triggers``' default).

    Returns:
        ``{"decision": "retrain" | "none", "triggers": [enabled signals that fired],
        "reasons": [what triggered retraining], "notes": [non-triggering observations]}``.
    """
    enabled = set(_DEFAULT_TRIGGERS if triggers is None else triggers)
    fired: list[str] = []
    reasons: list[str] = []
    notes: list[str] = []

    def signal(name: str, texts: list[str]) -> None:
        label = name.replace("_", " ")
        if name in enabled:
            fired.append(name)
            reasons.extend(f"{label}: {text}" for text in texts)
        else:
            notes.extend(f"{label}: {text} (not a retraining trigger: not in monitoring.triggers)" for text in texts)

    drifted = summary["drifted_features"]
    if drifted:
        text = (
            f"{len(drifted)} of {summary['n_features']} features drifted"
            f" (share {summary['drift_share']:.3f}): {', '.join(drifted)}"
        )
        if summary["dataset_drift"]:
            signal("dataset_drift", [text])
        else:
            notes.append(f"{text}; below the dataset-drift share")
    # An alarm's reasons explain it; without an alarm they say why performance could not be judged.
    if performance["alarm"]:
        signal("performance", performance["reasons"])
    else:
        notes.extend(performance["reasons"])
    if estimate is not None:
        if estimate.get("alarm"):
            signal("estimated_performance", list(estimate.get("reasons") or ["alarm"]))
        else:
            notes.extend(estimate.get("reasons") or [])
    if prediction.get("drifted"):
        signal("prediction_drift", [f"KS {prediction['statistic']:.3f}, p-value {prediction['p_value']:.3g}"])
    if target is not None and target.get("drifted"):
        signal(
            "target_drift",
            [f"chi-square p-value {target['p_value']:.3g}, Cramér's V {target['effect_size']:.3f}"],
        )
    return {"decision": "retrain" if fired else "none", "triggers": fired, "reasons": reasons, "notes": notes}


_DEFAULT_TRIGGERS: tuple[str, ...] = tuple(MonitoringConfig.model_fields["triggers"].default)


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
        version's ``threshold``: None until labels are judged; the estimated ROC-AUC with its band
        and whether it is trusted, :data:`ESTIMATE_KEYS` and ``estimate_trusted``), the decision
        with its reasons and notes (a rejected label file is a note) and ``details`` (the path of
        ``feature_drift.json``, the prediction and performance results).
    """
    realized = performance["performance"]
    estimate = performance.get("estimate") or {}
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
        "n_features": features.get("n_features"),
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
        **{key: estimate.get(key) for key in ESTIMATE_KEYS},
        "estimate_trusted": estimate.get("trusted"),
        "decision": decision["decision"],
        "triggers": decision.get("triggers", []),
        "reasons": decision["reasons"],
        "notes": [*decision.get("notes", []), *rejected_labels],
        "details": {"features": features["feature_drift"], "prediction": prediction, "performance": performance},
    }


def write_report_json(day: date, report: dict[str, Any]) -> Path:
    """Write the day's ``drift_report.json``.

    Args:
        day: the monitored day (its ``reports`` partition).
        report: :func:`build_report`'s report.

    Returns:
        Its path.
    """
    return write_json(partition("reports", day) / "drift_report.json", report)


def write_page(
    config: ChurnopsConfig,
    day: date,
    report: dict[str, Any],
    scored: dict[str, Any],
    page: PageWorker | None = None,
) -> Path | None:
    """Write the day's HTML page ``drift_report.html``, unless ``monitoring.html_report`` is off.

    The page shows churnops' verdicts as ``feature_drift.json`` (named by the report's details)
    records them, then evidently's view of the scoring version's training split against the
    shards' sample of the day.
    A rerun with the page switched off removes a page an earlier run left.

    Args:
        config: the dataset's features and the monitoring settings.
        day: the monitored day (its ``reports`` partition).
        report: :func:`build_report`'s report.
        scored: ``merge_shards``' result (the model version and the drift parts).
        page: the worker given the page's samples (:func:`~churnops.monitoring.steps.run_monitoring`),
            whose evidently view the page shows; None: the view is computed here.

    Returns:
        The HTML path (None when switched off).
    """
    html_path = partition("reports", day) / "drift_report.html"
    if not config.monitoring.html_report:
        html_path.unlink(missing_ok=True)
        return None
    current = pd.read_parquet(Path(scored["drift_parts"]) / "page_sample.parquet")  # the shards' sample
    # The page renders the verdicts from the file they were written to, so it shows what the JSON says.
    verdicts = json.loads(Path(report["details"]["features"]).read_text(encoding="utf-8"))
    return drift_report_html(
        reference_frame(config, scored["model_version"]),
        current,
        html_path,
        verdicts,
        report,
        config.monitoring,
        header=history_link(config.monitoring.history_days),  # history.png, drawn beside it by report_step
        computed=None if page is None else page.result,
    )


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
    from mlflow.entities import Metric, RunTag

    run_id = monitoring_run(config, day)
    client = MlflowClient()
    metrics = {
        key: float(report[key])
        for key in ("rows", "drift_share", "dataset_drift", "prediction_drift", "target_drift", "n_labels")
    }
    metrics["retrain"] = float(report["decision"] == "retrain")
    estimate = ((report.get("details") or {}).get("performance") or {}).get("estimate") or {}
    for key in ("trusted", "estimated_precision", "estimated_recall", "estimated_f1"):
        if estimate.get(key) is not None:
            metrics[key if key.startswith("estimated") else f"estimate_{key}"] = float(estimate[key])
    for key in ("realized_roc_auc", "threshold", "precision", "recall", "f1", *ESTIMATE_KEYS):
        if report.get(key) is not None:
            metrics[key] = float(report[key])
    tags = {
        "churnops.model_version": report["model_version"],
        "churnops.decision": report["decision"],
        "churnops.triggers": ",".join(report.get("triggers", [])),
        "churnops.reasons": "; ".join(report["reasons"])[:4000],
        **(context or {}),
    }
    # One request (one store transaction) for every metric and tag, not one each.
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        tags=[RunTag(key, str(value)) for key, value in tags.items()],
    )
    client.log_artifact(run_id, str(json_path))
    for path in (html_path, chart):
        if path is not None:
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return run_id
