"""churnops.data.validation: rules on raw frames, unreadable files and the error message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from churnops.config import ChurnopsConfig, Source
from churnops.data.findings import DataValidationError, Finding
from churnops.data.tally import Tally, tally_findings
from churnops.data.validation import (
    probe_source,
    validate_chunks,
    validate_frame,
    validate_source,
    validate_source_in_chunks,
)
from churnops.errors import ChurnopsInputError


def make_config(negative_label: str | None = "no", **validation) -> ChurnopsConfig:
    return ChurnopsConfig.model_validate(
        {
            "dataset": {
                "name": "toy",
                "id_column": "id",
                "target": "y",
                "positive_label": "yes",
                "negative_label": negative_label,
                "sources": [{"name": "main", "path": "/nonexistent/main.csv", "columns": ["age", "plan", "y"]}],
                "numeric_features": ["age"],
                "categorical_features": ["plan"],
            },
            "validation": {
                "min_rows": 3,
                "max_null_fraction": 0.25,
                "ranges": {"age": {"min": 0, "max": 120}},
                **validation,
            },
        }
    )


CONFIG = make_config()
SOURCE = CONFIG.dataset.sources[0]


def valid_frame() -> pd.DataFrame:
    """Four rows, every cell a string as read_source gives them for a CSV."""
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "age": ["30", "45", "60", "70"],
            "plan": ["basic", "pro", "basic", "pro"],
            "y": ["yes", "no", "no", "yes"],
        }
    )


def rules(findings: list[Finding]) -> list[tuple[str, str | None]]:
    return [(f.rule, f.column) for f in findings]


def setting(column: str, row: int, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return mutate


def setting_many(column: str, values: list[str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = values
        return frame

    return mutate


def test_valid_frame_has_no_findings():
    assert validate_frame(valid_frame(), SOURCE, CONFIG) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(lambda f: f.drop(columns="plan"), ("required_column", "plan"), id="missing-feature-column"),
        pytest.param(lambda f: f.drop(columns="y"), ("required_column", "y"), id="missing-target-column"),
        pytest.param(lambda f: f.drop(columns="id"), ("required_column", "id"), id="missing-id-column"),
        pytest.param(setting("age", 0, "abc"), ("numeric_type", "age"), id="not-a-number"),
        pytest.param(setting("age", 0, "30 years"), ("numeric_type", "age"), id="number-with-text"),
        pytest.param(setting("age", 1, "inf"), ("finite", "age"), id="inf"),
        pytest.param(setting("age", 1, "-Infinity"), ("finite", "age"), id="minus-infinity"),
        pytest.param(setting("age", 2, "120.5"), ("range", "age"), id="above-max"),
        pytest.param(setting("age", 2, "-1"), ("range", "age"), id="below-min"),
        pytest.param(setting_many("age", ["30", " ", "NA", "70"]), ("max_null_fraction", "age"), id="numeric-nulls"),
        pytest.param(
            setting_many("plan", ["basic", "", "null", "pro"]), ("max_null_fraction", "plan"), id="categorical-nulls"
        ),
        pytest.param(setting("id", 3, " "), ("id_not_null", "id"), id="blank-id"),
        pytest.param(setting("id", 3, "N/A"), ("id_not_null", "id"), id="null-token-id"),
        pytest.param(setting("id", 3, "a"), ("id_unique", "id"), id="duplicate-id"),
        pytest.param(setting("y", 0, "maybe"), ("label_values", "y"), id="unexpected-label"),
        pytest.param(setting("y", 0, "Yes"), ("label_values", "y"), id="label-case-matters"),
        pytest.param(setting_many("y", ["no", "no", "no", "no"]), ("label_values", "y"), id="no-positive-label"),
        pytest.param(setting("y", 1, ""), ("label_not_null", "y"), id="blank-label"),
        pytest.param(lambda f: f.iloc[:0], ("not_empty", None), id="header-only"),
        pytest.param(lambda f: pd.DataFrame(), ("not_empty", None), id="no-columns"),
        pytest.param(lambda f: f.iloc[:2], ("min_rows", None), id="too-few-rows"),
    ],
)
def test_each_rule(mutate, expected):
    findings = validate_frame(mutate(valid_frame()), SOURCE, CONFIG)
    assert rules(findings) == [expected]
    assert all(f.source == "main" and f.message for f in findings)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(setting("age", 0, "0"), id="range-min-inclusive"),
        pytest.param(setting("age", 0, "120"), id="range-max-inclusive"),
        pytest.param(setting("age", 0, " 42 "), id="padded-number"),
        pytest.param(setting("age", 0, "1e2"), id="exponent"),
        pytest.param(setting("age", 0, " "), id="null-share-at-limit"),
        pytest.param(setting("plan", 0, "NA"), id="categorical-null-share-at-limit"),
        pytest.param(lambda f: f.assign(extra=["x", "", "", ""]), id="extra-column"),
        pytest.param(lambda f: f.iloc[:3], id="exactly-min-rows"),
        pytest.param(lambda f: f.iloc[::-1], id="any-row-order"),
    ],
)
def test_accepted_variations(mutate):
    assert validate_frame(mutate(valid_frame()), SOURCE, CONFIG) == []


def test_several_problems_are_all_reported():
    frame = valid_frame()
    frame.loc[0, "age"] = "abc"
    frame.loc[1, "age"] = "500"
    frame.loc[2, "id"] = "a"
    frame.loc[3, "y"] = "maybe"
    assert sorted(rules(validate_frame(frame, SOURCE, CONFIG))) == [
        ("id_unique", "id"),
        ("label_values", "y"),
        ("numeric_type", "age"),
        ("range", "age"),
    ]


def test_per_column_null_limit_overrides_the_default():
    frame = setting_many("age", ["30", " ", "", "70"])(valid_frame())
    assert rules(validate_frame(frame, SOURCE, CONFIG)) == [("max_null_fraction", "age")]
    relaxed = make_config(null_fraction={"age": 0.5})
    assert validate_frame(frame, relaxed.dataset.sources[0], relaxed) == []
    strict = make_config(null_fraction={"plan": 0.0})
    frame = setting("plan", 0, "")(valid_frame())
    assert rules(validate_frame(frame, strict.dataset.sources[0], strict)) == [("max_null_fraction", "plan")]


def test_columns_of_other_sources_are_not_required():
    config = ChurnopsConfig.model_validate(
        {
            **CONFIG.model_dump(mode="json"),
            "dataset": {
                **CONFIG.dataset.model_dump(mode="json"),
                "sources": [
                    {"name": "left", "path": "/x/left.csv", "columns": ["age"]},
                    {"name": "right", "path": "/x/right.csv", "columns": ["plan", "y"]},
                ],
            },
        }
    )
    left = pd.DataFrame({"id": ["a", "b", "c"], "age": ["1", "2", "3"]})
    assert validate_frame(left, config.dataset.sources[0], config) == []
    findings = validate_frame(left.drop(columns="age"), config.dataset.sources[0], config)
    assert [(f.source, f.rule, f.column) for f in findings] == [("left", "required_column", "age")]


def test_parquet_typed_frame_is_checked_too():
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "age": [30.0, float("nan"), 500.0], "plan": ["a", "b", None], "y": ["yes", "no", "yes"]}
    )
    config = make_config(max_null_fraction=0.4)
    assert rules(validate_frame(frame, SOURCE, config)) == [("range", "age")]
    frame["age"] = [30.0, float("inf"), 50.0]
    assert rules(validate_frame(frame, SOURCE, config)) == [("finite", "age")]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["yes", "no", "no", "yes"], []),
        (["yes", "stayed", "stayed", "yes"], []),
        (["yes", "0", "0", "0"], []),
        (["yes", "no", "stayed", "yes"], [("label_values", "y")]),
        (["no", "no", "stayed", "stayed"], [("label_values", "y")]),
        (["stayed", "stayed", "stayed", "stayed"], [("label_values", "y")]),
        (["yes", "yes", "yes", "yes"], []),
    ],
)
def test_without_negative_label_any_single_other_value_is_accepted(labels, expected):
    config = make_config(negative_label=None)
    frame = valid_frame().assign(y=labels)
    assert rules(validate_frame(frame, config.dataset.sources[0], config)) == expected


def test_numeric_labels_match_a_numeric_positive_label():
    config = ChurnopsConfig.model_validate(
        {
            **CONFIG.model_dump(mode="json"),
            "dataset": {**CONFIG.dataset.model_dump(mode="json"), "positive_label": 1, "negative_label": 0},
        }
    )
    assert validate_frame(valid_frame().assign(y=["1", "0", "0", "1"]), SOURCE, config) == []
    assert validate_frame(valid_frame().assign(y=[1.0, 0.0, 0.0, 1.0]), SOURCE, config) == []
    assert rules(validate_frame(valid_frame().assign(y=["1", "0", "2", "1"]), SOURCE, config)) == [
        ("label_values", "y")
    ]


# --- validate_source ---------------------------------------------------------------------------------------------


def test_validate_source_reads_and_checks(tmp_path):
    path = tmp_path / "main.csv"
    valid_frame().to_csv(path, index=False)
    frame, findings = validate_source(Source(name="main", path=path, columns=["age", "plan", "y"]), CONFIG)
    assert findings == []
    pd.testing.assert_frame_equal(frame, valid_frame())
    path.write_text("id,age,plan,y\na,30,basic,yes\nb,abc,pro,no\nc,40,pro,no\n")
    _, findings = validate_source(Source(name="main", path=path), CONFIG)
    assert rules(findings) == [("numeric_type", "age")]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("absent.csv", None, "file not found"),
        ("garbage.csv", b"\x89PNG\r\n\x1a\n\x00\xff\xfe\xfa" * 20, "unreadable csv"),
        ("garbage.parquet", b"\x00\x01\x02 not parquet", "unreadable parquet"),
        ("ragged.csv", b"id,age\n1,2\n3,4,5,6\n", "unreadable csv"),
    ],
)
def test_validate_source_unreadable_file_is_a_finding(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    frame, findings = validate_source(Source(name="main", path=path), CONFIG)
    assert frame.empty
    assert rules(findings) == [("readable", None)]
    assert findings[0].source == "main"
    assert findings[0].message.startswith(match)
    assert str(path) in findings[0].message


def test_validate_source_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    _, findings = validate_source(Source(name="main", path=path), CONFIG)
    assert rules(findings) == [("not_empty", None)]


# --- the error ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("findings", "folder", "expected"),
    [
        (
            [Finding("accounts", "tenure", "range", "1 values outside [0, 120], e.g. 500")],
            None,
            "validation failed: source 'accounts', column 'tenure': range: 1 values outside [0, 120], e.g. 500",
        ),
        (
            [Finding("accounts", None, "min_rows", "2 rows"), Finding("accounts", "x", "finite", "1 inf")],
            None,
            "validation failed: source 'accounts': min_rows: 2 rows (+1 more)",
        ),
        (
            [Finding("customers", "id", "id_unique", "dup")],
            "/q/run",
            "validation failed: source 'customers', column 'id': id_unique: dup; input quarantined in /q/run",
        ),
    ],
)
def test_data_validation_error_message(findings, folder, expected):
    error = DataValidationError(findings, Path(folder) if folder else None)
    assert str(error) == expected
    assert error.findings == findings
    assert isinstance(error, ChurnopsInputError)


# --- in chunks ---------------------------------------------------------------------------------------------------


def messy_frame() -> pd.DataFrame:
    """Every rule broken somewhere, the problems spread over what become different chunks."""
    rows = 40
    frame = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(rows)],
            "age": [str(20 + i) for i in range(rows)],
            "plan": ["basic", "pro"] * (rows // 2),
            "y": ["yes", "no"] * (rows // 2),
        }
    )
    frame.loc[3, "id"] = "c30"  # repeats across chunks (c30 also at row 30)
    frame.loc[[5, 6], "id"] = "c5"  # ... and within one
    frame.loc[[7, 38], "id"] = ["", None]  # no id
    frame.loc[[2, 25], "age"] = ["abc", "zzz"]  # not numbers
    frame.loc[12, "age"] = "inf"  # infinite (not counted as out of range)
    frame.loc[[14, 29, 33], "age"] = ["130", "999", "-5"]  # out of range; the first in file order is 130
    frame.loc[list(range(16, 28)), "plan"] = " "  # 12 of 40 null: above 25 %
    frame.loc[[9, 36], "y"] = ["maybe", ""]  # unexpected label; no label
    return frame


@pytest.mark.parametrize("chunk_rows", [1, 7, 13, 40])
def test_chunked_findings_equal_the_whole_frame(chunk_rows):
    frame = messy_frame()
    whole = validate_frame(frame, SOURCE, CONFIG)
    assert {f.rule for f in whole} == {
        "id_not_null",
        "id_unique",
        "numeric_type",
        "finite",
        "range",
        "max_null_fraction",
        "label_not_null",
        "label_values",
    }

    def chunks():
        return (frame.iloc[start : start + chunk_rows] for start in range(0, len(frame), chunk_rows))

    assert validate_chunks(chunks, SOURCE, CONFIG) == whole
    messages = {f.rule: f.message for f in whole}
    assert messages["id_unique"] == "2 ids repeat, e.g. ['c30', 'c5']"
    assert messages["range"] == "3 values outside [0.0, 120.0], e.g. 130"
    assert messages["id_not_null"] == "2 rows have no id"


def test_validate_source_in_chunks_reads_the_file_in_pieces(tmp_path):
    path = tmp_path / "main.csv"
    messy_frame().to_csv(path, index=False)
    source = Source(name="main", path=path, columns=["age", "plan", "y"])
    frame, findings = validate_source(source, CONFIG)
    assert validate_source_in_chunks(source, CONFIG, chunk_rows=6) == findings
    # Parquet with every text column dictionary-encoded: the missing masks come from the codes.
    import pyarrow as pa

    from churnops.data.storage import atomic_parquet_writer

    table = pa.Table.from_pandas(messy_frame(), preserve_index=False)
    parquet = tmp_path / "main.parquet"
    with atomic_parquet_writer(parquet, table.schema, use_dictionary=True) as writer:
        writer.write_table(table, row_group_size=7)
    in_parquet = Source(name="main", path=parquet, columns=["age", "plan", "y"])
    assert validate_source_in_chunks(in_parquet, CONFIG, chunk_rows=6) == validate_source(in_parquet, CONFIG)[1]
    assert validate_source(in_parquet, CONFIG)[1] == findings
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    (finding,) = validate_source_in_chunks(Source(name="b", path=broken), CONFIG, chunk_rows=6)
    assert finding.rule == "readable"


@pytest.mark.parametrize("cuts", [[20], [3, 17, 31], list(range(1, 40))])
def test_shard_tallies_saved_and_merged_in_order_give_the_whole_files_findings(tmp_path, cuts):
    """What merge_shards does: each shard tallies its rows, saves the tally; merged in file order
    they give exactly the findings of the whole file (first value out of range included)."""
    frame = messy_frame()
    whole = validate_frame(frame, SOURCE, CONFIG)
    bounds = [0, *cuts, len(frame)]
    merged = None
    for k, (start, stop) in enumerate(zip(bounds, bounds[1:], strict=False)):
        tally = Tally.for_config(CONFIG)
        tally.add(frame.iloc[start:stop])
        loaded = Tally.load(tally.save(tmp_path / f"shard-{k}.json"), CONFIG)
        merged = loaded if merged is None else merged.merge(loaded)
    assert merged.rows == len(frame)
    assert tally_findings(merged, SOURCE, CONFIG, lambda: [frame]) == whole


def test_probe_source_checks_shape_without_the_rows(tmp_path):
    # (A CSV line with too many fields is found when the rows are read: test_monitoring_cli.)
    good = tmp_path / "good.parquet"
    messy_frame().to_parquet(good, row_group_size=7)
    source = Source(name="main", path=good, columns=["age", "plan", "y"])
    assert probe_source(source, CONFIG) == ([], 40), "row rules are not the probe's business"
    csv = tmp_path / "good.csv"
    messy_frame().to_csv(csv, index=False)
    assert probe_source(Source(name="main", path=csv, columns=["age", "plan", "y"]), CONFIG) == ([], 40)
    missing = tmp_path / "missing.csv"
    messy_frame().drop(columns=["plan"]).to_csv(missing, index=False)
    found, _ = probe_source(Source(name="main", path=missing, columns=["age", "plan", "y"]), CONFIG)
    assert rules(found) == [("required_column", "plan")]
    few = tmp_path / "few.parquet"
    messy_frame().head(2).to_parquet(few)
    assert rules(probe_source(Source(name="main", path=few), CONFIG)[0]) == [("min_rows", None)]
    for name, content, rule in [
        ("empty.csv", b"", "not_empty"),
        ("header.csv", b"id,age\n", "not_empty"),
        ("broken.parquet", b"PAR1 not parquet", "readable"),
        ("absent.csv", None, "readable"),
    ]:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        assert rules(probe_source(Source(name="main", path=path), CONFIG)[0]) == [(rule, None)], name


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param(pd.Series([f"c-{i:05d}" for i in range(3_000)] + [" NA ", None, "", "c-00001"]), id="text"),
        pytest.param(pd.Series(["a", pd.NA, "null", "b"], dtype="string"), id="string-dtype"),
        pytest.param(pd.Series([1, None, 3], dtype="Int64"), id="nullable-ints"),
        pytest.param(pd.Series([7.0, float("nan"), 9.0]), id="floats"),
    ],
)
def test_id_hashes_are_those_of_the_non_missing_ids_as_blank_to_na_sees_them(ids):
    from churnops.data.tally import _id_hashes
    from churnops.data.values import blank_to_na, is_text

    kept = blank_to_na(ids).dropna()  # text as Python objects; other dtypes as numpy gives them
    expected = kept.to_numpy(dtype=object) if is_text(ids) else kept.to_numpy()
    values, hashes = _id_hashes(ids)
    assert values.tolist() == expected.tolist()
    assert hashes.tolist() == pd.util.hash_array(expected, categorize=False).tolist()
