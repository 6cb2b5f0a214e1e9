"""Promotion state in Airflow Variables: what the DAGs' cooldown reads and their promotions write.

Never use ``AIRFLOW_VAR_*`` environment variables for these: they shadow the metadata DB and a
task could not update them.
"""

from __future__ import annotations

import json
from typing import Any

from churnops.retraining import COOLDOWN_DAYS_VAR, LAST_PROMOTION_VAR

__all__ = ["AirflowVariableState"]


class AirflowVariableState:
    """A :class:`~churnops.retraining.PromotionState` in Airflow Variables; usable only inside a running task."""

    def last_promotion(self) -> dict[str, Any] | None:
        from airflow.sdk import Variable

        value = Variable.get(LAST_PROMOTION_VAR, default=None)
        if value in (None, "", "null", "{}"):
            return None
        return json.loads(value) if isinstance(value, str) else value

    def record_promotion(self, entry: dict[str, Any]) -> None:
        from airflow.sdk import Variable

        Variable.set(
            LAST_PROMOTION_VAR,
            json.dumps(entry, sort_keys=True),
            description="Last churnops promotion (date is the run's as-of date); drives the cooldown.",
        )

    def cooldown_days(self, default: int) -> int:
        from airflow.sdk import Variable

        value = Variable.get(COOLDOWN_DAYS_VAR, default=None)
        return default if value in (None, "") else int(value)
