"""The platform's sections: the registry, tracking, the prediction service and orchestration."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from churnops.config.base import Strict


class RegistryConfig(Strict):
    model_name: str = "churn-predictor"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    previous_champion_alias: str = "previous_champion"
    allow_unverified_models: bool = False
    """Load a version that has no artifact digest recorded (one registered before churnops
    recorded digests), with a warning, instead of refusing it. Registered models are code run
    on load: keep this off unless every such version is known good (see docs/security.md)."""
    lock_timeout_seconds: float = Field(600.0, gt=0)
    """How long a promotion or rollback waits for the promotion lock before it fails (and is retried)."""


class ServingConfig(Strict):
    """``churnops serve``: the prediction service in front of ``@champion``."""

    poll_seconds: float = Field(30.0, gt=0)
    """How often the service asks the registry where ``@champion`` points, and swaps to a new version."""
    max_rows: int = Field(10_000, ge=1)
    """Rows one request may carry; more is refused with 413."""
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1)
    """The largest request body read (16 MiB: 10,000 Telco rows of JSON take ~5 MB); a longer one is
    refused with 413 before it is parsed, by its Content-Length or, sent in chunks, once it passes the limit."""
    risk_levels: list[str] = ["low", "medium", "high"]
    """The ``risk`` band names, from the lowest probability up: one more than ``risk_cut_points``."""
    risk_cut_points: list[float] = [0.3, 0.6]
    """Increasing probabilities in (0, 1) where the next band starts (a probability equal to a cut is above it)."""
    reasons_top_k: int = Field(3, ge=1)
    """Reasons per row: the raw features with the largest absolute contributions."""
    log_requests: bool = False
    """Write every predicted row to ``$CHURNOPS_HOME/serving/date=YYYY-MM-DD/`` (Parquet, as ``incoming/``)."""
    log_flush_rows: int = Field(10_000, ge=1)
    """Logged rows are written in one Parquet file once this many are buffered ..."""
    log_flush_seconds: float = Field(60.0, gt=0)
    """... or once the oldest buffered row is this old (and when the service stops)."""

    @model_validator(mode="after")
    def _check_bands(self) -> ServingConfig:
        cuts = self.risk_cut_points
        if len(self.risk_levels) != len(cuts) + 1:
            raise ValueError("risk_levels must name one band more than risk_cut_points has cuts")
        if any(not 0 < c < 1 for c in cuts) or any(b <= a for a, b in zip(cuts, cuts[1:], strict=False)):
            raise ValueError("risk_cut_points must increase strictly, each within (0, 1)")
        return self


class TrackingConfig(Strict):
    experiment_name: str | None = None
    """Defaults to ``churnops-<dataset.name>``."""


STEP_TIMEOUT_MINUTES: dict[str, float] = {
    # churn_training and churn_retraining (1,000,000 rows train in about 3 min, bench/RESULTS.md)
    "check_cooldown": 10,
    "start": 10,
    "validate": 60,
    "merge": 60,
    "add_recent_days": 60,
    "preprocess": 60,
    "features": 60,
    "model_families": 5,
    "train": 240,
    "evaluate": 30,
    "register": 30,
    "compare": 60,
    "decide": 5,
    "promote": 30,
    "reject": 30,
    # churn_monitoring (a 10,000,000-row day takes under 3 min, bench/RESULTS_MONITORING.md)
    "wait_for_batch": 10,
    "check_batch": 30,
    "plan_shards": 30,
    "score_shard": 120,
    "merge_shards": 60,
    "feature_drift": 60,
    "prediction_drift": 30,
    "wait_for_matured_days": 10,
    "performance": 120,
    "report": 30,
    "trigger_retraining": 10,
    "no_retraining": 5,
    # churn_rollback
    "plan": 5,
    "rollback": 30,
}
"""Each DAG task's ``execution_timeout`` in minutes, by task id: tens of times what the step takes on
the largest benchmarked tables, so only a hung step reaches it. ``orchestration.timeout_minutes``
overrides any of them."""


class AlertsConfig(Strict):
    """Where alerts go (the Airflow connection ``churnops_alerts`` says how they are sent)."""

    to: list[str] = []
    """Mail recipients when the connection is SMTP and its extra names no ``to``."""


class OrchestrationConfig(Strict):
    """How Airflow runs churnops' tasks.

    Read from the deployment's config (``$CHURNOPS_CONFIG``, else the bundled one) when the DAG
    files are parsed: a run's ``config_path`` Param does not change it.
    """

    timeout_minutes: dict[str, Annotated[float, Field(gt=0)]] = {}
    """Per task id, its ``execution_timeout`` in minutes, overriding :data:`STEP_TIMEOUT_MINUTES`: a
    task running longer is stopped and fails (then retried), so a hung step does not hold a
    worker slot for ever. A sensor's wait is bounded by its own ``timeout``; this bounds each poke."""
    default_timeout_minutes: float = Field(60, gt=0)
    """The ``execution_timeout`` of a task whose id neither mapping names."""
    alerts: AlertsConfig = AlertsConfig()
    """Alert recipients (read when an alert is sent, from the deployment's config like the rest of this section)."""

    @field_validator("timeout_minutes")
    @classmethod
    def _known_steps(cls, timeouts: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(timeouts) - set(STEP_TIMEOUT_MINUTES))
        if unknown:
            raise ValueError(f"unknown task ids {unknown}; known: {sorted(STEP_TIMEOUT_MINUTES)}")
        return timeouts

    def timeout_for(self, step: str) -> float:
        """The ``execution_timeout`` of task ``step``, in minutes.

        Args:
            step: the task id.

        Returns:
            The configured minutes, else :data:`STEP_TIMEOUT_MINUTES`' value, else the default.
        """
        return self.timeout_minutes.get(step, STEP_TIMEOUT_MINUTES.get(step, self.default_timeout_minutes))
