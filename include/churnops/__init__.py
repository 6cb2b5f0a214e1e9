"""churnops: continuous training for tabular binary classifiers on Airflow 3 and MLflow 3.

The package's folders follow the loop, and imports point one way, from the bottom up::

    config, errors, days, faults      the typed config and what every layer shares
    data                              sources in, validation, partitions and atomic writers
    features, modeling                the pickled preprocessing, model families and metrics
    tracking                          MLflow runs and the model registry
    training, monitoring              the training pipeline; the daily check of @champion
    retraining                        challenger vs champion, the promotion decision
    orchestration                     Airflow (the only layer that imports it)
    cli, devtools                     the command line; simulated data

The names below are the entry points; they are imported on first use, so importing
``churnops`` (as every DAG file and every model load does) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnops.config import ChurnopsConfig, load_config
    from churnops.monitoring import run_monitoring
    from churnops.retraining import run_retraining
    from churnops.tracking import RunContext
    from churnops.training import run_training

__all__ = ["ChurnopsConfig", "RunContext", "load_config", "run_monitoring", "run_retraining", "run_training"]

_HOMES = {
    "ChurnopsConfig": "churnops.config",
    "load_config": "churnops.config",
    "RunContext": "churnops.tracking",
    "run_training": "churnops.training",
    "run_monitoring": "churnops.monitoring",
    "run_retraining": "churnops.retraining",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'churnops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
