"""Days: the unit every monitoring and retraining step is keyed by.

A day comes from the DAG run (its logical date, as ``YYYY-MM-DD``) or the command line, and
every partition under ``$CHURNOPS_HOME`` is built from the parsed date, never from the raw text.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from churnops.config import ChurnopsConfig
from churnops.errors import ChurnopsInputError

__all__ = ["matured_days", "parse_day", "trailing_days"]


def parse_day(value: str | date) -> date:
    """A day from ``YYYY-MM-DD`` (or an ISO timestamp, or a date); anything else is an input error.

    Partitions are built from the parsed date, never from the raw string, so a value like
    ``../../etc`` cannot point outside ``$CHURNOPS_HOME``.

    Args:
        value: ``YYYY-MM-DD`` text (only its first ten characters are read), a datetime or a date.

    Returns:
        The day.

    Raises:
        ChurnopsInputError: ``value`` is not a date.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ChurnopsInputError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def trailing_days(last: date | str, count: int) -> list[date]:
    """The ``count`` days ending with ``last``, oldest first.

    Args:
        last: the last day of the window (a date or ``YYYY-MM-DD``).
        count: how many days.

    Returns:
        The days, oldest first (empty when ``count`` is 0).
    """
    last = parse_day(last)
    return [last - timedelta(days=k) for k in range(count - 1, -1, -1)]


def matured_days(config: ChurnopsConfig, day: date | str) -> list[date]:
    """Label days that have matured by ``day``: the trailing window ending ``label_delay_days`` earlier.

    Args:
        config: ``monitoring.label_delay_days`` and ``monitoring.label_window_days``.
        day: the monitored day (a date or ``YYYY-MM-DD``).

    Returns:
        ``label_window_days`` days, oldest first, the last one ``label_delay_days`` before ``day``.
    """
    day = parse_day(day)
    monitoring = config.monitoring
    return trailing_days(day - timedelta(days=monitoring.label_delay_days), monitoring.label_window_days)
