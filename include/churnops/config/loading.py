"""The whole configuration and how it is read: :class:`ChurnopsConfig`, the file's path, ``$CHURNOPS_HOME``."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import model_validator

from churnops.config.base import DEFAULT_CONFIG_PATH, ConfigError, Strict
from churnops.config.data import DatasetConfig, FeaturesConfig, ValidationConfig
from churnops.config.loop import MonitoringConfig, PolicyConfig, TrainingConfig
from churnops.config.platform import OrchestrationConfig, RegistryConfig, ServingConfig, TrackingConfig


class ChurnopsConfig(Strict):
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
