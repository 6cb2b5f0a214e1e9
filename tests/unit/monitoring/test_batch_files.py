"""monitoring.intake.batch_files: a day's folder listed without following links."""

from __future__ import annotations

import os

from churnops.monitoring import batch_files
from tests.helpers import make_special


def test_links_and_special_files_are_listed_so_that_checking_refuses_them(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("id\n1\n")
    day = tmp_path / "date=2026-05-01"
    day.mkdir()
    (day / "a.csv").write_text("id\n1\n")
    os.symlink(outside / "secret.csv", day / "b.csv")
    os.symlink(outside, day / "c.parquet")  # a link to a folder is still a link
    make_special(day / "d.csv", "fifo")
    make_special(day / "e.pq", "char_device")
    (day / "f.csv").mkdir()  # a folder is not a file
    (day / "g.json").write_text("{}")
    assert [p.name for p in batch_files(day)] == ["a.csv", "b.csv", "c.parquet", "d.csv", "e.pq"]
    assert batch_files(tmp_path / "absent") == []
