"""Typed configuration: the one file that makes churnops dataset-agnostic.

Everything dataset-specific (sources, columns, target, thresholds) lives in a YAML
file loaded into :class:`ChurnopsConfig`. Every section but ``dataset`` has
defaults. Unknown keys are rejected so a typo never silently falls back to a default.

The sections live by the part of the loop they configure: :mod:`~churnops.config.data` (the
dataset, its checks and features), :mod:`~churnops.config.loop` (training, monitoring, the
retraining policy) and :mod:`~churnops.config.platform` (registry, tracking, serving,
orchestration); :mod:`~churnops.config.loading` reads a file into :class:`ChurnopsConfig`.
Import them from here.
"""

from __future__ import annotations

from churnops.config.base import DEFAULT_CONFIG_PATH, MODEL_FAMILIES, PACKAGE_DIR, ConfigError, ModelFamily
from churnops.config.data import (
    BinsFeature,
    CountEqualFeature,
    DatasetConfig,
    DerivedFeature,
    FeaturesConfig,
    Range,
    RatioFeature,
    Source,
    ValidationConfig,
)
from churnops.config.loading import (
    ChurnopsConfig,
    churnops_home,
    load_config,
    load_orchestration_config,
    resolve_config_path,
)
from churnops.config.loop import TRIGGERS, MonitoringConfig, PolicyConfig, ThresholdConfig, TrainingConfig, Trigger
from churnops.config.platform import (
    STEP_TIMEOUT_MINUTES,
    AlertsConfig,
    OrchestrationConfig,
    RegistryConfig,
    ServingConfig,
    TrackingConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "MODEL_FAMILIES",
    "PACKAGE_DIR",
    "STEP_TIMEOUT_MINUTES",
    "TRIGGERS",
    "AlertsConfig",
    "BinsFeature",
    "ChurnopsConfig",
    "ConfigError",
    "CountEqualFeature",
    "DatasetConfig",
    "DerivedFeature",
    "FeaturesConfig",
    "ModelFamily",
    "MonitoringConfig",
    "OrchestrationConfig",
    "PolicyConfig",
    "Range",
    "RatioFeature",
    "RegistryConfig",
    "ServingConfig",
    "Source",
    "ThresholdConfig",
    "TrackingConfig",
    "TrainingConfig",
    "Trigger",
    "ValidationConfig",
    "churnops_home",
    "load_config",
    "load_orchestration_config",
    "resolve_config_path",
]
