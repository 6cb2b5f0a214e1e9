"""churnops.monitoring.intake: a day's files, their arrival, the verdicts kept for exactly what was read."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from churnops.config import load_config
from churnops.data import partition
from churnops.devtools import write_days
from churnops.errors import ChurnopsInputError, ChurnopsRetryableError
from churnops.monitoring import (
    BatchNotArrivedError,
    FileChangedError,
    FileChangingError,
    accepted_files,
    arrived,
    check_batch,
    day_folder,
    served_day_complete_at,
)
from churnops.monitoring.verdicts import reading, record_verdict, stored_verdict
from tests.helpers import same_size_out_of_range

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


def as_csv(day_written, kind: str = "incoming") -> Path:
    """The day's Parquet file of ``kind`` rewritten as ``batch.csv`` (text, so a cell can be changed in place)."""
    import pandas as pd

    folder = partition(kind, DAY)
    (parquet,) = folder.glob("*.parquet")
    path = folder / "batch.csv"
    pd.read_parquet(parquet).to_csv(path, index=False)
    parquet.unlink()
    return path


@pytest.mark.parametrize("how", ["rewritten-in-place", "replaced"])
def test_a_file_changed_with_the_same_size_and_mtime_is_judged_again(day_written, how, tmp_path):
    path = as_csv(day_written)
    assert accepted_files(day_written, "incoming", DAY) == ([path], [])
    before = path.stat()
    changed = same_size_out_of_range(path)
    if how == "rewritten-in-place":
        with path.open("r+b") as handle:
            handle.write(changed)
    else:  # another file moved over it, as a producer's atomic write does
        (tmp_path / "new.csv").write_bytes(changed)
        os.replace(tmp_path / "new.csv", path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same size and mtime as judged
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    accepted, rejected = accepted_files(day_written, "incoming", DAY)

    assert accepted == [] and [f["rule"] for f in rejected[0]["findings"]] == ["range"]
    assert (partition("quarantine/monitoring", DAY) / "batch.csv" / "batch.csv").read_bytes() == changed


def test_a_verdict_records_the_file_as_read_not_as_it_is_when_written(day_written):
    path = as_csv(day_written)
    with reading(path) as identity:
        pass
    record_verdict("incoming", DAY, path, [], identity)
    assert stored_verdict("incoming", DAY, path) is not None
    time.sleep(0.05)  # past the file system's clock tick, so the write gets times of its own
    path.write_bytes(path.read_bytes())  # the same bytes written again: no longer the file that was read
    record_verdict("incoming", DAY, path, [], identity)
    assert stored_verdict("incoming", DAY, path) is None


def test_reading_refuses_a_file_that_changes_during_the_read_or_is_not_the_expected_one(day_written):
    path = as_csv(day_written)
    with pytest.raises(FileChangingError, match="changed while it was read: its size went from"):
        with reading(path):
            with path.open("ab") as handle:
                handle.write(b"appended,row\n")
    with reading(path) as identity:
        pass
    with pytest.raises(FileChangingError, match="changed while it was read"):  # an error of the read gives way
        with reading(path):
            path.write_bytes(b"")
            raise ValueError("the parser met a half-written line")
    with pytest.raises(FileChangedError, match="not the file that was judged or planned"):
        with reading(path, identity):
            pass
    path.unlink()
    with pytest.raises(FileChangedError, match="gone"):
        with reading(path):
            pass


def test_a_file_still_being_written_is_retried_a_stale_plan_fails_at_once(day_written):
    path = as_csv(day_written)
    with reading(path) as judged:
        pass
    time.sleep(0.05)
    with path.open("ab") as handle:  # the producer appends after the file was judged
        handle.write(b"appended,row\n")
    # A verdict judged afresh on the next attempt (labels, retraining windows): a retry helps.
    with pytest.raises(FileChangingError, match="not the file that was judged or planned"):
        with reading(path, judged, judged_afresh=True):
            pass
    # A day's fixed plan (shards, merge): a retry would read the same stale plan.
    with pytest.raises(FileChangedError):
        with reading(path, judged):
            pass
    assert issubclass(FileChangingError, ChurnopsRetryableError) and not issubclass(
        FileChangingError, ChurnopsInputError
    )
    assert issubclass(FileChangedError, ChurnopsInputError)


def with_markers(config, **markers):
    return config.model_copy(update={"monitoring": config.monitoring.model_copy(update=markers)})


def test_a_day_is_neither_listed_nor_judged_before_its_arrival_marker(day_written):
    config = with_markers(day_written, arrival_marker="_SUCCESS", label_arrival_marker="_DONE")
    folder = partition("incoming", DAY)
    (folder / "still-writing.csv").write_bytes(b"customerid,tenure\nC1,1")  # half a file: rejected if judged

    assert not arrived(config, "incoming", DAY)
    with pytest.raises(BatchNotArrivedError, match=r"has not arrived yet: no _SUCCESS in .*arrival_marker"):
        check_batch(config, DAY)
    assert accepted_files(config, "incoming", DAY) == ([], [])
    assert accepted_files(config, "labels", DAY) == ([], [])
    assert not partition("quarantine/monitoring", DAY).exists(), "a day not arrived is never quarantined"
    assert not partition("work/verdicts/incoming", DAY).exists() and not partition("work/verdicts/labels", DAY).exists()

    (folder / "still-writing.csv").unlink()  # the producer finishes, then marks the day
    (folder / "_SUCCESS").write_bytes(b"not data: never read")
    (partition("labels", DAY) / "_DONE").touch()
    batch = check_batch(config, DAY)
    assert [Path(f).name for f in batch["files"]] == ["batch.parquet"] and batch["rows"] == 300
    assert len(accepted_files(config, "labels", DAY)[0]) == 1


def test_a_served_day_is_the_batch_once_it_is_over_and_every_server_has_flushed(day_written):
    """With monitoring.batch_folder: serving the batch is serving/date=D/ (incoming/ is not read), complete
    from the day's end plus serving.log_flush_seconds and a margin; before that nothing is judged."""
    config = with_markers(day_written, batch_folder="serving")
    config = config.model_copy(update={"serving": config.serving.model_copy(update={"log_flush_seconds": 30})})
    served = partition("serving", DAY)
    served.mkdir(parents=True)
    partition("incoming", DAY).rename(served)
    complete = datetime(DAY.year, DAY.month, DAY.day + 1, 0, 0, 35, tzinfo=UTC)
    assert served_day_complete_at(config, DAY) == complete
    assert not arrived(config, "incoming", DAY, now=complete - timedelta(microseconds=1))
    assert arrived(config, "incoming", DAY, now=complete)
    assert arrived(config, "labels", DAY, now=complete - timedelta(days=1)), "labels keep their own rule"
    assert day_folder(config, "incoming", DAY) == served

    batch = check_batch(config, DAY)  # DAY is long over
    assert [Path(f).parent for f in batch["files"]] == [served] and batch["rows"] == 300
    assert [p.parent for p in accepted_files(config, "incoming", DAY)[0]] == [served]

    today = datetime.now(UTC).date()
    partition("serving", today).mkdir(parents=True)
    with pytest.raises(BatchNotArrivedError, match=r"holds the rows served that day, complete from"):
        check_batch(config, today)
    assert accepted_files(config, "incoming", today) == ([], [])

    marked = with_markers(config, arrival_marker="_SUCCESS")
    assert not arrived(marked, "incoming", DAY), "an arrival marker, when set, is still required"


@pytest.mark.parametrize("name", ["done.csv", "_SUCCESS.parquet", "a/_SUCCESS", "..", ""])
def test_an_arrival_marker_must_be_a_plain_name_never_read_as_data(name):
    from pydantic import ValidationError

    from churnops.config import MonitoringConfig

    with pytest.raises(ValidationError, match="plain file name"):
        MonitoringConfig(arrival_marker=name)
    with pytest.raises(ValidationError, match="plain file name"):
        MonitoringConfig(label_arrival_marker=name)
