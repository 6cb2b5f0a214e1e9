"""``churnops monitor / retrain / status / rollback`` on a trained champion and simulated days."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import pytest

from churnops.cli import main
from tests.helpers import churnops_environment, deadline, read_drift_page, same_size_out_of_range, write_config

pytestmark = pytest.mark.e2e

D0 = date(2026, 10, 1)
MONITOR_KEYS = {
    "date",
    "model_version",
    "rows",
    "drifted_features",
    "drift_share",
    "dataset_drift",
    "prediction_drift",
    "realized_roc_auc",
    "estimated_roc_auc",
    "estimated_roc_auc_low",
    "estimated_roc_auc_high",
    "estimate_trusted",
    "decision",
    "reasons",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A champion (v1) and 12 stable simulated days in a module-wide CHURNOPS_HOME."""
    root = tmp_path_factory.mktemp("monitor-home")
    config = write_config(
        root / "config.yaml",
        training={"families": ["logistic_regression"], "cv_folds": 2},
        policy={"bootstrap_samples": 100},
    )
    with churnops_environment(root, config):
        assert main(["train"]) == 0
        assert (
            main(["simulate", "--start", D0.isoformat(), "--days", "12", "--rows-per-day", "800", "--seed", "3"]) == 0
        )
        yield root


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 and "--json" in argv else out), err


def test_monitor_prints_the_documented_json_and_reruns_identically(home, capsys):
    from mlflow import MlflowClient

    day = D0 + timedelta(days=9)
    code, first, err = run(capsys, "monitor", "--date", day.isoformat(), "--json")
    assert code == 0, err
    assert MONITOR_KEYS <= set(first)
    assert first["date"] == day.isoformat() and first["model_version"] == "1" and first["rows"] == 800
    assert first["decision"] == "none" and first["dataset_drift"] is False
    report = home / "reports" / f"date={day}" / "drift_report.json"
    predictions = home / "predictions" / f"date={day}" / "predictions.parquet"
    before = (report.read_bytes(), predictions.read_bytes())

    code, again, err = run(capsys, "monitor", "--date", day.isoformat(), "--json")
    assert code == 0, err
    assert (report.read_bytes(), predictions.read_bytes()) == before, "a rerun of a day gives the same result"
    assert again["mlflow_run_id"] == first["mlflow_run_id"], "one monitoring run per day, reused"
    client = MlflowClient()
    experiment = client.get_experiment_by_name("churnops-telco-monitoring")
    assert len(client.search_runs([experiment.experiment_id], f"tags.`churnops.monitoring_date` = '{day}'")) == 1


def test_the_drift_page_of_a_drifted_day_shows_the_verdicts_of_feature_drift_json(home, capsys):
    """Per feature, the page's test, statistic, p-value, effect size, thresholds and verdict are
    feature_drift.json's, exactly; its drifted count is the decision's; evidently's part is marked secondary."""
    day = date(2027, 6, 1)
    simulate = ["simulate", "--start", day.isoformat(), "--days", "1", "--rows-per-day", "800", "--seed", "3"]
    drifting = ["--scenario", "covariate_drift", "--drift-start", day.isoformat(), "--ramp-days", "1"]
    assert run(capsys, *simulate, *drifting)[0] == 0
    code, result, err = run(capsys, "monitor", "--date", day.isoformat(), "--json")
    assert code == 0, err
    reports = home / "reports" / f"date={day}"
    verdicts = json.loads((reports / "feature_drift.json").read_text())
    assert result["decision"] == "retrain" and result["dataset_drift"] is True
    drifted = result["drifted_features"]
    assert len(drifted) == len(verdicts["drifted_features"]) >= 2
    assert f"{len(drifted)} of {verdicts['n_features']} features drifted" in result["reasons"][0]

    text = (reports / "drift_report.html").read_text(encoding="utf-8")
    page = read_drift_page(text)
    rule = {key: verdicts["thresholds"][key] for key in ("p_value", "min_effect_size")}
    assert rule == {"p_value": 0.05, "min_effect_size": 0.1}
    fields = ("test", "statistic", "p_value", "effect_size", "drifted")
    assert {name: {f: row[f] for f in (*fields, "threshold")} for name, row in page["features"].items()} == {
        row["feature"]: {**{f: row[f] for f in fields}, "threshold": rule} for row in verdicts["features"]
    }
    assert [name for name, row in page["features"].items() if row["drifted"]] == drifted
    assert int(page["fields"]["n_drifted"]) == len(drifted)
    assert (page["fields"]["decision"], page["fields"]["dataset_drift"]) == ("retrain", "yes")
    assert page["roles"] == ["verdict", "secondary"]
    assert "Evidently's view (secondary" in text


def test_the_pages_evidently_part_is_computed_beside_the_steps_not_in_the_report_step(home, monkeypatch, caplog):
    """run_monitoring's forked page worker computes evidently's view; the report step only collects it."""
    import re

    import churnops.monitoring.report_page as report_page
    from churnops.config import load_config
    from churnops.monitoring.steps import run_monitoring

    here: list[int] = []
    original = report_page.evidently_view

    def spy(*args, **kwargs):
        here.append(os.getpid())  # the child's calls land in the child's copy of the list
        return original(*args, **kwargs)

    monkeypatch.setattr(report_page, "evidently_view", spy)
    day = D0 + timedelta(days=4)
    result = run_monitoring(load_config(), day)
    assert here == [], "the report step did not compute the view itself"
    assert "page worker" not in caplog.text
    page = Path(result["html"]).read_text(encoding="utf-8")
    found = re.search(r"Here evidently finds (\d+) of (\d+) columns drifted", page)
    assert found and int(found.group(2)) > 0 and '"type": "big_table"' in page


def test_the_score_step_streams_chunks_and_gives_the_same_scores(home):
    import pandas as pd
    import pyarrow.parquet as pq

    from churnops.config import load_config
    from churnops.monitoring.shards import score_batch
    from churnops.monitoring.steps import run_monitoring

    day = D0 + timedelta(days=2)
    config = load_config()
    whole = run_monitoring(config, day)  # one chunk of 800 rows
    predictions = home / "predictions" / f"date={day}" / "predictions.parquet"
    expected = pd.read_parquet(predictions)
    dumped = config.model_dump(mode="json")
    small = type(config).model_validate({**dumped, "monitoring": {**dumped["monitoring"], "chunk_rows": 300}})
    scored = score_batch(small, day)
    assert scored["rows"] == whole["rows"] == 800
    assert pq.ParquetFile(predictions).metadata.num_row_groups == 3  # 300 + 300 + 200
    pd.testing.assert_frame_equal(pd.read_parquet(predictions), expected)


def test_predictions_hold_each_rows_id_score_and_version_as_written_from_a_frame_of_them(home):
    """The shards write Arrow columns: the very table a pandas frame of the typed ids, the model's
    scores of the whole day and the version gives, in row order."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnops.config import load_config
    from churnops.data import partition
    from churnops.monitoring import batch_files
    from churnops.monitoring.intake import read_files
    from churnops.monitoring.scoring import load_model, positive_scores
    from churnops.monitoring.shards import score_batch

    day = D0 + timedelta(days=5)
    config = load_config()
    dumped = config.model_dump(mode="json")
    small = type(config).model_validate({**dumped, "monitoring": {**dumped["monitoring"], "chunk_rows": 300}})
    scored = score_batch(small, day)
    batch = read_files(config, batch_files(partition("incoming", day)))
    id_column, version = config.dataset.id_column, scored["model_version"]
    frame = pd.DataFrame(
        {
            id_column: batch[id_column].astype(object),
            "score": positive_scores(load_model(config, version), batch, config),
            "model_version": version,
        }
    )
    written = pq.read_table(scored["predictions"])
    assert written.equals(pa.Table.from_pandas(frame, schema=written.schema, preserve_index=False))
    assert written.schema.metadata is None


def test_a_sharded_day_gives_the_unsharded_result(home):
    """Shards across a Parquet file of odd row groups and a CSV file:
    the same predictions, drift statistics (counts exactly; KS on the same seeded sample) and page sample."""
    import pandas as pd

    from churnops import monitoring
    from churnops.config import load_config

    source, day = D0 + timedelta(days=5), date(2027, 2, 1)
    batch = pd.read_parquet(home / "incoming" / f"date={source}")
    incoming = home / "incoming" / f"date={day}"
    incoming.mkdir(parents=True)
    batch.iloc[:530].to_parquet(incoming / "a.parquet", row_group_size=170, index=False)
    batch.iloc[530:].to_csv(incoming / "b.csv", index=False)

    dumped = load_config().model_dump(mode="json")

    def config(shard_rows):
        monitoring = {**dumped["monitoring"], "chunk_rows": 100, "sample_size": 300, "shard_rows": shard_rows}
        return type(load_config()).model_validate({**dumped, "monitoring": monitoring})

    reports = home / "reports" / f"date={day}"
    names = ("feature_drift.json", "prediction_drift.json", "performance.json")

    def outputs():
        work = home / "work" / "monitoring" / f"date={day}" / "merged"
        return (
            {name: (reports / name).read_text() for name in names},
            pd.read_parquet(home / "predictions" / f"date={day}" / "predictions.parquet"),
            pd.read_parquet(work / "page_sample.parquet"),
        )

    whole = monitoring.run_monitoring(config(10_000), day)
    expected = outputs()
    assert whole["shards"] == 1 and whole["rows"] == 800

    plan = monitoring.plan_shards(config(400), day, monitoring.check_batch(config(400), day))
    # 400 rows = 4 chunks of 100 a shard; chunks restart at each file: 6 of a.parquet, 3 of b.csv.
    a, b = str(incoming / "a.parquet"), str(incoming / "b.csv")
    assert [s["pieces"] for s in plan] == [[[a, 0, 400]], [[a, 400, 530], [b, 0, 200]], [[b, 200, 270]]]
    assert [(s["first_row"], s["first_chunk"], s["rows"]) for s in plan] == [(0, 0, 400), (400, 4, 330), (730, 8, 70)]
    sharded = monitoring.run_monitoring(config(400), day)
    assert sharded["shards"] == 3
    texts, predictions, page = outputs()
    assert texts == expected[0]
    pd.testing.assert_frame_equal(predictions, expected[1])
    pd.testing.assert_frame_equal(page, expected[2])
    assert {k: v for k, v in sharded.items() if k != "shards"} == {k: v for k, v in whole.items() if k != "shards"}
    features = json.loads((reports / "feature_drift.json").read_text())
    assert {f["feature"] for f in features["features"]} == set(load_config().dataset.feature_columns)


def test_row_rules_are_judged_on_the_merged_shards_before_anything_is_published(home):
    """A bad value in one shard and an id repeated in another: the merge rejects the day, quarantines
    both files untouched with their reasons, and writes no predictions."""
    import pandas as pd

    from churnops import monitoring
    from churnops.config import load_config
    from churnops.data.findings import DataValidationError

    day = date(2027, 3, 1)
    batch = pd.read_parquet(home / "incoming" / f"date={D0 + timedelta(days=6)}").astype({"tenure": "float64"})
    batch.loc[450, "tenure"] = -5.0  # shard 2 of a.parquet
    batch.loc[780, "customerid"] = batch.loc[540, "customerid"]  # b.csv's last shard repeats an id of its first
    incoming = home / "incoming" / f"date={day}"
    incoming.mkdir(parents=True)
    batch.iloc[:530].to_parquet(incoming / "a.parquet", row_group_size=170, index=False)
    batch.iloc[530:].to_csv(incoming / "b.csv", index=False)
    raw = {p.name: p.read_bytes() for p in incoming.iterdir()}
    dumped = load_config().model_dump(mode="json")
    config = type(load_config()).model_validate(
        {**dumped, "monitoring": {**dumped["monitoring"], "chunk_rows": 100, "shard_rows": 200}}
    )

    with pytest.raises(DataValidationError) as failure:
        monitoring.run_monitoring(config, day)
    assert {(f.source, f.rule) for f in failure.value.findings} == {("a", "range"), ("b", "id_unique")}
    assert {p.name: p.read_bytes() for p in incoming.iterdir()} == raw
    for name, rule in (("a.parquet", "range"), ("b.csv", "id_unique")):
        reason = json.loads((home / "quarantine" / "monitoring" / f"date={day}" / name / "reason.json").read_text())
        assert reason["step"] == "merge_shards" and reason["findings"][0]["rule"] == rule
    assert not (home / "predictions" / f"date={day}").exists(), "nothing published from a rejected day"

    # A CSV line with too many fields is found by the shard reading it: quarantined, nothing published.
    (incoming / "a.parquet").unlink()
    batch.iloc[:530].assign(customerid=lambda f: f["customerid"] + "-x").to_parquet(incoming / "a.parquet", index=False)
    lines = (incoming / "b.csv").read_text().splitlines()
    lines[150] += ",surplus,fields"
    (incoming / "b.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as failure:
        monitoring.run_monitoring(config, day)
    (finding,) = failure.value.findings
    assert (finding.source, finding.rule) == ("b", "readable") and "b.csv" in finding.message
    reason = json.loads((home / "quarantine" / "monitoring" / f"date={day}" / "b.csv" / "reason.json").read_text())
    assert reason["step"] == "score_shard"
    assert not (home / "predictions" / f"date={day}").exists()


def small_chunks(**monitoring):
    """The test config with 100-row chunks and 400-row shards (a day of 800 rows is two shards)."""
    from churnops.config import load_config

    dumped = load_config().model_dump(mode="json")
    changes = {"chunk_rows": 100, "shard_rows": 400, "html_report": False, **monitoring}
    return type(load_config()).model_validate({**dumped, "monitoring": {**dumped["monitoring"], **changes}})


def nothing_published_nor_judged(home, day):
    assert not (home / "predictions" / f"date={day}").exists(), "nothing published from a file that moved"
    assert not (home / "quarantine" / "monitoring" / f"date={day}").exists(), "a moving file is not quarantined"
    assert not (home / "work" / "verdicts" / "incoming" / f"date={day}").exists(), "no verdict for a moving file"


APPENDS = [(rows, when) for rows in ("good", "bad") for when in ("before-the-shards", "before-the-merge")]


@pytest.mark.parametrize(("rows", "when"), APPENDS, ids=[f"{r}-rows-{w}" for r, w in APPENDS])
def test_rows_appended_after_check_batch_are_never_published_unvalidated(home, rows, when):
    """The shards score the rows check_batch counted; rows appended since are neither published nor approved
    unread: the step that meets the grown file stops the day, and the day run again judges every row."""
    import pandas as pd

    from churnops import monitoring
    from churnops.data.findings import DataValidationError

    day = date(2027, 4, 1) + timedelta(days=APPENDS.index((rows, when)))
    batch = pd.read_parquet(home / "incoming" / f"date={D0 + timedelta(days=7)}")
    path = home / "incoming" / f"date={day}" / "batch.csv"
    path.parent.mkdir(parents=True)
    batch.iloc[:790].to_csv(path, index=False)
    late = batch.iloc[790:].astype({"tenure": "float64"})
    if rows == "bad":
        late.loc[late.index[3], "tenure"] = -5.0
    config = small_chunks()

    checked = monitoring.check_batch(config, day)
    assert checked["rows"] == 790
    shards = monitoring.plan_shards(config, day, checked)
    if when == "before-the-merge":
        parts = [monitoring.score_shard(config, day, shard) for shard in shards]
    with path.open("a") as producer:  # it was not done
        producer.write(late.to_csv(index=False, header=False))
    with pytest.raises(monitoring.FileChangedError, match="batch.csv is not the file that was judged or planned"):
        if when == "before-the-shards":
            parts = [monitoring.score_shard(config, day, shard) for shard in shards]
        monitoring.merge_shards(config, day, parts)
    nothing_published_nor_judged(home, day)

    if rows == "good":  # run again, the day is judged and scored whole
        assert monitoring.score_batch(config, day)["rows"] == 800
        assert len(pd.read_parquet(home / "predictions" / f"date={day}" / "predictions.parquet")) == 800
        assert monitoring.accepted_files(config, "incoming", day) == ([path], [])
        return
    with pytest.raises(DataValidationError) as failure:
        monitoring.score_batch(config, day)
    assert {(f.source, f.rule, f.column) for f in failure.value.findings} == {("batch", "range", "tenure")}
    assert not (home / "predictions" / f"date={day}").exists()
    accepted, rejected = monitoring.accepted_files(config, "incoming", day)
    assert accepted == [] and [f["rule"] for f in rejected[0]["findings"]] == ["range"]


def test_a_file_replaced_with_the_same_size_after_the_shards_read_it_is_judged_again(home, tmp_path):
    """Other contents, same size, a new mtime: the merge refuses it, the day run again rejects it."""
    import pandas as pd

    from churnops import monitoring
    from churnops.data.findings import DataValidationError

    day = date(2027, 4, 20)
    path = home / "incoming" / f"date={day}" / "batch.csv"
    path.parent.mkdir(parents=True)
    pd.read_parquet(home / "incoming" / f"date={D0 + timedelta(days=8)}").to_csv(path, index=False)
    config = small_chunks()
    checked = monitoring.check_batch(config, day)
    parts = [monitoring.score_shard(config, day, shard) for shard in monitoring.plan_shards(config, day, checked)]
    size = path.stat().st_size
    (tmp_path / "batch.csv").write_bytes(same_size_out_of_range(path))
    os.replace(tmp_path / "batch.csv", path)  # a producer's atomic rewrite of the day
    assert path.stat().st_size == size

    with pytest.raises(monitoring.FileChangedError, match="it was replaced by another file"):
        monitoring.merge_shards(config, day, parts)
    nothing_published_nor_judged(home, day)
    with pytest.raises(DataValidationError, match="range"):
        monitoring.score_batch(config, day)
    assert not (home / "predictions" / f"date={day}").exists()
    assert monitoring.accepted_files(config, "incoming", day)[0] == []


def test_monitor_waits_for_the_arrival_marker_without_quarantining(home, capsys, tmp_path):
    """With monitoring.arrival_marker set, a day still being written is "not arrived yet" (exit 2, one line),
    never judged; once the producer has finished and written the marker, the day runs."""
    import pandas as pd

    config = write_config(
        tmp_path / "config.yaml",
        Path(os.environ["CHURNOPS_CONFIG"]),
        monitoring={"arrival_marker": "_SUCCESS", "html_report": False},
    )
    day = date(2027, 5, 1)
    folder = home / "incoming" / f"date={day}"
    folder.mkdir(parents=True)
    complete = pd.read_parquet(home / "incoming" / f"date={D0 + timedelta(days=4)}").to_csv(index=False).encode()
    (folder / "batch.csv").write_bytes(complete[: len(complete) // 2])  # halfway through its write

    code, _, err = run(capsys, "monitor", "--date", day.isoformat(), "--config", str(config))
    assert code == 2 and err.count("\n") == 1, err
    assert f"the batch of {day} has not arrived yet: no _SUCCESS in" in err
    assert not (home / "quarantine" / "monitoring" / f"date={day}").exists(), "waited for, not quarantined"
    assert not (home / "work" / "verdicts" / "incoming" / f"date={day}").exists()

    (folder / "batch.csv").write_bytes(complete)
    (folder / "_SUCCESS").touch()
    code, result, err = run(capsys, "monitor", "--date", day.isoformat(), "--config", str(config), "--json")
    assert code == 0 and result["rows"] == 800, err


def test_the_rows_churnops_serve_answered_are_the_batch_once_their_day_is_over(home, capsys, tmp_path):
    """With monitoring.batch_folder: serving, a day's batch is what ``churnops serve`` answered and logged
    that UTC day: "not arrived" while the day and the log's flush age last, then monitored as an
    incoming batch is, each served row scored with the probability it was served with. Customers
    scored twice that day, rows sent without an id and a flush shorter than validation.min_rows are
    served rows like the others, not a bad batch."""
    import time

    import pandas as pd
    from fastapi.testclient import TestClient

    from churnops.config import load_config
    from churnops.serving import create_app

    config_path = write_config(
        tmp_path / "config.yaml",
        Path(os.environ["CHURNOPS_CONFIG"]),
        monitoring={"batch_folder": "serving", "html_report": False},
        serving={"log_requests": True, "log_flush_seconds": 1, "log_flush_rows": 100},  # 300, 500, 70 rows
    )
    config = load_config(config_path)
    batch = pd.read_parquet(home / "incoming" / f"date={D0 + timedelta(days=5)}")
    served = {}
    with TestClient(create_app(config)) as client:
        with deadline(60):
            while client.get("/health").status_code != 200:
                time.sleep(0.1)
        without_ids = batch.iloc[:20].drop(columns="customerid")
        for part in (batch.iloc[:300], batch.iloc[300:], batch.iloc[:50], without_ids):
            body = part.to_csv(index=False).encode()
            response = client.post("/predict?explain=false", content=body, headers={"content-type": "text/csv"})
            assert response.status_code == 200, response.text
            served |= {row.get("id"): row["probability"] for row in response.json()["predictions"]}
    served_days = sorted((home / "serving").glob("date=*"))
    assert sum(1 for d in served_days for _ in d.glob("part-*.parquet")) == 3, "one file a flush"

    today = served_days[-1].name.removeprefix("date=")
    code, _, err = run(capsys, "monitor", "--date", today, "--config", str(config_path))
    assert code == 2 and err.count("\n") == 1, err
    assert f"the batch of {today} has not arrived yet:" in err and "holds the rows served that day" in err

    day = date(2026, 6, 1)  # a day that is over: the served rows moved there as one day's folder
    folder = home / "serving" / f"date={day}"
    folder.mkdir()
    for served_day in served_days:
        for part in served_day.iterdir():
            part.rename(folder / part.name)
    code, result, err = run(capsys, "monitor", "--date", day.isoformat(), "--config", str(config_path), "--json")
    assert code == 0 and result["rows"] == len(batch) + 50 + 20, err
    assert not (home / "incoming" / f"date={day}").exists()
    predictions = pd.read_parquet(home / "predictions" / f"date={day}" / "predictions.parquet")
    assert predictions["customerid"].isna().sum() == 20 and predictions["customerid"].nunique() == len(batch)
    monitored = dict(zip(predictions["customerid"], predictions["score"], strict=True))
    assert {k: v for k, v in monitored.items() if isinstance(k, str)} == {k: v for k, v in served.items() if k}


def test_shards_that_do_not_fit_together_are_refused(home):
    from churnops.config import load_config
    from churnops.monitoring.shards import merge_shards

    with pytest.raises(ValueError, match="do not fit together"):
        merge_shards(
            load_config(),
            D0,
            [{"index": 0, "model_version": "1", "folder": "x"}, {"index": 1, "model_version": "2", "folder": "y"}],
        )
    with pytest.raises(ValueError, match="do not fit together"):
        merge_shards(load_config(), D0, [{"index": 1, "model_version": "1", "folder": "x"}])


def test_realized_roc_auc_appears_once_labels_mature(home, capsys):
    for offset in range(0, 12):
        code, _, err = run(capsys, "monitor", "--date", (D0 + timedelta(days=offset)).isoformat(), "--json")
        assert code == 0, err
    early = json.loads((home / "reports" / f"date={D0 + timedelta(days=3)}" / "drift_report.json").read_text())
    late = json.loads((home / "reports" / f"date={D0 + timedelta(days=11)}" / "drift_report.json").read_text())
    assert early["realized_roc_auc"] is None, "no label has matured 3 days in (delay 7)"
    assert late["n_labels"] == 5 * 800 and 0.7 < late["realized_roc_auc"] < 0.95

    # The chunked hash join equals a plain merge of labels and predictions on the id.
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from churnops.config import load_config
    from churnops.days import matured_days
    from churnops.monitoring.outcomes import matured_outcomes

    day = D0 + timedelta(days=11)
    merged = pd.concat(
        [
            pd.read_parquet(home / "labels" / f"date={d}").merge(
                pd.read_parquet(home / "predictions" / f"date={d}"), on="customerid"
            )
            for d in matured_days(load_config(), day)
            if (home / "labels" / f"date={d}").exists()
        ]
    )
    outcomes = matured_outcomes(load_config(), matured_days(load_config(), day))
    assert len(outcomes) == len(merged) == late["n_labels"]
    assert outcomes["score"].tolist() == merged["score"].tolist()
    assert outcomes["label"].tolist() == (merged["churn"] == "Yes").astype(int).tolist()
    assert late["realized_roc_auc"] == round(roc_auc_score(outcomes["label"], outcomes["score"]), 12)


def test_precision_recall_and_f1_at_the_versions_threshold_beside_the_roc_auc(home, capsys):
    from mlflow import MlflowClient
    from sklearn.metrics import f1_score, precision_score, recall_score

    from churnops.config import load_config
    from churnops.days import matured_days
    from churnops.monitoring.outcomes import matured_outcomes
    from churnops.monitoring.report import decide
    from churnops.monitoring.steps import performance_step
    from churnops.tracking import version_tags, version_threshold

    day = D0 + timedelta(days=11)
    for scored_day in (D0 + timedelta(days=offset) for offset in range(5)):  # the days whose labels have matured
        if not (home / "predictions" / f"date={scored_day}").exists():
            assert main(["monitor", "--date", scored_day.isoformat()]) == 0
    capsys.readouterr()
    code, report, err = run(capsys, "monitor", "--date", day.isoformat(), "--json")
    assert code == 0, err
    assert report["n_labels"] == 5 * 800
    config = load_config()
    threshold = version_threshold(report["model_version"], config.registry)
    assert version_tags(config.registry, report["model_version"])["churnops.threshold_rule"] == "max_f1"
    assert report["threshold"] == threshold != 0.5, "the version's own threshold, not the default"
    outcomes = matured_outcomes(config, matured_days(config, day))
    flagged = outcomes["score"] >= threshold
    expected = {
        "precision": precision_score(outcomes["label"], flagged),
        "recall": recall_score(outcomes["label"], flagged),
        "f1": f1_score(outcomes["label"], flagged),
    }
    assert {k: report[k] for k in expected} == pytest.approx(expected, abs=1e-12)
    performance = json.loads((home / "reports" / f"date={day}" / "performance.json").read_text())["performance"]
    assert performance["confusion"]["tp"] == int((flagged & (outcomes["label"] == 1)).sum())
    logged = MlflowClient().get_run(report["mlflow_run_id"]).data.metrics
    assert {k: logged[k] for k in ("precision", "recall", "f1", "threshold")} == pytest.approx(
        {**expected, "threshold": threshold}
    )
    assert logged["realized_roc_auc"] == report["realized_roc_auc"]

    # A configured minimum above the day's F1 is an alarm the decision names.
    strict = config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"min_f1": 0.99})})
    try:
        judged = performance_step(strict, day, {"model_version": report["model_version"]})["performance"]
        decision = decide({"drifted_features": [], "dataset_drift": False}, {"drifted": False}, judged)
        assert judged["alarm"] is True and decision["decision"] == "retrain"
        assert [r for r in decision["reasons"] if "below min_f1 0.99" in r] == [
            f"performance: realized f1 {judged['f1']:.4f} at threshold {threshold:.4f} is below min_f1 0.99"
            f" ({report['n_labels']} labels)"
        ]
    finally:
        performance_step(config, day, {"model_version": report["model_version"]})  # the day's file as configured


@pytest.mark.parametrize("bad_date", ["../../etc", "2026-13-45", "yesterday"])
def test_a_bad_date_is_a_one_line_error(home, capsys, bad_date):
    code, _, err = run(capsys, "monitor", "--date", bad_date)
    assert code == 2 and err.count("\n") == 1 and "not a date" in err


def test_a_missing_day_fails_clearly(home, capsys):
    code, _, err = run(capsys, "monitor", "--date", "2027-01-01")
    assert code == 2 and "no batch for 2027-01-01" in err


def test_an_invalid_batch_is_quarantined_untouched(home, capsys):
    import pandas as pd

    day = date(2026, 12, 24)
    folder = home / "incoming" / f"date={day}"
    folder.mkdir(parents=True)
    source = pd.read_parquet(home / "incoming" / f"date={D0}" / "batch.parquet").drop(columns=["contract"])
    source.to_csv(folder / "batch.csv", index=False)
    raw = (folder / "batch.csv").read_bytes()
    code, _, err = run(capsys, "monitor", "--date", day.isoformat())
    assert code == 2 and "'contract'" in err and "required_column" in err
    assert (folder / "batch.csv").read_bytes() == raw
    reason = json.loads((home / "quarantine" / "monitoring" / f"date={day}" / "batch.csv" / "reason.json").read_text())
    assert reason["findings"][0]["column"] == "contract"
    assert not (home / "predictions" / f"date={day}").exists(), "nothing scored from a rejected batch"


def test_status_then_rollback_without_previous_champion(home, capsys):
    code, status, err = run(capsys, "status", "--json")
    assert code == 0, err
    assert status["champion"] == "1" and status["previous_champion"] is None and status["last_promotion"] is None
    assert status["last_decision"] is None
    code, _, err = run(capsys, "rollback")
    assert code == 2 and "previous_champion" in err


def test_retrain_respects_the_cooldown_unless_forced(home, capsys):
    state = home / "state" / "promotion.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    as_of = D0 + timedelta(days=11)
    state.write_text(
        json.dumps({"churnops_last_promotion": {"date": (as_of - timedelta(days=2)).isoformat(), "version": "1"}})
    )
    code, blocked, err = run(capsys, "retrain", "--date", as_of.isoformat(), "--json")
    assert code == 0, err
    assert blocked["decision"] == "skipped" and "in cooldown" in blocked["reason"]
    assert blocked["cooldown"] == "promotion" and blocked["cooldown_until"] == (as_of + timedelta(days=5)).isoformat()

    code, forced, err = run(capsys, "retrain", "--date", as_of.isoformat(), "--force", "--json")
    assert code == 0, err
    assert forced["forced"] is True and forced["challenger_version"] == "2"
    assert forced["decision"] == ("promoted" if forced["gain"] > 0.01 else "rejected")
    code, status, err = run(capsys, "status", "--json")
    assert code == 0, err
    assert status["last_decision"] == {
        "version": "2",
        "decision": forced["decision"],
        "reason": forced["reason"],
        "as_of": as_of.isoformat(),
        "gain": round(forced["gain"], 6),
    }
    # The forced attempt starts the retraining cooldown, whatever its decision.
    assert status["last_retraining"] == {
        "date": as_of.isoformat(),
        "run_id": f"retrain__{as_of}",
        "dag_id": "cli-retrain",
        "version": "2",
        "forced": True,
    }
    next_day = (as_of + timedelta(days=1)).isoformat()
    code, stopped, err = run(capsys, "retrain", "--date", next_day, "--json")
    assert code == 0, err
    # Inside both cooldowns the promotion's (7 days from its date) ends last.
    promoted_on = as_of if forced["decision"] == "promoted" else as_of - timedelta(days=2)
    assert (stopped["decision"], stopped["cooldown"]) == ("skipped", "promotion")
    assert stopped["cooldown_until"] == (promoted_on + timedelta(days=7)).isoformat()
    code, status, err = run(capsys, "status", "--date", next_day, "--json")
    assert code == 0, err
    assert status["cooldown"] == stopped["cooldown"] and status["retraining_cooldown_days"] == 3
