"""Bad daily input for monitoring: one table, one line per case.

Every case runs ``churnops monitor`` on a day of its own, after a trained ``@champion`` and a
good day exist, and checks what the README promises: a clear one-line error (exit 2) or a
documented degrade (exit 0 with the reason in the report), the offending file quarantined with
its reason, the raw files byte-identical, nothing published for a rejected day, the registry
untouched, and the other days' outputs unchanged.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churnops.cli import main
from churnops.data import RECORD_ONLY_RULES
from tests.helpers import churnops_environment, deadline, make_special, write_config

pytestmark = pytest.mark.e2e

GOOD_DAY = date(2026, 5, 1)
DELAY = 7  # the test config's label_delay_days


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A champion (v1) and one good, monitored day whose batch and labels serve as templates."""
    root = tmp_path_factory.mktemp("bad-daily-input")
    config = write_config(
        root / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        monitoring={"html_report": False, "label_delay_days": DELAY, "label_window_days": 1},
    )
    with churnops_environment(root, config):
        assert main(["train"]) == 0
        assert (
            main(["simulate", "--start", GOOD_DAY.isoformat(), "--days", "1", "--rows-per-day", "800", "--seed", "5"])
            == 0
        )
        assert main(["monitor", "--date", GOOD_DAY.isoformat()]) == 0
        yield root


def template(home: Path, kind: str) -> pd.DataFrame:
    return pd.read_parquet(home / kind / f"date={GOOD_DAY}")


# --- how a case writes its day -------------------------------------------------------------------------------------

Writer = Callable[[Path, pd.DataFrame], None]


def csv(change: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f, **options) -> Writer:
    def write(folder: Path, frame: pd.DataFrame) -> None:
        change(frame.astype(str).replace({"None": "", "nan": ""})).to_csv(folder / "batch.csv", index=False, **options)

    return write


def raw_bytes(name: str, payload: Callable[[pd.DataFrame], bytes]) -> Writer:
    def write(folder: Path, frame: pd.DataFrame) -> None:
        (folder / name).write_bytes(payload(frame))

    return write


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


class _Trap:
    """Unpickling this creates the file ``UNPICKLED`` next to the day's folder: proof that something ran it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def pickle_trap(folder: Path, frame: pd.DataFrame) -> None:
    import pickle

    (folder / "batch.pkl").write_bytes(pickle.dumps(_Trap(folder.parent / "UNPICKLED")))


SECRET = "SECRET-TOKEN-5b9e"  # in every file of secrets a link points at; never to be found under quarantine/


def link_to_secret(name: str, payload: Callable[[pd.DataFrame], bytes]) -> Writer:
    """``name``: a symbolic link to a file of secrets outside CHURNOPS_HOME (a valid table holding SECRET)."""

    def write(folder: Path, frame: pd.DataFrame) -> None:
        secrets = folder.parents[1].parent / f"{folder.parents[1].name}-secrets"
        secrets.mkdir(exist_ok=True)
        target = secrets / f"{folder.parent.name}-{folder.name}-{name}"
        target.write_bytes(payload(frame.assign(customerid=frame["customerid"].astype(str) + SECRET)))
        os.symlink(target, folder / name)

    return write


def dangling_link(name: str) -> Writer:
    """``name``: a symbolic link to nothing."""

    def write(folder: Path, frame: pd.DataFrame) -> None:
        os.symlink(folder / "nowhere.csv", folder / name)

    return write


def special(name: str, kind: str) -> Writer:
    """``name``: a FIFO or a character device (see ``tests.helpers.make_special``)."""

    def write(folder: Path, frame: pd.DataFrame) -> None:
        make_special(folder / name, kind)

    return write


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.astype(str).to_csv(index=False).encode()


def padded_parquet(frame: pd.DataFrame) -> bytes:
    """A decompression bomb: 16 MB of text once decompressed, a few kilobytes as stored."""
    buffer = io.BytesIO()
    frame.assign(pad="0" * 20_000).to_parquet(buffer, index=False, compression="zstd", use_dictionary=False)
    return buffer.getvalue()


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{f"extra{i}": "0" for i in range(40)})


def csv_cut_short(by: int) -> Callable[[pd.DataFrame], bytes]:
    """The frame as CSV bytes missing their last ``by`` bytes: a write interrupted mid-line."""
    return lambda frame: frame.astype(str).to_csv(index=False).encode()[:-by]


def cell(row: int, column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return change


def first_rows(column: str, count: int, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[: count - 1, column] = value
        return frame

    return change


def labels_csv(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Writer:
    def write(folder: Path, frame: pd.DataFrame) -> None:
        change(frame.astype(str)).to_csv(folder / "labels.csv", index=False)

    return write


@dataclass
class Case:
    batch: Writer | None = csv()  # the monitored day's batch (None: no batch at all)
    labels: Writer | None = None  # labels of the day DELAY days before, which is monitored first
    argv: list[str] = field(default_factory=list)
    config: dict | None = None  # sections replacing the test config's
    # what must happen: a rejection (exit 2, the rule, its column) or an accepted day checked by `accepted`
    rule: str | None = None
    column: str | None = None
    error: str | None = None  # a text the one-line error must contain (defaults to the rule)
    accepted: Callable[[dict, dict, Path, date], None] | None = None


def rejected_labels(rule: str, column: str | None = None, text: str | None = None, file: str = "labels.csv"):
    """The day's label file is rejected for ``rule``: quarantined, left out of performance and retraining.

    Quarantined as a copy of its bytes, or, for a rule in ``RECORD_ONLY_RULES``, as a record only.
    """

    def check(report: dict, performance: dict, home: Path, label_day: date) -> None:
        assert report["n_labels"] == 0, "no row of a rejected label file may count"
        assert any(file in note and rule in note for note in report["notes"]), report["notes"]
        (rejected,) = performance["rejected_label_files"]
        assert rule in {f["rule"] for f in rejected["findings"]}, rejected
        if column:
            assert column in {f["column"] for f in rejected["findings"]}, rejected
        folder = home / "quarantine" / "labels" / f"date={label_day}" / file
        reason = json.loads((folder / "reason.json").read_text())
        assert text is None or text in json.dumps(reason["findings"]), reason
        if rule in RECORD_ONLY_RULES:
            assert [p.name for p in folder.iterdir()] == ["reason.json"], "neither the file nor its target is copied"
            assert (reason["copy"], reason["sha256"]) == (None, None) and reason["kind"], reason
        else:
            assert (folder / file).read_bytes() == (home / "labels" / f"date={label_day}" / file).read_bytes()
        # Retraining uses the same verdict: the day's batch trains, its rejected labels do not.
        from churnops.config import load_config
        from churnops.monitoring.intake import accepted_files
        from churnops.retraining.windows import _labelled_days

        config = load_config()
        assert accepted_files(config, "labels", label_day)[0] == []
        assert len(accepted_files(config, "incoming", label_day)[0]) == 1
        assert _labelled_days(config, [label_day]).empty, "no row of a rejected label file reaches training"

    return check


def unscored_labels(report: dict, performance: dict, home: Path, label_day: date) -> None:
    assert performance["labels_without_prediction"] == 800 and report["n_labels"] == 0
    assert performance["rejected_label_files"] == []


def scored(report: dict, performance: dict, home: Path, label_day: date) -> None:
    assert report["rows"] == 800 and (home / "predictions" / f"date={report['date']}" / "predictions.parquet").is_file()


GENDER_NULLS_20 = {"validation": {"null_fraction": {"totalcharges": 0.01, "gender": 0.2}}}
# Limits a day's 800-row batch (117 KB as CSV, 20 columns, lines under 200 bytes) passes and the broken file does not.
MAX_FILE_BYTES_200K = {"validation": {"max_file_bytes": 200_000}}
MAX_COLUMNS_30 = {"validation": {"max_columns": 30}}
MAX_LINE_2000 = {"validation": {"max_line_bytes": 2000}}
MAX_UNCOMPRESSED_4M = {"validation": {"max_parquet_uncompressed_bytes": 4_000_000}}

# fmt: off  (one case per line, aligned as a table)
CASES: dict[str, Case] = {
    # daily batches
    "missing_column": Case(csv(lambda f: f.drop(columns=["contract"])), rule="required_column", column="contract"),
    "extra_column": Case(csv(lambda f: f.assign(note="free text")), accepted=scored),
    "wrong_type": Case(csv(cell(3, "tenure", "abc")), rule="numeric_type", column="tenure"),
    "column_all_null": Case(
        csv(lambda f: f.assign(monthlycharges="")), rule="max_null_fraction", column="monthlycharges"
    ),
    # 800 rows, gender allowed 20% nulls: 300 blanks (37.5%) are a storm, 100 (12.5%) are within the rate
    "null_storm": Case(
        csv(first_rows("gender", 300, "")), config=GENDER_NULLS_20, rule="max_null_fraction", column="gender"
    ),
    "nulls_within_rate": Case(csv(first_rows("gender", 100, "")), config=GENDER_NULLS_20, accepted=scored),
    "empty_file": Case(raw_bytes("batch.csv", lambda f: b""), rule="not_empty"),
    "zero_row_day": Case(raw_bytes("batch.csv", lambda f: ",".join(f.columns).encode() + b"\n"), rule="not_empty"),
    "missing_day": Case(batch=None, error="no batch for"),
    "duplicate_ids": Case(csv(lambda f: pd.concat([f, f.head(3)])), rule="id_unique", column="customerid"),
    "unseen_category": Case(csv(first_rows("contract", 100, "Decade")), accepted=scored),
    "negative_tenure": Case(csv(cell(5, "tenure", "-3")), rule="range", column="tenure"),
    "infinite_number": Case(csv(cell(6, "totalcharges", "inf")), rule="finite", column="totalcharges"),
    "corrupt_parquet": Case(raw_bytes("batch.parquet", lambda f: b"PAR1" + os.urandom(500)), rule="readable"),
    "truncated_parquet": Case(
        raw_bytes("batch.parquet", lambda f: parquet_bytes(f)[: len(parquet_bytes(f)) // 2]), rule="readable"
    ),
    "truncated_csv": Case(raw_bytes("batch.csv", csv_cut_short(40)), rule="truncated"),
    "truncated_csv_nulls_allowed": Case(
        raw_bytes("batch.csv", csv_cut_short(40)), config={"validation": {"max_null_fraction": 0.5}}, rule="truncated"
    ),
    "wrong_encoding": Case(
        raw_bytes("batch.csv", lambda f: f.astype(str).to_csv(index=False).encode("utf-16")), rule="readable"
    ),
    "wrong_delimiter": Case(csv(sep=";"), rule="required_column", column="customerid"),
    "pickle_in_incoming": Case(pickle_trap, error="no batch for"),  # never loaded: only CSV/Parquet are data
    # a batch file that is not a regular file, or over a size limit: refused before any row is parsed
    "link_to_secret": Case(link_to_secret("batch.csv", as_csv), rule="regular_file", error="is a symbolic link to"),
    "dangling_link": Case(dangling_link("batch.csv"), rule="regular_file", error="is a symbolic link to"),
    "fifo": Case(special("batch.csv", "fifo"), rule="regular_file", error="is a FIFO, not a regular file"),
    "char_device": Case(special("batch.csv", "char_device"), rule="regular_file", error="not a regular file"),
    "over_max_file_bytes": Case(
        csv(lambda f: f.assign(pad="x" * 200)), config=MAX_FILE_BYTES_200K, rule="max_file_bytes"
    ),
    "over_max_columns": Case(csv(wide), config=MAX_COLUMNS_30, rule="max_columns"),
    "over_max_line_bytes": Case(csv(cell(3, "contract", "x" * 5000)), config=MAX_LINE_2000, rule="max_line_bytes"),
    "parquet_bomb": Case(
        raw_bytes("batch.parquet", padded_parquet), config=MAX_UNCOMPRESSED_4M, rule="max_parquet_uncompressed_bytes"
    ),
    # labels (of the day DELAY days before the monitored one)
    "label_outside_classes": Case(
        labels=labels_csv(cell(4, "churn", "Maybe")), accepted=rejected_labels("label_values", "churn", text="Maybe")
    ),
    "labels_missing_column": Case(
        labels=labels_csv(lambda f: f.drop(columns=["churn"])), accepted=rejected_labels("required_column", "churn")
    ),
    "labels_duplicate_ids": Case(
        labels=labels_csv(lambda f: pd.concat([f, f.head(3)])), accepted=rejected_labels("id_unique", "customerid")
    ),
    "labels_empty_file": Case(labels=raw_bytes("labels.csv", lambda f: b""), accepted=rejected_labels("not_empty")),
    "labels_corrupt_parquet": Case(
        labels=raw_bytes("labels.parquet", lambda f: b"PAR1" + os.urandom(300)),
        accepted=rejected_labels("readable", file="labels.parquet"),
    ),
    "labels_truncated_csv": Case(
        labels=raw_bytes("labels.csv", csv_cut_short(5)), accepted=rejected_labels("truncated")
    ),
    "labels_link_to_secret": Case(
        labels=link_to_secret("labels.csv", as_csv), accepted=rejected_labels("regular_file", text="symbolic link to")
    ),
    "labels_dangling_link": Case(
        labels=dangling_link("labels.csv"), accepted=rejected_labels("regular_file", text="symbolic link to")
    ),
    "labels_fifo": Case(labels=special("labels.csv", "fifo"), accepted=rejected_labels("regular_file", text="a FIFO")),
    "labels_char_device": Case(labels=special("labels.csv", "char_device"), accepted=rejected_labels("regular_file")),
    "labels_over_max_file_bytes": Case(
        labels=labels_csv(lambda f: f.assign(pad="x" * 400)),
        config=MAX_FILE_BYTES_200K,
        accepted=rejected_labels("max_file_bytes"),
    ),
    "labels_over_max_columns": Case(
        labels=labels_csv(wide), config=MAX_COLUMNS_30, accepted=rejected_labels("max_columns")
    ),
    "labels_over_max_line_bytes": Case(
        labels=labels_csv(cell(4, "churn", "x" * 5000)),
        config=MAX_LINE_2000,
        accepted=rejected_labels("max_line_bytes"),
    ),
    "labels_parquet_bomb": Case(
        labels=raw_bytes("labels.parquet", padded_parquet),
        config=MAX_UNCOMPRESSED_4M,
        accepted=rejected_labels("max_parquet_uncompressed_bytes", file="labels.parquet"),
    ),
    "labels_for_unscored_ids": Case(
        labels=labels_csv(lambda f: f.assign(customerid="never-" + f["customerid"])), accepted=unscored_labels
    ),
    # the date and the config
    "date_not_a_date": Case(argv=["--date", "yesterday"], error="not a date"),
    "date_outside_home": Case(argv=["--date", "../../etc"], error="not a date"),
    "config_unknown_key": Case(config={"monitoring": {"surprise": 1}}, error="surprise"),
    "config_bad_value": Case(config={"monitoring": {"p_value": 2}}, error="p_value"),
}
# fmt: on


def outputs_of_other_days(home: Path, days: set[str]) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for kind in ("predictions", "reports")
        for p in (home / kind).rglob("*")
        if p.is_file() and not any(f"date={d}" in str(p) for d in days)
    }


@pytest.mark.parametrize("name", list(CASES))
def test_bad_daily_input(name, home, capsys, tmp_path):
    from mlflow import MlflowClient

    case = CASES[name]
    day = GOOD_DAY + timedelta(days=10 + 2 * list(CASES).index(name) * (DELAY + 1))  # a day of its own
    label_day = day - timedelta(days=DELAY)
    if case.labels is not None:  # the labelled day is monitored first, so its predictions exist
        folder = home / "incoming" / f"date={label_day}"
        folder.mkdir(parents=True)
        template(home, "incoming").to_parquet(folder / "batch.parquet", index=False)
        assert main(["monitor", "--date", label_day.isoformat()]) == 0
        folder = home / "labels" / f"date={label_day}"
        folder.mkdir(parents=True)
        case.labels(folder, template(home, "labels"))
    incoming = home / "incoming" / f"date={day}"
    if case.batch is not None:
        incoming.mkdir(parents=True)
        case.batch(incoming, template(home, "incoming"))
    argv = ["monitor", *(case.argv or ["--date", day.isoformat()])]
    if case.config:
        import yaml

        sections = yaml.safe_load(Path(os.environ["CHURNOPS_CONFIG"]).read_text())
        for section, changes in case.config.items():
            sections.setdefault(section, {}).update(changes)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(sections))
        argv += ["--config", str(tmp_path / "config.yaml")]
    # is_file() is False for a FIFO or a device: the test never reads one either
    raw_before = {p: p.read_bytes() for kind in ("incoming", "labels") for p in (home / kind).rglob("*") if p.is_file()}
    others_before = outputs_of_other_days(home, {day.isoformat(), label_day.isoformat()})
    client = MlflowClient()
    versions_before = len(client.search_model_versions("name = 'churn-predictor'"))

    with deadline(300):  # a reader blocked on a FIFO fails the case instead of hanging the suite
        code = main(argv)
    out, err = capsys.readouterr()

    assert {p: p.read_bytes() for p in raw_before} == raw_before, "raw files are never modified"
    assert outputs_of_other_days(home, {day.isoformat(), label_day.isoformat()}) == others_before
    assert len(client.search_model_versions("name = 'churn-predictor'")) == versions_before
    assert str(client.get_model_version_by_alias("churn-predictor", "champion").version) == "1", "no model promoted"
    quarantined = [p for p in (home / "quarantine").rglob("*") if p.is_file()]
    assert not [p for p in quarantined if SECRET.encode() in p.read_bytes()], "a link's target was copied"
    if case.accepted is not None:
        assert code == 0, err
        reports = home / "reports" / f"date={day}"
        case.accepted(
            json.loads((reports / "drift_report.json").read_text()),
            json.loads((reports / "performance.json").read_text()),
            home,
            label_day,
        )
        return
    assert code == 2, (out, err)
    assert err.count("\n") == 1, err
    assert (case.error or case.rule) in err, err
    assert not (home / "predictions" / f"date={day}").exists(), "nothing is published from a rejected day"
    assert not (home / "incoming" / "UNPICKLED").exists(), "a file dropped into incoming/ was unpickled"
    if case.rule:
        if case.column:
            assert f"column {case.column!r}" in err, err
        (reason_file,) = (home / "quarantine" / "monitoring" / f"date={day}").glob("*/reason.json")
        reason = json.loads(reason_file.read_text())
        assert case.rule in {f["rule"] for f in reason["findings"]}
        copied = reason_file.parent / reason_file.parent.name
        if case.rule in RECORD_ONLY_RULES:  # a record: what the name is, no copy of it or of what it points at
            assert [p.name for p in reason_file.parent.iterdir()] == ["reason.json"]
            assert (reason["copy"], reason["sha256"]) == (None, None) and reason["kind"], reason
        else:
            assert copied.read_bytes() == (incoming / reason_file.parent.name).read_bytes(), "quarantined untouched"


def test_the_pickle_trap_fires_when_unpickled(tmp_path):
    """The pickle_in_incoming case proves something only if unpickling its file leaves a mark."""
    import pickle

    pickle.loads(pickle.dumps(_Trap(tmp_path / "UNPICKLED")))  # noqa: S301 - the point of the test
    assert (tmp_path / "UNPICKLED").exists()
