"""The days a retraining run learns from and is judged on, by its as-of day.

The challenger trains on the original sources plus the matured labelled days of the training
window; both models are then scored on the evaluation window: the latest matured days, never
trained on. Every date rule uses the run's as-of date, never the wall clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from churnops import training
from churnops.config import ChurnopsConfig
from churnops.data import write_parquet
from churnops.days import parse_day, trailing_days
from churnops.monitoring import read_accepted

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_recent_days", "evaluation_days", "training_days", "training_window"]


def evaluation_days(config: ChurnopsConfig, as_of: date) -> list[date]:
    """The most recent matured label days: the window both models are scored on.

    Args:
        config: ``monitoring.label_delay_days`` and ``policy.eval_window_days``.
        as_of: the run's as-of day.

    Returns:
        ``eval_window_days`` days, oldest first, the last one ``label_delay_days`` before ``as_of``.
    """
    return trailing_days(as_of - timedelta(days=config.monitoring.label_delay_days), config.policy.eval_window_days)


def training_days(config: ChurnopsConfig, as_of: date) -> list[date]:
    """Matured labelled days before the evaluation window, added to the original training data.

    Args:
        config: the evaluation window's settings and ``policy.train_window_days``.
        as_of: the run's as-of day.

    Returns:
        ``train_window_days`` days, oldest first, ending the day before the evaluation window.
    """
    first_eval = evaluation_days(config, as_of)[0]
    return trailing_days(first_eval - timedelta(days=1), config.policy.train_window_days)


def _labelled_days(config: ChurnopsConfig, days: list[date]) -> pd.DataFrame:
    """Batch rows joined to their labels over ``days`` (days missing either side are skipped).

    Only files that pass validation are used (a rejected batch or label file is quarantined
    and left out: a wrong label never trains or judges a model), each read as the file its
    verdict judged. A served batch (``monitoring.batch_folder: serving``) may hold a customer
    more than once: each labelled customer counts once a day, as first served that day (the row
    its label judges in realized performance).
    """
    import pandas as pd

    ds = config.dataset
    parts = []
    for day in days:
        batch = read_accepted(config, "incoming", day)
        labels = read_accepted(config, "labels", day)
        if batch.empty or labels.empty:
            continue
        batch = batch.drop_duplicates(ds.id_column, keep="first")
        parts.append(
            batch[[ds.id_column, *ds.feature_columns]].merge(labels[[ds.id_column, ds.target]], on=ds.id_column)
        )
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=[ds.id_column, *ds.feature_columns, ds.target])
    )


def training_window(original: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """The original training rows followed by the recent labelled ones (in ``original``'s columns).

    With no recent rows the original rows come back as they are: concatenating an empty frame
    would leave the result's types to a pandas rule that is changing (a FutureWarning today).

    Args:
        original: the merged original training rows.
        recent: labelled rows of the training window's days (they have every column of ``original``).

    Returns:
        The rows, indexed from 0.
    """
    import pandas as pd

    if recent.empty:
        return original.reset_index(drop=True)
    return pd.concat([original, recent[original.columns]], ignore_index=True)


def add_recent_days(previous: dict[str, Any], as_of: date | str) -> dict[str, Any]:
    """Append the matured labelled days of the training window to the merged original data.

    Also writes the evaluation window (later days, never trained on) for the comparison.

    Args:
        previous: the training pipeline's ``merge`` result.
        as_of: the run's as-of day (a date or ``YYYY-MM-DD``).

    Returns:
        ``previous`` with ``merged`` and ``rows_merged`` of the training window, plus
        ``evaluation`` (its Parquet path) and ``as_of``.

    Raises:
        ValueError: the evaluation window has no labelled rows.
    """
    as_of = parse_day(as_of)
    import mlflow
    import pandas as pd

    with training.training_step(previous, "add_recent_days") as (run, config, run_dir):
        original = pd.read_parquet(previous["merged"])
        recent = _labelled_days(config, training_days(config, as_of))
        fresh = _labelled_days(config, evaluation_days(config, as_of))
        if fresh.empty:
            raise ValueError(
                f"no labelled data in the evaluation window {evaluation_days(config, as_of)[0]} … "
                f"{evaluation_days(config, as_of)[-1]}: cannot compare models"
            )
        combined = training_window(original, recent)
        merged_path = run_dir / "training_window.parquet"
        write_parquet(combined, merged_path)
        eval_path = run_dir / "evaluation_window.parquet"
        write_parquet(fresh, eval_path)
        mlflow.log_metrics({"rows_original": len(original), "rows_recent": len(recent), "rows_evaluation": len(fresh)})
        mlflow.set_tags({"churnops.as_of": as_of.isoformat()})
        return {
            **previous,
            "merged": str(merged_path),
            "rows_merged": len(combined),
            "evaluation": str(eval_path),
            "as_of": as_of.isoformat(),
        }
