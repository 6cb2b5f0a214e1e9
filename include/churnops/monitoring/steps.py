"""The steps of daily monitoring, shared by the ``churn_monitoring`` DAG and ``churnops monitor``.

Every step is keyed by the monitored day (the run's logical date, given as a date or as the
``YYYY-MM-DD`` text a DAG has) and reads and writes only that day's partitions under
``$CHURNOPS_HOME``::

    incoming/date=D/*.parquet|csv     the day's batch (read only)
    labels/date=D/*.parquet|csv       outcomes of day D's customers (read only)
    predictions/date=D/predictions.parquet
    reports/date=D/*.json, drift_report.html, history.png (days D-N+1..D's reports drawn)
    work/monitoring/date=D/shard-*/   each shard's scores and drift parts (merged into the above)
    quarantine/monitoring/date=D/...  rejected batch files with reason.json

so a rerun or a backfill of a day gives the same result and never duplicates anything. The
batch steps (``check_batch``, ``plan_shards``, ``score_shard``, ``merge_shards``) live in
:mod:`~churnops.monitoring.intake` and :mod:`~churnops.monitoring.shards`; the steps here
measure drift and performance and write the day's report.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

from churnops.config import ChurnopsConfig
from churnops.data import label_vector, partition, write_json
from churnops.days import matured_days, parse_day
from churnops.monitoring.drift import drift_rule, drift_summary, feature_drift, prediction_drift, target_drift
from churnops.monitoring.estimate import day_estimate, estimate_errors
from churnops.monitoring.history import write_history
from churnops.monitoring.intake import check_batch
from churnops.monitoring.outcomes import matured_outcomes, realized_performance
from churnops.monitoring.page_worker import PageWorker
from churnops.monitoring.report import build_report, decide, log_report, write_page, write_report_json
from churnops.monitoring.sampling import CurrentSide, sample_rows
from churnops.monitoring.scoring import SCORE_COLUMN, load_model, positive_scores, reference_frame, shared_reads
from churnops.monitoring.shards import score_batch
from churnops.tracking import version_tags, version_threshold

__all__ = ["feature_drift_step", "performance_step", "prediction_drift_step", "report_step", "run_monitoring"]


def feature_drift_step(config: ChurnopsConfig, day: date | str, scored: dict[str, Any]) -> dict[str, Any]:
    """Per-feature drift of the day against the scoring model's own training data.

    The day's side (category and null counts of every row, the seeded KS sample) was gathered
    by the shards while they scored and merged by ``merge_shards``; the day is not read again.

    Args:
        config: the dataset's features and the monitoring settings.
        day: the day (a date or ``YYYY-MM-DD``).
        scored: ``merge_shards``' result.

    Returns:
        :func:`~churnops.monitoring.drift.drift_summary`'s verdict plus ``feature_drift``, the
        path of the per-feature results (written with the verdict and the ``thresholds`` of
        :func:`~churnops.monitoring.drift.drift_rule`, which the report page renders).
    """
    day = parse_day(day)
    ds = config.dataset
    reference = reference_frame(config, scored["model_version"])
    current = CurrentSide.load(Path(scored["drift_parts"]) / "current_side")
    rows = feature_drift(reference, current, ds.numeric_features, ds.categorical_features, config.monitoring)
    summary = drift_summary(rows, config.monitoring)
    record = {"features": rows, **summary, "thresholds": drift_rule(config.monitoring)}
    path = write_json(partition("reports", day) / "feature_drift.json", record)
    return {**summary, "feature_drift": str(path)}


def prediction_drift_step(config: ChurnopsConfig, day: date | str, scored: dict[str, Any]) -> dict[str, Any]:
    """KS between the model's scores on its training data (capped sample) and on the day.

    Args:
        config: the feature columns and the monitoring settings.
        day: the day (a date or ``YYYY-MM-DD``).
        scored: ``merge_shards``' result.

    Returns:
        :func:`~churnops.monitoring.drift.prediction_drift`'s result (also written to the day's reports).
    """
    import pandas as pd

    day = parse_day(day)
    reference = sample_rows(
        reference_frame(config, scored["model_version"]), config.monitoring.sample_size, config.monitoring.seed
    )
    reference_scores = positive_scores(load_model(config, scored["model_version"]), reference, config)
    current_scores = pd.read_parquet(scored["predictions"], columns=[SCORE_COLUMN])[SCORE_COLUMN].to_numpy()
    result = prediction_drift(reference_scores, current_scores, config.monitoring)
    write_json(partition("reports", day) / "prediction_drift.json", result)
    return result


def performance_step(config: ChurnopsConfig, day: date | str, scored: dict[str, Any]) -> dict[str, Any]:
    """Target drift, realized ROC-AUC and precision, recall and F1 at the scoring version's threshold
    (:func:`~churnops.tracking.version_threshold`) on the labels matured within the trailing window.

    Also the day's label-free estimate (:func:`~churnops.monitoring.estimate.day_estimate`) and,
    for each matured label day whose report holds an estimate, its error against that day's
    realized ROC-AUC (:func:`~churnops.monitoring.estimate.estimate_errors`).

    Args:
        config: the dataset and the monitoring settings.
        day: the day (a date or ``YYYY-MM-DD``).
        scored: ``merge_shards``' result.

    Returns:
        ``{"window", "label_days", "target_drift", "performance", "rejected_label_files",
        "labels_without_prediction", "estimate", "estimate_errors"}`` (also written to the day's reports).
    """
    day = parse_day(day)
    days = matured_days(config, day)
    outcomes = matured_outcomes(config, days)
    reference_labels = label_vector(reference_frame(config, scored["model_version"]), config)
    target = target_drift(reference_labels, outcomes["label"].to_numpy(), config.monitoring)
    tags = version_tags(config.registry, scored["model_version"])
    holdout = tags.get("churnops.test_roc_auc")
    performance = realized_performance(
        outcomes["label"].to_numpy(),
        outcomes[SCORE_COLUMN].to_numpy(),
        float(holdout) if holdout else None,
        config.monitoring,
        version_threshold(tags),
    )
    result = {
        "window": [days[0].isoformat(), days[-1].isoformat()],
        "label_days": sorted(str(d) for d in outcomes["label_date"].unique()),
        "target_drift": target,
        "performance": performance,
        "rejected_label_files": outcomes.attrs["rejected_label_files"],
        "labels_without_prediction": outcomes.attrs["labels_without_prediction"],
        "estimate": day_estimate(config, day, scored, tags),
        "estimate_errors": estimate_errors(
            outcomes["label"].to_numpy(), outcomes[SCORE_COLUMN].to_numpy(), outcomes["label_date"], config.monitoring
        ),
    }
    write_json(partition("reports", day) / "performance.json", result)
    return result


def report_step(
    config: ChurnopsConfig,
    day: date | str,
    scored: dict[str, Any],
    features: dict[str, Any],
    prediction: dict[str, Any],
    performance: dict[str, Any],
    context: dict[str, str] | None = None,
    page: PageWorker | None = None,
) -> dict[str, Any]:
    """Decide, write the day's report (JSON + evidently HTML unless switched off) and its history chart,
    and log them to the day's MLflow run.

    Args:
        config: the dataset and the monitoring settings.
        day: the day (a date or ``YYYY-MM-DD``).
        scored: ``merge_shards``' result.
        features: :func:`feature_drift_step`'s result.
        prediction: :func:`prediction_drift_step`'s result.
        performance: :func:`performance_step`'s result.
        context: more tags for the day's MLflow run.
        page: a worker already given the page's samples, whose evidently view the page shows
            (:func:`run_monitoring`); None: the view is computed here.

    Returns:
        The report without its details, with the paths written (``report``, ``html``, ``history``:
        the chart of the last ``monitoring.history_days`` days) and the ``mlflow_run_id``.
    """
    day = parse_day(day)
    decision = decide(
        features,
        prediction,
        performance["performance"],
        performance.get("estimate"),
        target=performance["target_drift"],
        triggers=config.monitoring.triggers,
    )
    report = build_report(day, scored, features, prediction, performance, decision)
    json_path = write_report_json(day, report)
    # The chart (which reads the day's report) first: meanwhile a page worker finishes its view.
    _, chart = write_history(config, day)
    html_path = write_page(config, day, report, scored, page)
    run_id = log_report(config, day, report, json_path, html_path, context, chart)
    summary = {k: v for k, v in report.items() if k != "details"}
    return {
        **summary,
        "report": str(json_path),
        "html": html_path and str(html_path),
        "history": str(chart),
        "mlflow_run_id": run_id,
    }


def run_monitoring(config: ChurnopsConfig, day: date | str) -> dict[str, Any]:
    """All monitoring steps for one day, in DAG order: what ``churnops monitor`` runs.

    The shards run one after another; the steps share the reference split and the model
    within the call; run as separate Airflow tasks they read them themselves. Evidently's part
    of the page depends only on the page's two samples, so on a machine of two cores or more a
    forked child (:class:`~churnops.monitoring.page_worker.PageWorker`) imports evidently while
    the day is scored and computes that part while the drift and performance steps run. That
    overlap pays when a core is idle; on a machine already busy it only moves the work.

    Args:
        config: the dataset and the monitoring settings.
        day: the day (a date or ``YYYY-MM-DD``).

    Returns:
        :func:`report_step`'s result.
    """
    day = parse_day(day)
    with shared_reads(), ExitStack() as stack:
        # On one core the child could only take turns with the scoring.
        parallel = config.monitoring.html_report and len(os.sched_getaffinity(0)) > 1
        page = stack.enter_context(PageWorker(config.monitoring)) if parallel else None
        scored = score_batch(config, day, check_batch(config, day))
        if page is not None:
            _submit_page(config, scored, page)
        features = feature_drift_step(config, day, scored)
        prediction = prediction_drift_step(config, day, scored)
        performance = performance_step(config, day, scored)
        return report_step(config, day, scored, features, prediction, performance, {"churnops.dag_id": "cli"}, page)


def _submit_page(config: ChurnopsConfig, scored: dict[str, Any], page: PageWorker) -> None:
    # The samples write_page's page would be drawn from: the scoring version's training split
    # and the shards' page sample.
    import pandas as pd

    ds = config.dataset
    current = pd.read_parquet(Path(scored["drift_parts"]) / "page_sample.parquet")
    page.submit(reference_frame(config, scored["model_version"]), current, ds.numeric_features, ds.categorical_features)
