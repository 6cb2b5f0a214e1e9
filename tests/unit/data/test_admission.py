"""churnops.data.admission: only regular files are read, within the size limits, before any row is parsed."""

from __future__ import annotations

import io
import json
import os
import random
import tracemalloc
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnops.config import ChurnopsConfig, Source
from churnops.data import (
    Finding,
    NotRegularFileError,
    SourceReadError,
    admission_findings,
    file_kind,
    file_sha256,
    iter_source,
    open_regular,
    probe_source,
    quarantine,
    read_source,
    validate_source,
    validate_source_in_chunks,
)
from churnops.data.admission import longest_line
from churnops.data.sources import csv_cut_short
from tests.helpers import SPECIAL_KINDS, deadline, make_special

SECRET = b"id,age,income,plan,flag,y\nSECRET-TOKEN-7f3a,1,2,a,b,yes\n"
LONG = b"c9,1,2," + b"p" * 5000 + b",no,yes"  # a row of 5,014 bytes


@pytest.fixture
def config(toy_config) -> ChurnopsConfig:
    return toy_config()


def limited(config: ChurnopsConfig, **limits: int) -> ChurnopsConfig:
    return config.model_copy(update={"validation": config.validation.model_copy(update=limits)})


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def toy_csv(rows: int = 5) -> bytes:
    lines = ["id,age,income,plan,flag,y"] + [f"c{i},{20 + i},{1000 + i},basic,no,yes" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file of secrets outside the data folder: a valid table, so that following a link to it would pass."""
    path = tmp_path / "elsewhere" / "secret.csv"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def name_of(kind: str, folder: Path, secret: Path) -> tuple[Path, str]:
    """``folder/main.csv`` made a link to ``secret`` or a special file; what ``file_kind`` says of it."""
    folder.mkdir(exist_ok=True)
    path = folder / "main.csv"
    if kind in ("link_to_secret", "dangling_link"):
        target = secret if kind == "link_to_secret" else folder / "nowhere.csv"
        os.symlink(target, path)
        return path, f"symbolic link to {str(target)!r}"
    return path, make_special(path, kind)


KINDS = ("link_to_secret", "dangling_link", *SPECIAL_KINDS)


# --- what a name is, and opening only regular files ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_file_kind_names_what_is_not_a_regular_file(kind, tmp_path, secret):
    path, expected = name_of(kind, tmp_path / "data", secret)
    assert file_kind(path) == expected
    assert file_kind(secret) == "regular file"
    assert file_kind(tmp_path) == "directory"
    assert file_kind(tmp_path / "absent.csv") == "missing"


@pytest.mark.parametrize("kind", KINDS)
def test_open_regular_refuses_without_reading_or_waiting(kind, tmp_path, secret):
    path, expected = name_of(kind, tmp_path / "data", secret)
    with deadline(10), pytest.raises(NotRegularFileError, match="not a regular file") as caught:
        open_regular(path)
    assert caught.value.kind == expected
    with open_regular(secret) as raw:
        assert raw.read() == SECRET


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda p: read_source(Source(name="main", path=p)), id="read_source"),
        pytest.param(lambda p: list(iter_source(Source(name="main", path=p), 2)), id="iter_source"),
        pytest.param(lambda p: read_source(Source(name="main", path=p, format="parquet")), id="read_parquet"),
    ],
)
def test_readers_refuse_what_is_not_a_regular_file(kind, read, tmp_path, secret):
    path, expected = name_of(kind, tmp_path / "data", secret)
    with deadline(10), pytest.raises(SourceReadError, match=f"is a {expected}") as caught:
        read(path)
    assert caught.value.rule == "regular_file"


@pytest.mark.parametrize("kind", KINDS)
def test_hashing_and_the_cut_short_check_refuse_a_link_or_special_file(kind, tmp_path, secret):
    path, _ = name_of(kind, tmp_path / "data", secret)
    with deadline(10):
        for read in (file_sha256, csv_cut_short):
            with pytest.raises(NotRegularFileError):
                read(path)


# --- every validation entry refuses first, naming the kind -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_validation_entries_refuse_with_rule_regular_file(kind, tmp_path, secret, config):
    path, expected = name_of(kind, tmp_path / "data", secret)
    source = Source(name="main", path=path)
    with deadline(20):
        found = [
            admission_findings(source, config),
            probe_source(source, config)[0],
            validate_source(source, config)[1],
            validate_source_in_chunks(source, config, 2),
        ]
    for findings in found:
        assert [(f.rule, f.column) for f in findings] == [("regular_file", None)]
        assert f"{path} is a {expected}, not a regular file" in findings[0].message
    assert validate_source(Source(name="main", path=secret), config)[1] == [], "the target itself would pass"


@pytest.mark.parametrize("kind", KINDS)
def test_quarantine_records_what_is_not_a_regular_file_without_its_target(kind, tmp_path, secret):
    path, expected = name_of(kind, tmp_path / "data", secret)
    finding = Finding("main", None, "regular_file", f"{path} is a {expected}")
    with deadline(10):
        destination = quarantine(Source(name="main", path=path), [finding], tmp_path / "q" / "main", {"step": "t"})
    assert sorted(p.name for p in destination.iterdir()) == ["reason.json"], "no copy of the target"
    reason = json.loads((destination / "reason.json").read_text())
    assert (reason["kind"], reason["copy"], reason["sha256"]) == (expected, None, None)
    assert reason["path"] == str(path) and reason["findings"][0]["rule"] == "regular_file"
    assert b"SECRET-TOKEN" not in (destination / "reason.json").read_bytes()


def test_quarantine_of_a_file_over_max_file_bytes_is_a_record_only(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(toy_csv(100))
    finding = Finding("main", None, "max_file_bytes", "too big")
    destination = quarantine(Source(name="main", path=path), [finding], tmp_path / "q", {})
    assert sorted(p.name for p in destination.iterdir()) == ["reason.json"]
    reason = json.loads((destination / "reason.json").read_text())
    assert (reason["kind"], reason["copy"], reason["sha256"]) == ("regular file", None, None)


# --- size limits, before any row is parsed ---------------------------------------------------------------------------


def wide_csv(columns: int) -> bytes:
    names = ["id", "age", "income", "plan", "flag", "y"] + [f"x{i}" for i in range(columns - 6)]
    return (
        ",".join(names) + "\n" + ",".join(["c1", "30", "5", "basic", "no", "yes"] + ["0"] * (columns - 6)) + "\n"
    ).encode()


def parquet_file(frame: pd.DataFrame, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, **options)
    return buffer.getvalue()


def bomb() -> bytes:
    """A Parquet file of a few kilobytes whose pages hold 8 MB once decompressed."""
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(8)], "y": ["yes"] * 8, "pad": ["0" * 1_000_000] * 8})
    return parquet_file(frame, compression="zstd", use_dictionary=False)


# case: (file name, content, limits, rule, text the message must hold)
LIMITS = {
    "file_bytes": ("main.csv", toy_csv(100), {"max_file_bytes": 1000}, "max_file_bytes", "bytes, above the limit"),
    "csv_columns": ("main.csv", wide_csv(40), {"max_columns": 30}, "max_columns", "40 columns in the header"),
    "parquet_columns": (
        "main.parquet",
        parquet_file(pd.DataFrame({f"x{i}": [1] for i in range(40)})),
        {"max_columns": 30},
        "max_columns",
        "40 columns",
    ),
    "header_line": (
        "main.csv",
        b"id," + b"a" * 5000 + b"\nc1,1\n",
        {"max_line_bytes": 1000},
        "max_line_bytes",
        "header",
    ),
    "data_line": (
        "main.csv",
        toy_csv(3) + LONG + b"\n" + toy_csv(3).split(b"\n", 1)[1],
        {"max_line_bytes": 1000},
        "max_line_bytes",
        f"a line of 5,014 bytes (from byte {len(toy_csv(3)):,})",
    ),
    "last_line_without_end": (
        "main.csv",
        toy_csv(3) + LONG,
        {"max_line_bytes": 1000},
        "max_line_bytes",
        "a line of 5,014 bytes",
    ),
    "parquet_bomb": (
        "main.parquet",
        bomb(),
        {"max_parquet_uncompressed_bytes": 4_000_000},
        "max_parquet_uncompressed_bytes",
        "bytes uncompressed",
    ),
}


@pytest.mark.parametrize("case", list(LIMITS))
def test_each_limit_rejects_before_any_row_is_parsed(case, tmp_path, config):
    name, content, limits, rule, text = LIMITS[case]
    path = tmp_path / name
    path.write_bytes(content)
    source = Source(name="main", path=path)
    strict = limited(config, **limits)
    for findings in (
        admission_findings(source, strict),
        probe_source(source, strict)[0],
        validate_source(source, strict)[1],
        validate_source_in_chunks(source, strict, 2),
    ):
        # The one finding, and no row rule: nothing read the rows.
        assert [(f.rule, f.column) for f in findings] == [(rule, None)], findings
        assert text in findings[0].message and f"above the limit {rule} " in findings[0].message
    assert rule not in rules(admission_findings(source, config)), "the default limits admit it"


def test_limits_at_the_value_admit_the_file(tmp_path, config):
    path = tmp_path / "main.csv"
    content = toy_csv(3) + LONG + b"\n"
    path.write_bytes(content)
    exact = limited(config, max_file_bytes=len(content), max_line_bytes=len(LONG), max_columns=6)
    assert admission_findings(Source(name="main", path=path), exact) == []


def test_the_line_scan_holds_a_block_not_the_line(tmp_path, config):
    path = tmp_path / "main.csv"
    with path.open("wb") as out:
        out.write(toy_csv(3))
        out.write(b"c9," + b"9" * (64 << 20) + b"\n")  # a 64 MiB line
    strict = limited(config, max_line_bytes=1 << 20)
    tracemalloc.start()
    try:
        found = admission_findings(Source(name="main", path=path), strict)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rules(found) == ["max_line_bytes"] and "67,108,867 bytes" in found[0].message
    assert peak < 8 << 20, f"peak {peak:,} bytes while scanning a 64 MiB line"


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("seed", range(5))
def test_longest_line_agrees_with_splitting_the_whole_file(block, seed):
    rng = random.Random(seed)
    content = bytes(rng.choice(b"ab\n\r") if rng.random() < 0.3 else ord("x") for _ in range(rng.randrange(0, 400)))
    lines = content.replace(b"\r", b"\n").split(b"\n")
    expected = max(map(len, lines))
    length, offset = longest_line(io.BytesIO(content), block)
    assert length == expected
    assert expected == 0 or content[offset : offset + length].replace(b"\r", b"\n").find(b"\n") == -1


def test_a_config_keeps_a_source_that_is_a_link_as_a_link(tmp_path, secret):
    from churnops.config import load_config
    from tests.helpers import edit_config, write_config

    def relative_accounts(raw: dict) -> None:
        for source in raw["dataset"]["sources"]:
            if source["name"] == "accounts":
                source["path"] = "data/accounts.csv"

    config_path = edit_config(write_config(tmp_path / "config.yaml"), relative_accounts)
    (tmp_path / "data").mkdir()
    os.symlink(secret, tmp_path / "data" / "accounts.csv")
    config = load_config(config_path)
    (accounts,) = [s for s in config.dataset.sources if s.name == "accounts"]
    assert accounts.path == tmp_path / "data" / "accounts.csv", "not resolved to what the link points at"
    assert rules(validate_source(accounts, config)[1]) == ["regular_file"]
