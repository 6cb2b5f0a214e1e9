"""Daily monitoring: score the day with @champion, measure drift and realized performance, decide.

- :mod:`~churnops.monitoring.intake`: the day's batch and label files, checked and quarantined.
- :mod:`~churnops.monitoring.verdicts`: what was read of a file, and the verdict kept for exactly that.
- :mod:`~churnops.monitoring.scoring`: the @champion version, loading it and its scores
  (shared with retraining).
- :mod:`~churnops.monitoring.shards`: scoring a day in shards, each read once.
- :mod:`~churnops.monitoring.sampling`: how the two sides of a drift test are drawn and gathered.
- :mod:`~churnops.monitoring.drift`: the feature, prediction and target drift tests.
- :mod:`~churnops.monitoring.outcomes`: matured labels and the realized performance.
- :mod:`~churnops.monitoring.estimate`: the performance estimated from the scores alone, before labels.
- :mod:`~churnops.monitoring.report`: the decision, the report and its MLflow run.
- :mod:`~churnops.monitoring.report_page`: the day's drift page (churnops' verdicts, then evidently's view).
- :mod:`~churnops.monitoring.page_worker`: the page's evidently view computed in a child process beside the steps.
- :mod:`~churnops.monitoring.history`: the last N days' reports as a table and a chart
  (drawn by :mod:`~churnops.monitoring.history_chart`).
- :mod:`~churnops.monitoring.steps`: the steps the DAG and ``churnops monitor`` run.
"""

from churnops.monitoring.drift import (
    categorical_drift,
    drift_rule,
    drift_summary,
    feature_drift,
    numeric_drift,
    prediction_drift,
    target_drift,
)
from churnops.monitoring.estimate import ScoreSummary, estimate_errors, estimated_performance, read_score_summary
from churnops.monitoring.history import (
    HistoryDay,
    champion_moves,
    format_history,
    last_monitored_day,
    logged_champion_moves,
    read_history,
    write_history,
)
from churnops.monitoring.intake import (
    BatchNotArrivedError,
    MissingBatchError,
    accepted_files,
    arrived,
    batch_files,
    check_batch,
    day_folder,
    read_accepted,
    read_files,
    served_day_complete_at,
)
from churnops.monitoring.outcomes import matured_outcomes, realized_performance
from churnops.monitoring.page_worker import PageWorker
from churnops.monitoring.report import build_report, decide, log_report, write_page, write_report_json
from churnops.monitoring.report_page import drift_report_html
from churnops.monitoring.sampling import CurrentSide, current_side, sample_rows
from churnops.monitoring.scoring import (
    SCORE_COLUMN,
    VERSION_COLUMN,
    NoChampionError,
    champion_version,
    load_model,
    positive_scores,
    reference_frame,
    shared_reads,
)
from churnops.monitoring.shards import merge_shards, plan_shards, score_batch, score_shard
from churnops.monitoring.steps import (
    feature_drift_step,
    performance_step,
    prediction_drift_step,
    report_step,
    run_monitoring,
)
from churnops.monitoring.verdicts import FileChangedError, FileChangingError

__all__ = [
    "SCORE_COLUMN",
    "VERSION_COLUMN",
    "BatchNotArrivedError",
    "CurrentSide",
    "FileChangedError",
    "FileChangingError",
    "HistoryDay",
    "MissingBatchError",
    "NoChampionError",
    "PageWorker",
    "ScoreSummary",
    "accepted_files",
    "arrived",
    "batch_files",
    "build_report",
    "categorical_drift",
    "champion_moves",
    "champion_version",
    "check_batch",
    "day_folder",
    "current_side",
    "decide",
    "drift_report_html",
    "drift_rule",
    "drift_summary",
    "estimate_errors",
    "estimated_performance",
    "feature_drift",
    "feature_drift_step",
    "format_history",
    "logged_champion_moves",
    "last_monitored_day",
    "load_model",
    "log_report",
    "matured_outcomes",
    "merge_shards",
    "numeric_drift",
    "performance_step",
    "plan_shards",
    "positive_scores",
    "prediction_drift",
    "prediction_drift_step",
    "read_accepted",
    "read_files",
    "read_history",
    "read_score_summary",
    "realized_performance",
    "reference_frame",
    "report_step",
    "run_monitoring",
    "sample_rows",
    "served_day_complete_at",
    "score_batch",
    "score_shard",
    "shared_reads",
    "target_drift",
    "write_history",
    "write_page",
    "write_report_json",
]
