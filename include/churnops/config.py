"""Typed configuration: the one file that makes churnops dataset-agnostic.

Everything dataset-specific (sources, columns, target, thresholds) lives in a YAML
file loaded into :class:`ChurnopsConfig`. Every section but ``dataset`` has
defaults. Unknown keys are rejected so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from churnops.errors import ChurnopsInputError

__all__ = [
    "PACKAGE_DIR",
    "AlertsConfig",
    "ChurnopsConfig",
    "ConfigError",
    "DEFAULT_CONFIG_PATH",
    "MODEL_FAMILIES",
    "OrchestrationConfig",
    "STEP_TIMEOUT_MINUTES",
    "ThresholdConfig",
    "churnops_home",
    "load_config",
    "load_orchestration_config",
    "resolve_config_path",
]

PACKAGE_DIR = Path(__file__).resolve().parent
"""The ``churnops`` package folder: shipped in every logged model's ``code_paths``."""
DEFAULT_CONFIG_PATH = PACKAGE_DIR.parent / "config" / "telco.yaml"
ModelFamily = Literal["logistic_regression", "random_forest", "xgboost", "lightgbm"]
MODEL_FAMILIES: tuple[ModelFamily, ...] = ("logistic_regression", "random_forest", "xgboost", "lightgbm")


class ConfigError(ChurnopsInputError):
    """The configuration file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """One raw input table, joined to the others on ``dataset.id_column``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: Path
    """CSV or Parquet file; relative paths resolve against the config file's folder. It must be a
    regular file: a symbolic link, FIFO or device there is refused (folders on the way may be links)."""
    format: Literal["csv", "parquet"] | None = None
    """Defaults to the file extension."""
    columns: list[str] | None = None
    """Columns this source must provide (besides the id). Lets validation name the source."""

    @property
    def file_format(self) -> str:
        if self.format:
            return self.format
        return "parquet" if self.path.suffix.lower() in {".parquet", ".pq"} else "csv"


class DatasetConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    id_column: str
    target: str
    positive_label: str
    """Value of ``target`` meaning the positive class; compared after casting both to str."""
    negative_label: str | None = None
    """The other class; when omitted, any single other value is accepted."""
    sources: list[Source] = Field(min_length=1)
    numeric_features: list[str] = []
    categorical_features: list[str] = []

    @field_validator("positive_label", "negative_label", mode="before")
    @classmethod
    def _as_str(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @model_validator(mode="after")
    def _check_columns(self) -> DatasetConfig:
        features = self.numeric_features + self.categorical_features
        if not features:
            raise ValueError("declare at least one numeric or categorical feature")
        dupes = sorted({c for c in features if features.count(c) > 1})
        if dupes:
            raise ValueError(f"features declared twice: {dupes}")
        for special in (self.id_column, self.target):
            if special in features:
                raise ValueError(f"{special!r} cannot be both a feature and the id/target")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        return self

    @property
    def feature_columns(self) -> list[str]:
        return self.numeric_features + self.categorical_features


class Range(_Strict):
    min: float | None = None
    max: float | None = None


class ValidationConfig(_Strict):
    min_rows: int = Field(1, ge=1)
    """A source with fewer rows is rejected (an empty file always is)."""
    max_null_fraction: float = Field(0.05, ge=0, le=1)
    """Default limit on the share of nulls (blanks included) in a feature column."""
    null_fraction: dict[str, float] = {}
    """Per-column overrides of ``max_null_fraction``."""
    ranges: dict[str, Range] = {}
    """Allowed closed intervals of numeric columns; infinities are always rejected."""
    max_unmatched_fraction: float = Field(0.05, ge=0, le=1)
    """Merge fails when a source loses more than this share of its ids in the join."""
    max_file_bytes: int = Field(16 * 2**30, ge=1)
    """A raw file (batch, labels, training source) larger than this is rejected unread, and
    quarantined as a record without a copy. 16 GiB: a 10,000,000-row day is about 1.5 GB as CSV."""
    max_columns: int = Field(10_000, ge=1)
    """A file with more columns (CSV header, Parquet footer) is rejected before any row is parsed."""
    max_line_bytes: int = Field(8 * 2**20, ge=1)
    """A CSV file with a longer line (bytes, found by a streaming scan) is rejected before any row is parsed."""
    max_parquet_uncompressed_bytes: int = Field(32 * 2**30, ge=1)
    """A Parquet file whose row groups hold more bytes uncompressed (as its footer declares) is rejected
    before any row is decoded: a decompression bomb. 32 GiB: a 10,000,000-row day holds about 0.5 GB."""


class RatioFeature(_Strict):
    kind: Literal["ratio"]
    name: str
    numerator: str
    denominator: str


class CountEqualFeature(_Strict):
    kind: Literal["count_equal"]
    name: str
    columns: list[str] = Field(min_length=1)
    value: str


class BinsFeature(_Strict):
    kind: Literal["bins"]
    name: str
    column: str
    edges: list[float] = Field(min_length=2)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError("bin edges must be strictly increasing")
        return edges


DerivedFeature = Annotated[RatioFeature | CountEqualFeature | BinsFeature, Field(discriminator="kind")]


class FeaturesConfig(_Strict):
    derived: list[DerivedFeature] = []


class ThresholdConfig(_Strict):
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


class TrainingConfig(_Strict):
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

    @field_validator("families")
    @classmethod
    def _unique(cls, families: list[str]) -> list[str]:
        if not families or len(set(families)) != len(families):
            raise ValueError("families must be a non-empty list without repeats")
        return families


class MonitoringConfig(_Strict):
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
    """Also write evidently's HTML drift report. It costs about 5 s a day whatever the day's size
    (plotly figures per column); the JSON report and the decision do not depend on it."""
    seed: int = 0
    arrival_marker: str | None = None
    """A file (e.g. ``_SUCCESS``) its producer writes in ``incoming/date=D/`` once the day's batch
    is complete. Set, the day's files are neither listed nor judged before it exists: the
    ``churn_monitoring`` DAG's sensor waits for it and ``churnops monitor`` says the day has not
    arrived yet. None: a day's files count as complete as soon as they are there."""
    label_arrival_marker: str | None = None
    """The same for ``labels/date=D/``: until it exists, the day's labels count as not arrived
    (left out of performance and retraining windows, never judged)."""

    @field_validator("arrival_marker", "label_arrival_marker")
    @classmethod
    def _marker_is_not_data(cls, name: str | None) -> str | None:
        # The marker sits beside the data: a plain name that is never listed as a batch file.
        if name is not None and (
            name in {"", ".", ".."} or "/" in name or "\\" in name or name.lower().endswith((".csv", ".parquet", ".pq"))
        ):
            raise ValueError(f"{name!r} must be a plain file name not ending in .csv, .parquet or .pq")
        return name


class PolicyConfig(_Strict):
    """Champion/challenger promotion rules for ``churn_retraining``."""

    min_gain: float = Field(0.01, ge=0)
    """Promote only when challenger ROC-AUC − champion ROC-AUC exceeds this (absolute)."""
    cooldown_days: int = Field(7, ge=0)
    bootstrap_samples: int = Field(1000, ge=0)
    require_significant_gain: bool = False
    """Also require the paired-bootstrap CI of the gain to lie above 0."""
    eval_window_days: int = Field(7, ge=1)
    """The most recent matured label days: the fresh window both models are scored on, never trained on."""
    train_window_days: int = Field(60, ge=0)
    """Matured labelled days before the evaluation window added to the original training data."""


class RegistryConfig(_Strict):
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


class ServingConfig(_Strict):
    """``churnops serve``: the prediction service in front of ``@champion``."""

    poll_seconds: float = Field(30.0, gt=0)
    """How often the service asks the registry where ``@champion`` points, and swaps to a new version."""
    max_rows: int = Field(10_000, ge=1)
    """Rows one request may carry; more is refused with 413."""
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


class TrackingConfig(_Strict):
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


class AlertsConfig(_Strict):
    """Where alerts go (the Airflow connection ``churnops_alerts`` says how they are sent)."""

    to: list[str] = []
    """Mail recipients when the connection is SMTP and its extra names no ``to``."""


class OrchestrationConfig(_Strict):
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


class ChurnopsConfig(_Strict):
    """The whole configuration: the dataset, its checks and features, and every stage's settings.

    Frozen and strict: unknown keys are rejected, and a copy with other values is made with
    :meth:`with_training` (or pydantic's ``model_copy``).
    """

    dataset: DatasetConfig
    validation: ValidationConfig = ValidationConfig()
    features: FeaturesConfig = FeaturesConfig()
    training: TrainingConfig = TrainingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    policy: PolicyConfig = PolicyConfig()
    registry: RegistryConfig = RegistryConfig()
    tracking: TrackingConfig = TrackingConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    serving: ServingConfig = ServingConfig()

    @model_validator(mode="after")
    def _check_references(self) -> ChurnopsConfig:
        known = set(self.dataset.feature_columns)
        for name in list(self.validation.null_fraction) + list(self.validation.ranges):
            if name not in known:
                raise ValueError(f"validation names unknown feature column {name!r}")
        for spec in self.features.derived:
            used = {
                "ratio": lambda s: [s.numerator, s.denominator],
                "count_equal": lambda s: s.columns,
                "bins": lambda s: [s.column],
            }[spec.kind](spec)
            missing = [c for c in used if c not in known]
            if missing:
                raise ValueError(f"derived feature {spec.name!r} uses undeclared columns {missing}")
            if spec.name in known:
                raise ValueError(f"derived feature {spec.name!r} shadows a declared column")
        return self

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment_name or f"churnops-{self.dataset.name}"

    def with_training(self, **changes: Any) -> ChurnopsConfig:
        """A copy with some training keys replaced (e.g. from DAG Params), re-validated.

        Args:
            **changes: ``training`` keys and their new values; a None value leaves the key as it is.

        Returns:
            The new config.

        Raises:
            ConfigError: the changed training section breaks the schema.
        """
        data = self.model_dump(mode="json")
        data["training"].update({k: v for k, v in changes.items() if v is not None})
        try:
            return ChurnopsConfig.model_validate(data)
        except ValueError as exc:
            raise ConfigError(f"invalid training override {changes}: {_one_line(exc)}") from exc


def resolve_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$CHURNOPS_CONFIG``, else the bundled Telco config.

    Args:
        path: a config file, or None (or empty) for the default.

    Returns:
        The chosen path, absolute (``~`` expanded, symlinks resolved).
    """
    chosen = path or os.environ.get("CHURNOPS_CONFIG") or DEFAULT_CONFIG_PATH
    return Path(chosen).expanduser().resolve()


def load_config(path: str | os.PathLike[str] | None = None) -> ChurnopsConfig:
    """Load and validate a config file; source paths become absolute.

    Args:
        path: the YAML file; None picks one as :func:`resolve_config_path` does.

    Returns:
        The validated config, with each source path made absolute against the file's folder
        (normalised, not resolved: a symbolic link stays a link).

    Raises:
        ConfigError: the file is missing, is not YAML, or breaks the schema.
    """
    config_path = resolve_config_path(path)
    raw = _read_yaml(config_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"config {config_path} must be a mapping with a 'dataset' section")
    dataset = raw.get("dataset")
    for source in dataset.get("sources") or [] if isinstance(dataset, dict) else []:
        if isinstance(source, dict) and "path" in source:
            # Absolute, but a link as the file itself is kept as such, for the readers to refuse.
            source["path"] = os.path.abspath(config_path.parent / str(source["path"]))
    try:
        return ChurnopsConfig.model_validate(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid config {config_path}: {_one_line(exc)}") from exc


def load_orchestration_config(path: str | os.PathLike[str] | None = None) -> OrchestrationConfig:
    """Only the ``orchestration`` section of a config file, validated: what parsing a DAG file needs.

    Cheap enough for every parse of the DAG files (libyaml's parser when present, the result kept
    while the file is unchanged); the rest of the file is validated by the tasks that load it.

    Args:
        path: the YAML file; None picks one as :func:`resolve_config_path` does.

    Returns:
        The section (its defaults when the file has none).

    Raises:
        ConfigError: the file is missing, is not YAML, or its ``orchestration`` section breaks the schema.
    """
    config_path = resolve_config_path(path)
    try:
        stat = config_path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read config {config_path}: {exc.strerror}") from exc
    return _orchestration_of(config_path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _orchestration_of(config_path: Path, mtime_ns: int, size: int) -> OrchestrationConfig:
    raw = _read_yaml(config_path, loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    section = raw.get("orchestration") if isinstance(raw, dict) else None
    try:
        return OrchestrationConfig.model_validate(section or {})
    except ValueError as exc:
        raise ConfigError(f"invalid config {config_path}: orchestration.{_one_line(exc)}") from exc


def _read_yaml(config_path: Path, loader: Any = yaml.SafeLoader) -> Any:
    """The config file's YAML document, any failure to read or parse it as a :class:`ConfigError`."""
    try:
        return yaml.load(config_path.read_text(encoding="utf-8"), Loader=loader)
    except OSError as exc:
        raise ConfigError(f"cannot read config {config_path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {config_path} is not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {config_path} is not valid YAML: {exc}") from exc


def _one_line(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors()]
        return "; ".join(parts)
    return str(exc)


def churnops_home() -> Path:
    """Working-data root: ``$CHURNOPS_HOME``, default ``~/.churnops``."""
    return Path(os.environ.get("CHURNOPS_HOME") or Path.home() / ".churnops").expanduser().resolve()
