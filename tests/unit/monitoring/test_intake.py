"""churnops.monitoring.intake: a day's files, their verdicts kept for their exact size and time."""

from __future__ import annotations

import json
from datetime import date

import pytest

from churnops.config import load_config
from churnops.data import partition
from churnops.devtools import write_days
from churnops.monitoring import accepted_files

DAY = date(2026, 3, 2)


@pytest.fixture
def day_written(churnops_home):
    config = load_config()
    write_days(config, churnops_home, DAY, 1, rows_per_day=300)
    return config


@pytest.mark.parametrize("kind", ["incoming", "labels"])
@pytest.mark.parametrize(
    "stored",
    ['{"size": 12, "mtime_ns": 3', "", "not json", '{"findings": []}', "[]"],
    ids=["cut-short", "empty", "not-json", "missing-keys", "not-an-object"],
)
def test_a_verdict_that_cannot_be_read_counts_as_absent_and_the_file_is_judged_again(day_written, kind, stored):
    accepted, rejected = accepted_files(day_written, kind, DAY)
    assert len(accepted) == 1 and rejected == []
    verdict = partition(f"work/verdicts/{kind}", DAY) / f"{accepted[0].name}.json"
    verdict.write_text(stored, encoding="utf-8")  # what a crash mid-write (or a stray editor) leaves

    assert accepted_files(day_written, kind, DAY) == (accepted, [])
    assert json.loads(verdict.read_text(encoding="utf-8"))["findings"] == []  # judged again, recorded whole
