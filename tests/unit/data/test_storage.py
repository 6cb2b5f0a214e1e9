"""churnops.data.storage: day partitions, writers that replace a file only when complete, the quarantine."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import date

import pandas as pd
import pytest

from churnops.config import Source
from churnops.data.findings import Finding
from churnops.data.storage import (
    atomic_parquet_writer,
    partition,
    quarantine,
    replaced_atomically,
    write_json,
    write_text_atomically,
)

# --- partitions and JSON records ---------------------------------------------------------------------------------


def test_a_partition_is_the_days_folder_of_its_kind_under_churnops_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path))
    assert partition("labels", date(2026, 3, 4)) == tmp_path.resolve() / "labels" / "date=2026-03-04"
    assert partition("quarantine/monitoring", date(2026, 12, 31)).relative_to(tmp_path.resolve()).parts == (
        "quarantine",
        "monitoring",
        "date=2026-12-31",
    )


def test_write_json_creates_the_folders_and_writes_dates_as_text(tmp_path):
    path = tmp_path / "reports" / "date=2026-03-04" / "report.json"
    assert write_json(path, {"date": date(2026, 3, 4), "rows": 3, "notes": []}) == path
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"date": "2026-03-04", "rows": 3, "notes": []}
    assert text.endswith("}\n") and '\n  "rows": 3' in text  # indented, one final line end


# --- writers that replace a file only when complete --------------------------------------------------------------


def test_replaced_atomically_moves_the_temporary_file_into_place_only_on_success(tmp_path):
    path = tmp_path / "new-folder" / "side.json"
    with replaced_atomically(path) as temporary:
        assert temporary.parent == path.parent and temporary.name != path.name
        assert not path.exists()  # readers see nothing until the block ends
        temporary.write_text("first", encoding="utf-8")
    assert path.read_text(encoding="utf-8") == "first"
    assert list(path.parent.iterdir()) == [path]


def test_replaced_atomically_keeps_the_previous_file_and_removes_the_temporary_one_on_failure(tmp_path):
    path = tmp_path / "side.json"
    path.write_text("previous", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), replaced_atomically(path) as temporary:
        temporary.write_text("half written", encoding="utf-8")
        raise KeyboardInterrupt  # not an Exception: a worker being stopped must not leave the temporary file
    assert path.read_text(encoding="utf-8") == "previous"
    assert list(tmp_path.iterdir()) == [path]


def test_atomic_parquet_writer_leaves_the_old_file_on_failure(tmp_path):
    import pyarrow as pa

    path = tmp_path / "out.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(path)
    before = path.read_bytes()
    table = pa.table({"x": [2, 3]})
    with pytest.raises(RuntimeError, match="killed"), atomic_parquet_writer(path, table.schema) as writer:
        writer.write_table(table)
        raise RuntimeError("killed")
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    with atomic_parquet_writer(path, table.schema) as writer:
        writer.write_table(table)
    assert pd.read_parquet(path)["x"].tolist() == [2, 3]


# --- quarantine --------------------------------------------------------------------------------------------------


def test_quarantine_copies_bytes_and_writes_reason(tmp_path):
    content = b"id,age\r\na,\xe9t\xe9\r\nb, \r\n"  # CRLF and latin-1 bytes must survive untouched
    path = tmp_path / "raw" / "main.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    source = Source(name="main", path=path)
    findings = [
        Finding("main", "age", "numeric_type", "1 values are not numbers"),
        Finding("main", None, "min_rows", "2 rows"),
    ]
    destination = tmp_path / "quarantine" / "run-1" / "main"
    assert quarantine(source, findings, destination, {"run_id": "run-1", "dag_id": "d"}) == destination
    assert (destination / "main.csv").read_bytes() == content
    assert path.read_bytes() == content
    reason = json.loads((destination / "reason.json").read_text())
    assert reason == {
        "source": "main",
        "path": str(path),
        "kind": "regular file",
        "sha256": hashlib.sha256(content).hexdigest(),
        "copy": str(destination / "main.csv"),
        "findings": [asdict(f) for f in findings],
        "run_id": "run-1",
        "dag_id": "d",
    }
    assert reason["findings"][0] == {
        "source": "main",
        "column": "age",
        "rule": "numeric_type",
        "message": "1 values are not numbers",
    }


def test_quarantine_of_a_missing_file_still_writes_reason(tmp_path):
    source = Source(name="main", path=tmp_path / "absent.csv")
    findings = [Finding("main", None, "readable", "file not found")]
    destination = quarantine(source, findings, tmp_path / "q", {})
    assert sorted(p.name for p in destination.iterdir()) == ["reason.json"]
    reason = json.loads((destination / "reason.json").read_text())
    assert reason["sha256"] is None and reason["copy"] is None
    assert reason["findings"][0]["rule"] == "readable"


# --- a crash while writing never leaves a torn record ------------------------------------------------------------


def cut_short_writes(monkeypatch):
    """Make every text write stop halfway, as a process killed (or a full disk) mid-write would."""
    from pathlib import Path

    def half_then_fail(self, data, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)


@pytest.mark.parametrize(
    "write",
    [
        lambda path: write_json(path, {"rows": 2, "findings": ["x" * 200]}),
        lambda path: write_text_atomically(path, "a new page\n" * 50),
    ],
    ids=["write_json", "write_text_atomically"],
)
def test_a_write_cut_short_leaves_the_previous_file_whole_and_no_temporary(tmp_path, monkeypatch, write):
    path = tmp_path / "verdict.json"
    path.write_text('{"rows": 1}\n', encoding="utf-8")
    cut_short_writes(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        write(path)
    assert path.read_text(encoding="utf-8") == '{"rows": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["verdict.json"]


def test_the_quarantine_reason_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    source = tmp_path / "batch.csv"
    source.write_bytes(b"id\n1\n")
    destination = tmp_path / "quarantine"
    cut_short_writes(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        quarantine(Source(name="batch", path=source), [Finding("batch", None, "not_empty", "x")], destination, {})
    assert not (destination / "reason.json").exists(), "a torn reason.json would be worse than none"


# --- temporaries of killed writers -------------------------------------------------------------------------------

# A writer in its own process: it writes its temporary of the target, prints its path, then either
# SIGKILLs itself there (as the OOM killer would) or sleeps holding it (a live writer).
WRITER = """
import os, signal, sys, time
from pathlib import Path
from churnops.data.storage import replaced_atomically
with replaced_atomically(Path(sys.argv[1])) as temporary:
    temporary.write_text("half of a new file")
    print(temporary, flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(600)
"""


def writer(target, how: str):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", WRITER, str(target), how], stdout=subprocess.PIPE, text=True)


def test_the_next_write_removes_a_killed_writers_temporary_but_not_a_live_ones(tmp_path):
    import signal
    from pathlib import Path

    target = tmp_path / "predictions.parquet"
    target.write_text("the previous file")
    live = writer(target, "sleep")
    try:
        live_temporary = Path(live.stdout.readline().strip())
        killed = writer(target, "die")
        killed_temporary = Path(killed.stdout.readline().strip())
        killed.communicate(timeout=60)
        assert killed.returncode == -signal.SIGKILL
        # neither is this target's: another file's temporary, a file that only looks like one
        other_target = tmp_path / f".predictions.parquet.json.{killed_temporary.name.split('.')[-2]}.tmp"
        stranger = tmp_path / ".predictions.parquet.notes.tmp"
        for path in (other_target, stranger):
            path.write_text("not ours")
        assert killed_temporary.exists() and live_temporary.exists()
        assert target.read_text() == "the previous file"

        write_text_atomically(target, "the new file")

        assert target.read_text() == "the new file"
        assert not killed_temporary.exists(), "the killed writer's temporary is removed"
        assert live_temporary.exists(), "a live writer's temporary is never touched"
        assert other_target.exists() and stranger.exists()
    finally:
        live.kill()
        live.communicate(timeout=60)


def test_a_temporary_of_another_host_or_a_reused_pid_is_judged_by_its_owner(tmp_path):
    import os

    from churnops.data.storage import remove_stale_temporaries
    from churnops.processes import process_owner

    host, pid, started = process_owner().rsplit("_", 2)
    target = tmp_path / "report.json"
    elsewhere = tmp_path / f".report.json.other-host_{pid}_1_abc.tmp"  # its process cannot be seen from here
    reused_pid = tmp_path / f".report.json.{host}_{pid}_{int(started) - 500}_abc.tmp"  # this pid, an older process
    mine = tmp_path / f".report.json.{host}_{os.getpid()}_{started}_abc.tmp"
    for path in (elsewhere, reused_pid, mine):
        path.write_text("x")
    assert remove_stale_temporaries(target) == [reused_pid]
    assert elsewhere.exists() and mine.exists()
