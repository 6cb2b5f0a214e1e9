"""Promotion state in Airflow Variables: what the DAGs' cooldowns read and their promotions and
retraining attempts write.

Two ways in to the same Variables: :class:`AirflowVariableState` inside a running task (the Task
SDK, through the api-server), :class:`MetadataVariableState` outside one (the CLI, through
Airflow's metadata DB as ``airflow variables get/set`` do). Both read and write the same values
the same way. Never use ``AIRFLOW_VAR_*`` environment variables for these: they shadow the
metadata DB and a task could not update them.
"""

from __future__ import annotations

import json
from typing import Any

from churnops.errors import PromotionStateUnavailable
from churnops.retraining import COOLDOWN_DAYS_VAR, LAST_PROMOTION_VAR, LAST_RETRAINING_VAR

__all__ = ["AirflowVariableState", "MetadataVariableState"]

_DESCRIPTIONS = {
    LAST_PROMOTION_VAR: "Last churnops promotion (date is the run's as-of date); drives the cooldown.",
    LAST_RETRAINING_VAR: (
        "Last churnops retraining attempt (date is the run's as-of date); drives the retraining cooldown."
    ),
}


def _record_from(value: Any) -> dict[str, Any] | None:
    """The stored last promotion (or retraining), or None when the Variable is missing or holds nothing."""
    if value in (None, "", "null", "{}"):
        return None
    return json.loads(value) if isinstance(value, str) else value


def _cooldown_from(value: Any, default: int) -> int:
    return default if value in (None, "") else int(value)


class AirflowVariableState:
    """A :class:`~churnops.retraining.PromotionState` in Airflow Variables; usable only inside a running task."""

    def last_promotion(self) -> dict[str, Any] | None:
        return self._last(LAST_PROMOTION_VAR)

    def record_promotion(self, entry: dict[str, Any]) -> None:
        self._record(LAST_PROMOTION_VAR, entry)

    def cooldown_days(self, default: int) -> int:
        from airflow.sdk import Variable

        return _cooldown_from(Variable.get(COOLDOWN_DAYS_VAR, default=None), default)

    def last_retraining(self) -> dict[str, Any] | None:
        return self._last(LAST_RETRAINING_VAR)

    def record_retraining(self, entry: dict[str, Any]) -> None:
        self._record(LAST_RETRAINING_VAR, entry)

    @staticmethod
    def _last(key: str) -> dict[str, Any] | None:
        from airflow.sdk import Variable

        return _record_from(Variable.get(key, default=None))

    @staticmethod
    def _record(key: str, entry: dict[str, Any]) -> None:
        from airflow.sdk import Variable

        Variable.set(key, json.dumps(entry, sort_keys=True), description=_DESCRIPTIONS[key])


class MetadataVariableState:
    """The same Variables as :class:`AirflowVariableState`, through Airflow's metadata DB (outside a task).

    Reads take the Variable's row from the metadata DB with Airflow's ORM model: ``Variable.get``
    would log a DB error or an undecryptable value and answer "no such Variable", which would lift
    the cooldown. Writes use ``Variable.set``, as ``airflow variables set`` does. A DB that cannot
    be reached, or a value this process's Fernet key cannot decrypt, raises
    :class:`~churnops.errors.PromotionStateUnavailable`.

    Args:
        chosen_because: why this store was chosen, for the error messages.

    Raises:
        PromotionStateUnavailable: the metadata DB is a SQLite file that does not exist
            (connecting would create an empty one).
    """

    def __init__(self, chosen_because: str = "") -> None:
        from pathlib import Path

        from airflow.configuration import conf
        from sqlalchemy.engine import make_url

        url = make_url(conf.get("database", "sql_alchemy_conn"))
        self.location = url.render_as_string(hide_password=True)
        """Airflow's metadata DB URL, password hidden."""
        self._chosen_because = chosen_because
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            if not Path(url.database).is_file():
                raise PromotionStateUnavailable(self._unavailable("the database file does not exist"))

    def _unavailable(self, what: str) -> str:
        because = f" ({self._chosen_because})" if self._chosen_because else ""
        return (
            f"the promotion state lives in Airflow Variables{because}, but Airflow's metadata DB "
            f"{self.location} cannot be used: {what}. Start or create it (`airflow db migrate`), or give this "
            "process the deployment's Airflow configuration (database URL, Fernet key); CHURNOPS_STATE=file "
            "is only for machines without Airflow."
        )

    def _get(self, key: str) -> str | None:
        from airflow.models import Variable
        from airflow.models.crypto import get_fernet
        from airflow.utils.session import create_session
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with create_session() as session:
                row = session.scalar(
                    select(Variable).where(Variable.key == key, Variable.team_name.is_(None)).limit(1)  # noqa: AIR311
                )
                if row is None:
                    return None
                # An undecryptable value reads as None (or as its ciphertext without a key): either
                # would pass for "no promotion" and lift the cooldown.
                if row.is_encrypted and not get_fernet().is_encrypted:
                    raise PromotionStateUnavailable(self._unavailable(f"{key} is encrypted and no Fernet key is set"))
                value = row.val
                if row.is_encrypted and value is None:
                    raise PromotionStateUnavailable(
                        self._unavailable(f"{key} cannot be decrypted with this Fernet key")
                    )
                return value
        except SQLAlchemyError as exc:
            raise PromotionStateUnavailable(self._unavailable(_first_line(exc))) from exc

    def last_promotion(self) -> dict[str, Any] | None:
        return _record_from(self._get(LAST_PROMOTION_VAR))

    def record_promotion(self, entry: dict[str, Any]) -> None:
        self._set(LAST_PROMOTION_VAR, entry)

    def cooldown_days(self, default: int) -> int:
        return _cooldown_from(self._get(COOLDOWN_DAYS_VAR), default)

    def last_retraining(self) -> dict[str, Any] | None:
        return _record_from(self._get(LAST_RETRAINING_VAR))

    def record_retraining(self, entry: dict[str, Any]) -> None:
        self._set(LAST_RETRAINING_VAR, entry)

    def _set(self, key: str, entry: dict[str, Any]) -> None:
        # Outside a task the metadata DB is the way in (airflow.sdk.Variable needs a task's supervisor).
        from airflow.models import Variable
        from sqlalchemy.exc import SQLAlchemyError

        self._get(key)  # a record this process cannot read means a Fernet key the DAGs do not share

        try:
            Variable.set(key, json.dumps(entry, sort_keys=True), description=_DESCRIPTIONS[key])  # noqa: AIR311
        except SQLAlchemyError as exc:
            raise PromotionStateUnavailable(self._unavailable(_first_line(exc))) from exc


def _first_line(exc: BaseException) -> str:
    """The driver's own message (``OperationalError: ...``) without SQLAlchemy's statement and link."""
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
