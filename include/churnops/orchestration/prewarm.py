"""Load the libraries churnops' tasks use once, in the process that forks the task processes.

Airflow runs each task in a process forked from its worker (LocalExecutor workers are forked
from the scheduler; Celery's pool from the Celery worker), and a fork starts with every module
its parent had imported. A churnops task otherwise spends most of its life importing: on 2 cores
pandas + scikit-learn + MLflow take ~4 s and evidently ~7 s, against well under a second of work
for a day of a few thousand rows. ``plugins/airflow_local_settings.py`` calls
:func:`import_task_libraries` in those parent processes only, so the api-server, the DAG
processor (DAG files stay light) and the CLI are unaffected.
"""

from __future__ import annotations

import importlib
import logging
import warnings

__all__ = ["TASK_LIBRARIES", "import_task_libraries"]

TASK_LIBRARIES = (
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.pipeline",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.calibration",
    "lightgbm",
    "xgboost",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.pyfunc",
    "evidently",
    "evidently.presets",
    "churnops.features",
    "churnops.modeling.models",
    "churnops.modeling.metrics",
    "churnops.monitoring.drift",
    "churnops.tracking.locks",
    "churnops.tracking.registry",
    "churnops.training.steps",
    "churnops.monitoring.steps",
    "churnops.retraining.steps",
)

log = logging.getLogger(__name__)


def import_task_libraries(modules: tuple[str, ...] = TASK_LIBRARIES) -> list[str]:
    """Import ``modules``; return those that could not be (a missing optional library is not fatal).

    Args:
        modules: dotted module names.

    Returns:
        The names that raised ImportError (each logged as a warning).
    """
    missing = []
    for name in modules:
        try:
            with warnings.catch_warnings():  # evidently's UI stack warns on import, as the report page expects
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module(name)
        except ImportError as exc:
            log.warning("churnops: could not pre-import %s (%s); tasks will import it themselves", name, exc)
            missing.append(name)
    return missing
