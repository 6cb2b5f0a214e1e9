"""Promotion state: when the last promotion and the last retraining attempt happened, and how long
the promotion cooldown lasts.

One store per deployment, shared by the DAGs and the CLI. Wherever an Airflow is configured
it is the Airflow Variables (``churnops_last_promotion`` and ``churnops_last_retraining`` as
JSON, ``churnops_cooldown_days``), which operators see and edit in the UI: tasks reach them with
:class:`churnops.orchestration.variables.AirflowVariableState`, the CLI with
``MetadataVariableState`` (chosen by :func:`churnops.orchestration.open_promotion_state`).
Only where no Airflow is configured at all does the CLI keep it in
``$CHURNOPS_HOME/state/promotion.json`` (:class:`FileState`), the cooldown's length from
``policy.cooldown_days``. The retraining cooldown's length is ``policy.retraining_cooldown_days``
in both. Never use ``AIRFLOW_VAR_*`` environment variables for these: they shadow the metadata
DB and a task could not update them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from churnops.config import churnops_home
from churnops.data import write_text_atomically

__all__ = ["COOLDOWN_DAYS_VAR", "LAST_PROMOTION_VAR", "LAST_RETRAINING_VAR", "FileState", "PromotionState"]

LAST_PROMOTION_VAR = "churnops_last_promotion"
LAST_RETRAINING_VAR = "churnops_last_retraining"
COOLDOWN_DAYS_VAR = "churnops_cooldown_days"


class PromotionState(Protocol):
    """Where the last promotion is kept and the cooldown's length is read (a file, or Airflow Variables)."""

    def last_promotion(self) -> dict[str, Any] | None:
        """The last recorded promotion (or rollback), or None."""
        ...

    def record_promotion(self, entry: dict[str, Any]) -> None:
        """Replace the last promotion with ``entry`` (``date``, ``version``, ``previous_version``, …)."""
        ...

    def cooldown_days(self, default: int) -> int:
        """The cooldown's length in days: the stored one, else ``default``."""
        ...

    def last_retraining(self) -> dict[str, Any] | None:
        """The last recorded retraining attempt (a challenger trained), or None."""
        ...

    def record_retraining(self, entry: dict[str, Any]) -> None:
        """Replace the last retraining attempt with ``entry`` (``date``, ``run_id``, ``version``, …)."""
        ...


class FileState:
    """A :class:`PromotionState` in a JSON file under ``$CHURNOPS_HOME/state`` (the CLI's, with no Airflow configured).

    Args:
        path: the JSON file (default: ``$CHURNOPS_HOME/state/promotion.json``).
        cooldown_days: the cooldown's length, ahead of the file's ``churnops_cooldown_days``.
    """

    def __init__(self, path: Path | None = None, cooldown_days: int | None = None) -> None:
        self.path = path or churnops_home() / "state" / "promotion.json"
        self._cooldown_days = cooldown_days

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def last_promotion(self) -> dict[str, Any] | None:
        return self._read().get(LAST_PROMOTION_VAR)

    def record_promotion(self, entry: dict[str, Any]) -> None:
        self._write(LAST_PROMOTION_VAR, entry)

    def last_retraining(self) -> dict[str, Any] | None:
        return self._read().get(LAST_RETRAINING_VAR)

    def record_retraining(self, entry: dict[str, Any]) -> None:
        self._write(LAST_RETRAINING_VAR, entry)

    def _write(self, key: str, entry: dict[str, Any]) -> None:
        data = {**self._read(), key: entry}
        write_text_atomically(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def cooldown_days(self, default: int) -> int:
        return (
            self._cooldown_days
            if self._cooldown_days is not None
            else int(self._read().get(COOLDOWN_DAYS_VAR, default))
        )
