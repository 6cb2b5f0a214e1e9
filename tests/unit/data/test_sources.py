"""churnops.data.sources: raw reading, merging, the hash split, labels and dataset identity."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest

from churnops.config import ChurnopsConfig, DatasetConfig, Source, load_config
from churnops.data.sources import (
    SourceReadError,
    assign_split,
    file_sha256,
    iter_source,
    label_vector,
    merge_sources,
    read_source,
    sources_digest,
)
from churnops.data.storage import atomic_parquet_writer
from churnops.data.values import coerce_types
from tests.helpers import TELCO_DATA

# --- the shipped Telco files -------------------------------------------------------------------------------------


def provenance_table() -> dict[str, tuple[int, str]]:
    """{file name: (row count, sha256)} from the table in PROVENANCE.md."""
    text = (TELCO_DATA / "PROVENANCE.md").read_text()
    rows = re.findall(r"^\| `([\w.]+\.csv)` \| ([\d,]+) \| [^|]+ \| `([0-9a-f]{64})` \|$", text, flags=re.M)
    return {name: (int(count.replace(",", "")), sha) for name, count, sha in rows}


def test_provenance_table_lists_every_shipped_file():
    table = provenance_table()
    assert sorted(table) == sorted(p.name for p in TELCO_DATA.glob("*.csv"))
    assert sorted(table) == ["accounts.csv", "customers.csv", "services.csv"]


@pytest.mark.parametrize("name", ["customers.csv", "services.csv", "accounts.csv"])
def test_shipped_file_matches_provenance(name):
    rows, sha = provenance_table()[name]
    path = TELCO_DATA / name
    assert file_sha256(path) == sha == hashlib.sha256(path.read_bytes()).hexdigest()
    frame = read_source(Source(name=name.removesuffix(".csv"), path=path))
    assert len(frame) == rows == 4930
    assert frame["customerid"].is_unique
    assert frame["customerid"].str.strip().ne("").all()


def test_shipped_sources_share_the_same_ids():
    config = load_config()
    ids = [set(read_source(s)["customerid"]) for s in config.dataset.sources]
    assert ids[0] == ids[1] == ids[2]


def test_read_source_keeps_blanks_as_text():
    accounts = next(s for s in load_config().dataset.sources if s.name == "accounts")
    frame = read_source(accounts)
    assert all(pd.api.types.is_object_dtype(d) for d in frame.dtypes)
    blanks = frame["totalcharges"] == " "
    assert blanks.sum() == 8
    assert frame["totalcharges"].notna().all()
    assert set(frame.loc[blanks, "tenure"]) == {"0"}
    typed = coerce_types(frame, load_config().dataset)
    assert typed["totalcharges"].dtype == np.float64
    assert typed["totalcharges"].isna().sum() == 8


# --- reading -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"id,v\n1, \n2,NA\n3,007\n", {"id": ["1", "2", "3"], "v": [" ", "NA", "007"]}),
        (b"id,v\n1,\n", {"id": ["1"], "v": [""]}),
    ],
)
def test_read_source_csv_cells_are_verbatim_text(tmp_path, content, expected):
    path = tmp_path / "s.csv"
    path.write_bytes(content)
    assert read_source(Source(name="s", path=path)).to_dict("list") == expected


def test_read_source_parquet_keeps_stored_types(tmp_path):
    path = tmp_path / "s.parquet"
    pd.DataFrame({"id": ["a", "b"], "n": [1.5, np.nan], "flag": [1, 0]}).to_parquet(path)
    frame = read_source(Source(name="s", path=path))
    assert frame["n"].dtype == np.float64 and frame["flag"].dtype == np.int64
    assert frame["id"].tolist() == ["a", "b"]


def test_read_source_empty_file_is_an_empty_frame(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert read_source(Source(name="s", path=path)).shape == (0, 0)


def a_day(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(rows)],
            "n": rng.normal(size=rows),
            "cat": rng.choice(["a", "b", None], size=rows),
            "flag": rng.integers(0, 2, size=rows),
        }
    )


def written(tmp_path, kind: str, frame: pd.DataFrame):
    import pyarrow as pa

    path = tmp_path / f"day.{'csv' if kind == 'csv' else 'parquet'}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "parquet-with-index":
        frame.set_index("id").to_parquet(path)
    else:  # several row groups, text dictionary-encoded, as churnops simulate writes them
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with atomic_parquet_writer(path, table.schema, use_dictionary=["cat"], store_schema=False) as writer:
            writer.write_table(table, row_group_size=700)
    return Source(name="day", path=path)


@pytest.mark.parametrize("kind", ["csv", "parquet", "parquet-with-index"])
@pytest.mark.parametrize("chunk_rows", [1, 333, 700, 5000])
def test_iter_source_chunks_concatenate_to_read_source(tmp_path, kind, chunk_rows):
    source = written(tmp_path, kind, a_day(2_000) if chunk_rows > 1 else a_day(5))
    chunks = list(iter_source(source, chunk_rows))
    assert all(0 < len(c) <= chunk_rows for c in chunks)
    whole = read_source(source)  # a stored pandas index (here the id) is not a column, chunked or not
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole.reset_index(drop=True))


@pytest.mark.parametrize("kind", ["csv", "parquet", "parquet-with-index"])
def test_iter_source_row_ranges_are_cut_like_the_whole_file(tmp_path, kind):
    source = written(tmp_path, kind, a_day(2_000))  # Parquet: row groups of 700, not a multiple of 300
    whole = list(iter_source(source, 300))
    assert [len(c) for c in whole] == [300] * 6 + [200]
    assert [c.index[0] for c in whole] == list(range(0, 2_000, 300)), "chunks are labelled by row position"
    shard = list(iter_source(source, 300, start=600, stop=1_500))  # what a shard of chunks 2-4 reads
    assert len(shard) == 3
    for got, expected in zip(shard, whole[2:5], strict=True):
        pd.testing.assert_frame_equal(got, expected)
    frame = pd.concat(whole)
    for start, stop in [(650, 710), (1_999, None), (1_800, 5_000), (700, 700)]:
        chunks = list(iter_source(source, 300, start=start, stop=stop))
        expected = frame.iloc[start:stop]
        if len(expected):
            pd.testing.assert_frame_equal(pd.concat(chunks), expected)
        else:
            assert chunks == []
    with pytest.raises(ValueError, match="bad row range"):
        list(iter_source(source, 300, start=10, stop=5))


@pytest.mark.parametrize("kind", ["csv", "parquet", "parquet-with-index"])
@pytest.mark.parametrize("unique_text", [("id",), ("id", "cat", "n", "absent")])
def test_iter_source_reads_unique_text_columns_into_the_same_frame(tmp_path, kind, unique_text):
    frame = a_day(2_000)
    frame.loc[[3, 700], "id"] = [None, ""]  # missing and blank ids stay what they are
    source = written(tmp_path, kind, frame)
    for columns in (None, ["cat", "id", "n"], ["id"]):
        if kind == "parquet-with-index" and columns is not None:
            continue  # the id is the stored index there, not a column
        plain = list(iter_source(source, 300, columns))
        fast = list(iter_source(source, 300, columns, unique_text=unique_text))
        assert len(plain) == len(fast) == 7
        for got, expected in zip(fast, plain, strict=True):
            pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_iter_source_masks_are_the_missing_masks_of_each_chunk(tmp_path, kind):
    from churnops.data.values import missing_mask

    frame = a_day(2_000)
    frame.loc[[5, 699, 700, 1_400], "cat"] = [" NA ", "null", "", " a "]  # null tokens among the categories
    frame.loc[[3, 700, 701, 1_999], "id"] = [None, "", "  N/A\t", " c1 "]
    source = written(tmp_path, kind, frame)
    for unique_text in ((), ("id",)):
        for start, stop in [(0, None), (650, 1_710), (1_999, None)]:
            masks: dict = {}
            chunks = 0
            columns = ["id", "cat"]
            for chunk in iter_source(
                source, 300, columns, start=start, stop=stop, unique_text=unique_text, masks=masks
            ):
                chunks += 1
                if kind == "csv":
                    assert masks == {}  # CSV cells are judged by whoever reads them
                    continue
                # the dictionary-encoded column (row groups of 700, chunks of 300), and the ids read one by one
                assert sorted(masks) == sorted(["cat", *unique_text])
                for column, mask in masks.items():
                    assert mask.tolist() == missing_mask(chunk[column]).tolist()
            assert chunks > 0


def test_iter_source_reads_only_the_columns_asked_for(tmp_path):
    for kind in ("csv", "parquet"):
        source = written(tmp_path, kind, a_day(50))
        chunks = list(iter_source(source, 20, ["cat", "id"]))
        assert {tuple(c.columns) for c in chunks} == {("id", "cat")} if kind == "csv" else {("cat", "id")}
        with pytest.raises(SourceReadError, match="absent"):
            list(iter_source(source, 20, ["id", "absent"]))


def test_iter_source_empty_and_bad_input(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert list(iter_source(Source(name="s", path=empty), 10)) == []
    with pytest.raises(SourceReadError, match="file not found"):
        list(iter_source(Source(name="s", path=tmp_path / "absent.parquet"), 10))
    with pytest.raises(ValueError, match="chunk_rows"):
        list(iter_source(Source(name="s", path=empty), 0))


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("absent.csv", None, "file not found"),
        ("binary.csv", b"\x89PNG\r\n\x1a\n\xff\xfe\x00garbage", "unreadable csv"),
        ("ragged.csv", b"a,b\n1,2\n1,2,3,4\n", "unreadable csv"),
        ("binary.parquet", b"not a parquet file at all", "unreadable parquet"),
    ],
)
def test_read_source_errors_name_the_source(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceReadError, match=match) as caught:
        read_source(Source(name="src", path=path))
    assert caught.value.source == "src"
    assert "'src'" in str(caught.value)


# --- merging -----------------------------------------------------------------------------------------------------


def test_merge_sources_inner_join_sorted_with_report():
    frames = {
        "a": pd.DataFrame({"id": ["3", "1", "2", "9"], "x": ["c", "a", "b", "z"]}),
        "b": pd.DataFrame({"id": ["2", "3", "1", "7", "8"], "y": [20, 30, 10, 70, 80]}),
        "c": pd.DataFrame({"z": [True, False, True], "id": ["1", "2", "3"]}),
    }
    merged, report = merge_sources(frames, "id")
    assert merged.to_dict("list") == {
        "id": ["1", "2", "3"],
        "x": ["a", "b", "c"],
        "y": [10, 20, 30],
        "z": [True, False, True],
    }
    assert merged.index.tolist() == [0, 1, 2]
    assert report == {
        "a": {"rows": 4, "unmatched": 1, "unmatched_fraction": 0.25, "unmatched_sample": ["9"]},
        "b": {"rows": 5, "unmatched": 2, "unmatched_fraction": 0.4, "unmatched_sample": ["7", "8"]},
        "c": {"rows": 3, "unmatched": 0, "unmatched_fraction": 0.0, "unmatched_sample": []},
    }


def test_merge_sources_order_of_rows_does_not_matter():
    a = pd.DataFrame({"id": [f"{i:03d}" for i in range(20)], "x": range(20)})
    b = pd.DataFrame({"id": [f"{i:03d}" for i in range(5, 25)], "y": range(5, 25)})
    first, _ = merge_sources({"a": a, "b": b}, "id")
    second, _ = merge_sources({"a": a.sample(frac=1, random_state=1), "b": b.sample(frac=1, random_state=2)}, "id")
    pd.testing.assert_frame_equal(first, second)
    assert first["id"].tolist() == [f"{i:03d}" for i in range(5, 20)]


def test_merge_sources_unmatched_sample_is_capped():
    a = pd.DataFrame({"id": [str(i) for i in range(100, 130)], "x": 1})
    b = pd.DataFrame({"id": ["100"], "y": 2})
    _, report = merge_sources({"a": a, "b": b}, "id")
    assert report["a"]["unmatched"] == 29
    assert report["a"]["unmatched_sample"] == [str(i) for i in range(101, 111)]


def test_merge_sources_rejects_a_repeated_column():
    frames = {
        "a": pd.DataFrame({"id": ["1"], "x": [1]}),
        "b": pd.DataFrame({"id": ["1"], "y": [2]}),
        "c": pd.DataFrame({"id": ["1"], "x": [3]}),
    }
    with pytest.raises(ValueError, match=r"'c' repeats columns \['x'\]"):
        merge_sources(frames, "id")


def test_merge_sources_of_the_telco_files():
    config = load_config()
    frames = {s.name: coerce_types(read_source(s), config.dataset) for s in config.dataset.sources}
    merged, report = merge_sources(frames, config.dataset.id_column)
    assert merged.shape == (4930, 1 + len(config.dataset.feature_columns) + 1)
    assert merged["customerid"].is_monotonic_increasing
    assert all(r["unmatched"] == 0 for r in report.values())


# --- the split ---------------------------------------------------------------------------------------------------


IDS = pd.Series([f"cust-{i:05d}" for i in range(10_000)])


def test_assign_split_share_is_close_to_test_fraction():
    for fraction in (0.1, 0.2, 0.5):
        share = (assign_split(IDS, fraction, salt="toy") == "test").mean()
        assert abs(share - fraction) < 0.02, (fraction, share)
    assert set(assign_split(IDS, 0.2, salt="toy")) == {"train", "test"}


def test_assign_split_is_per_id_whatever_the_row_order_or_company():
    full = dict(zip(IDS, assign_split(IDS, 0.2, salt="toy"), strict=True))
    shuffled = IDS.sample(frac=1, random_state=0)
    split = assign_split(shuffled, 0.2, salt="toy")
    assert split.index.equals(shuffled.index)
    assert dict(zip(shuffled, split, strict=True)) == full
    subset = IDS.iloc[::7].reset_index(drop=True)
    assert dict(zip(subset, assign_split(subset, 0.2, salt="toy"), strict=True)) == {i: full[i] for i in subset}
    one = assign_split(pd.Series(["cust-00042"], index=[99]), 0.2, salt="toy")
    assert one.to_dict() == {99: full["cust-00042"]}


def test_assign_split_is_a_known_function_of_salt_and_id():
    def expected(value: str, salt: str, fraction: float) -> str:
        digest = hashlib.sha256(f"{salt}:{value}".encode()).digest()
        return "test" if int.from_bytes(digest[:8], "big") / 2**64 < fraction else "train"

    sample = IDS.iloc[:200]
    assert assign_split(sample, 0.3, salt="telco").tolist() == [expected(v, "telco", 0.3) for v in sample]


def test_assign_split_salt_changes_the_assignment():
    a = assign_split(IDS, 0.2, salt="telco")
    b = assign_split(IDS, 0.2, salt="other")
    assert (a != b).mean() > 0.2  # independent draws disagree on ~32 % of ids


def test_assign_split_is_nested_across_fractions():
    small = assign_split(IDS, 0.1, salt="toy") == "test"
    large = assign_split(IDS, 0.3, salt="toy") == "test"
    assert (small & ~large).sum() == 0


# --- labels ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("positive", "labels", "expected"),
    [
        ("1", [0, 1, 1, 0], [0, 1, 1, 0]),
        (1, [0, 1, 1, 0], [0, 1, 1, 0]),
        (1, [0.0, 1.0, np.nan], [0, 1, 0]),
        (1, ["0", "1", "1"], [0, 1, 1]),
        ("yes", ["yes", "no", "Yes", None], [1, 0, 0, 0]),
        ("True", [True, False], [1, 0]),
    ],
)
def test_label_vector_compares_as_text(positive, labels, expected, toy_config):
    frame = pd.DataFrame({"y": pd.Series(labels, dtype=object if None in labels else None)})
    result = label_vector(frame, toy_config(positive_label=positive))
    assert result.dtype == np.int64
    assert result.tolist() == expected


# --- dataset identity --------------------------------------------------------------------------------------------


def test_sources_digest_changes_when_one_byte_changes(telco_copy):
    config = load_config(telco_copy)
    before = sources_digest(config)
    assert before == sources_digest(load_config(telco_copy))
    assert len(before) == 64
    target = next(s.path for s in config.dataset.sources if s.name == "services")
    data = bytearray(target.read_bytes())
    position = data.index(b"DSL")
    data[position] = ord("d")
    target.write_bytes(bytes(data))
    after = sources_digest(config)
    assert after != before
    data[position] = ord("D")
    target.write_bytes(bytes(data))
    assert sources_digest(config) == before


def test_sources_digest_depends_on_source_names(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,age\n1,2\n")

    def config(name: str) -> ChurnopsConfig:
        return ChurnopsConfig(
            dataset=DatasetConfig(
                name="d",
                id_column="id",
                target="y",
                positive_label="1",
                sources=[Source(name=name, path=path)],
                numeric_features=["age"],
            )
        )

    assert sources_digest(config("a")) != sources_digest(config("b"))
    assert sources_digest(load_config()) == sources_digest(load_config())


@pytest.mark.parametrize(
    ("payload", "cut"),
    [
        (b"a,b,c\n1,2,3\n4,5,6\n", False),  # complete
        (b"a,b,c\n1,2,3\n4,5,6", False),  # complete, no final line end
        (b"a,b,c\n1,2,3\n4,5", True),  # cut inside the last line
        (b"a,b,c\n1,2,3\n4,", True),
        (b"a,b,c\n1,2,3\n4,5\n", False),  # short but complete: the row rules judge its blanks
        (b"a,b,c", False),  # a header alone
        (b"", False),
        (b'a,b,c\n1,"two\nlines",3\n', False),  # a quoted field spanning lines
        (b'a,b,c\n1,2,3\n2,"two\nlines",3', False),  # the same, last, without a final line end
        (b"a,b,c\r\n1,2,3\r\n4,5", True),  # Windows line ends
        (b"a,b,c\r1,2,3\r4,5", True),  # old Mac line ends
        (b"a,b,c\r1,2,3\r4,5,6", False),
        (b"a,b,c\n1,2,3\n \x1a", False),  # padding after the last line end
    ],
)
def test_csv_cut_short_finds_a_last_line_cut_off(tmp_path, payload, cut):
    from churnops.data.sources import csv_cut_short

    path = tmp_path / "f.csv"
    path.write_bytes(payload)
    why = csv_cut_short(path)
    assert (why is not None) == cut, why
    if cut:
        assert "of 3 fields" in why and "cut short" in why


def test_csv_cut_short_finds_a_cut_at_the_end_of_a_big_file(tmp_path):
    from churnops.data.sources import csv_cut_short

    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b,c\n" + b"1,2,3\n" * 100_000 + b"7,8")
    assert "2 of 3 fields" in csv_cut_short(path, tail_bytes=1024)
    path.write_bytes(b"a,b,c\n" + b"x" * 5000)  # a last line longer than the tail: cannot tell, so no claim
    assert csv_cut_short(path, tail_bytes=1024) is None
