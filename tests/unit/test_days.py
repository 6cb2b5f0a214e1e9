"""churnops.days: a day from what a DAG run or the command line gives, and the windows around it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from churnops.config import load_config
from churnops.days import matured_days, parse_day, trailing_days
from churnops.errors import ChurnopsInputError


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-20",
        "2026-11-20T00:00:00+00:00",
        date(2026, 11, 20),
        datetime(2026, 11, 20, 23, 59, tzinfo=UTC),
    ],
)
def test_a_day_from_text_a_timestamp_or_a_date(value):
    day = parse_day(value)
    assert day == date(2026, 11, 20) and type(day) is date  # a datetime would put its time in partition names


@pytest.mark.parametrize("value", ["yesterday", "../../etc", "", "2026-13-01"])
def test_anything_else_is_bad_input(value):
    with pytest.raises(ChurnopsInputError, match="not a date"):
        parse_day(value)


def test_trailing_days_end_with_the_day_oldest_first():
    assert trailing_days("2026-03-02", 3) == [date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)]


def test_matured_days_take_the_text_a_dag_task_has():
    config = load_config()
    delay, window = config.monitoring.label_delay_days, config.monitoring.label_window_days
    days = matured_days(config, "2026-11-20")
    assert days == matured_days(config, date(2026, 11, 20))
    assert len(days) == window and (date(2026, 11, 20) - days[-1]).days == delay
