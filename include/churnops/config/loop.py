"""The loop's sections: training, daily monitoring and the retraining policy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from churnops.config.base import MODEL_FAMILIES, ModelFamily, Strict

Trigger = Literal["dataset_drift", "performance", "estimated_performance", "prediction_drift", "target_drift"]
"""A monitoring signal that may trigger retraining (``monitoring.triggers``)."""

TRIGGERS: tuple[Trigger, ...] = (
    "dataset_drift",
    "performance",
    "estimated_performance",
    "prediction_drift",
    "target_drift",
)


class ThresholdConfig(Strict):
    """How training chooses the decision threshold, on the training split's out-of-fold scores."""

    rule: Literal["max_f1", "cost"] = "max_f1"
    """``max_f1``: the threshold of the highest F1; ``cost``: of the lowest
    ``cost_false_negative`` × FN + ``cost_false_positive`` × FP."""
    cost_false_negative: float = Field(5.0, gt=0)
    """Cost of a churner the model misses (rule ``cost``)."""
    cost_false_positive: float = Field(1.0, gt=0)
    """Cost of a customer flagged who would have stayed (rule ``cost``)."""

    @property
    def label(self) -> str:
        """The rule as recorded on a version: ``max_f1`` or ``cost:fn=<cost>,fp=<cost>``."""
        if self.rule == "max_f1":
            return "max_f1"
        return f"cost:fn={self.cost_false_negative:g},fp={self.cost_false_positive:g}"


class TrainingConfig(Strict):
    families: list[ModelFamily] = list(MODEL_FAMILIES)
    cv_folds: int = Field(5, ge=2, le=20)
    seed: int = 42
    test_fraction: float = Field(0.2, gt=0, lt=0.9)
    """Share of ids in the holdout, chosen by a hash of the id (stable across machines)."""
    params: dict[ModelFamily, dict[str, Any]] = {}
    """Per-family estimator parameters overriding churnops' defaults."""
    cv_max_rows: int | None = Field(200_000, ge=1_000)
    """Big tables: cross-validation runs on a stratified, seeded sample of at most this many
    training rows (null: every row); the model itself is always fit on every training row.
    CV cost and memory stop growing with the table; at 200,000 rows the CV ROC-AUC's
    standard error is about 0.001."""
    forest_max_samples: int = Field(100_000, ge=100)
    """Big tables: a random forest draws at most this many rows for each tree (scikit-learn's
    ``max_samples``) unless its params set ``max_samples``, so its cost stops growing with the
    table; boosters (XGBoost ``hist``, LightGBM) and logistic regression scale as they are."""
    threshold: ThresholdConfig = ThresholdConfig()
    """The decision threshold's rule: recorded on the version, used for its holdout and monitored F1."""
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = "auto"
    """How the model's probabilities are calibrated, by a map fitted on the out-of-fold scores and
    logged inside the model: ``auto`` keeps the isotonic or sigmoid map of the lowest holdout ECE
    when it lowers the uncalibrated ECE and costs at most 0.002 of holdout ROC-AUC, else none;
    ``isotonic`` or ``sigmoid`` apply that map; ``none`` leaves the scores as the estimator gives them."""

    @field_validator("families")
    @classmethod
    def _unique(cls, families: list[str]) -> list[str]:
        if not families or len(set(families)) != len(families):
            raise ValueError("families must be a non-empty list without repeats")
        return families


class MonitoringConfig(Strict):
    """Thresholds for ``churn_monitoring``."""

    p_value: float = Field(0.05, gt=0, lt=1)
    """A feature drifts only when its test's p-value is below this ..."""
    min_effect_size: float = Field(0.1, ge=0)
    """... and its effect size (KS statistic; Cramér's V for categoricals) exceeds this."""
    drifted_feature_share: float = Field(0.3, ge=0, le=1)
    """Dataset drift when more than this share of features drift."""
    min_roc_auc: float = Field(0.75, ge=0, le=1)
    """Performance alarm when realized ROC-AUC on matured labels falls below this ..."""
    max_roc_auc_drop: float = Field(0.05, ge=0, le=1)
    """... or more than this below the champion's holdout ROC-AUC."""
    min_precision: float | None = Field(None, ge=0, le=1)
    """Performance alarm when realized precision at the scoring version's threshold falls below this
    (null: no alarm); likewise ``min_recall`` and ``min_f1``."""
    min_recall: float | None = Field(None, ge=0, le=1)
    min_f1: float | None = Field(None, ge=0, le=1)
    min_labels: int = Field(200, ge=1)
    """Realized performance is judged only with at least this many matured labels."""
    label_delay_days: int = Field(7, ge=0)
    """Labels of day D are considered matured from day D + label_delay_days."""
    label_window_days: int = Field(30, ge=1)
    """Trailing window of matured label days used for realized performance and target drift."""
    sample_size: int = Field(50_000, ge=100)
    """Rows per side the drift tests see (seeded sample; recorded in the report)."""
    chunk_rows: int = Field(250_000, ge=100)
    """Rows of the day's batch read, scored and written at a time, so scoring a day takes the
    same memory whatever its size."""
    shard_rows: int = Field(2_500_000, ge=100)
    """A day of more rows is split into shards of at most this many rows (whole chunks), scored
    by parallel mapped tasks of ``churn_monitoring`` whose parts one task merges. The result
    does not depend on the shard count."""
    history_days: int = Field(30, ge=1)
    """Days the monitoring history chart (``history.png``, beside each day's report) and
    ``churnops history`` cover: the monitored day and the days before it."""
    html_report: bool = True
    """Also write evidently's HTML drift report; the JSON report and the decision do not depend on it.
    Its evidently part costs about 4 s of CPU a day whatever the day's size (evidently's import,
    then its preset's plotly figures per column): ``churnops monitor`` spends it in a child
    process while the day is scored, so on an idle second core the report step waits for it
    little or not at all; the ``churn_monitoring`` report task computes it itself (the preset
    alone about 1.4 s when the worker has pre-imported evidently)."""
    seed: int = 0
    batch_folder: Literal["incoming", "serving"] = "incoming"
    """Where a day's batch is read: ``incoming/date=D/`` (files a producer drops) or
    ``serving/date=D/`` (the rows ``churnops serve`` answered that UTC day, kept with
    ``serving.log_requests`` on), so the loop monitors, and retrains on, what was actually served.
    A served day counts as arrived once it has ended and ``serving.log_flush_seconds`` (plus a
    few seconds) have passed, when every running server has written the rows it answered. Its
    rows may repeat a customer or have no id and its files (one per flush) may be shorter than
    ``validation.min_rows``; every other rule applies. A label is joined to the customer's first
    row served that day, in realized performance and retraining windows alike."""
    arrival_marker: str | None = None
    """A file (e.g. ``_SUCCESS``) its producer writes in ``incoming/date=D/`` once the day's batch
    is complete. Set, the day's files are neither listed nor judged before it exists: the
    ``churn_monitoring`` DAG's sensor waits for it and ``churnops monitor`` says the day has not
    arrived yet. None: a day's files count as complete as soon as they are there."""
    label_arrival_marker: str | None = None
    """The same for ``labels/date=D/``: until it exists, the day's labels count as not arrived
    (left out of performance and retraining windows, never judged)."""
    min_estimate_rows: int = Field(500, ge=1)
    """The label-free estimate of the day's performance (:mod:`churnops.monitoring.estimate`) is
    trusted only from this many scored rows ..."""
    max_estimate_ece: float = Field(0.05, ge=0, le=1)
    """... and when the scoring version's holdout expected calibration error (its
    ``churnops.test_ece`` tag) is at most this: the estimate assumes calibrated scores. A version
    without the tag is not trusted. An untrusted estimate is reported but never alarms."""
    max_estimated_roc_auc_drop: float | None = Field(0.05, ge=0, le=1)
    """Performance alarm, a week before labels can tell, when the trusted estimated ROC-AUC is more
    than this below the version's holdout ROC-AUC (null: never). On by default at the same 0.05
    as ``max_roc_auc_drop``: with calibrated scores the estimate moves only when the customer mix
    does, so a drop that size means the model separates today's customers markedly worse than
    its holdout, which the realized alarm would confirm only once labels mature; the trust rule
    keeps a miscalibrated version or a small day from alarming."""
    triggers: list[Trigger] = ["dataset_drift", "performance", "estimated_performance"]
    """The signals that trigger retraining when they fire: ``dataset_drift``, ``performance`` (the
    realized-performance alarm), ``estimated_performance`` (the label-free estimate's alarm),
    ``prediction_drift``, ``target_drift``. A signal that fires but is not listed is a note."""

    @field_validator("arrival_marker", "label_arrival_marker")
    @classmethod
    def _marker_is_not_data(cls, name: str | None) -> str | None:
        # The marker sits beside the data: a plain name that is never listed as a batch file.
        if name is not None and (
            name in {"", ".", ".."} or "/" in name or "\\" in name or name.lower().endswith((".csv", ".parquet", ".pq"))
        ):
            raise ValueError(f"{name!r} must be a plain file name not ending in .csv, .parquet or .pq")
        return name

    @field_validator("triggers")
    @classmethod
    def _no_repeats(cls, triggers: list[str]) -> list[str]:
        if len(set(triggers)) != len(triggers):
            raise ValueError("triggers must not repeat a signal")
        return triggers


class PolicyConfig(Strict):
    """Champion/challenger promotion rules for ``churn_retraining``."""

    min_gain: float = Field(0.01, ge=0)
    """Promote only when challenger ROC-AUC − champion ROC-AUC exceeds this (absolute)."""
    cooldown_days: int = Field(7, ge=0)
    """Days after a promotion (or rollback) during which retraining stops early (the Airflow
    Variable ``churnops_cooldown_days`` takes precedence)."""
    retraining_cooldown_days: int = Field(3, ge=0)
    """Days after a retraining attempt (a challenger trained, whatever the decision) during which
    retraining stops early: persistent drift with challengers that fail the gain rule trains at
    most once per this many days (0: no limit)."""
    bootstrap_samples: int = Field(1000, ge=0)
    require_significant_gain: bool = False
    """Also require the paired-bootstrap CI of the gain to lie above 0."""
    eval_window_days: int = Field(7, ge=1)
    """The most recent matured label days: the fresh window both models are scored on, never trained on."""
    train_window_days: int = Field(60, ge=0)
    """Matured labelled days before the evaluation window added to the original training data."""
