"""churnops.monitoring.outcomes.matured_outcomes: the join of matured labels to the scores given for them.

A label file that lists the scored ids in their order is paired row for row (compared in Arrow);
any other is looked up by id hash. Both give what a plain merge on the typed id gives.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import churnops.monitoring.outcomes as outcomes_module
from churnops.config import load_config
from churnops.data import partition
from churnops.data.storage import atomic_parquet_writer
from churnops.monitoring.outcomes import matured_outcomes
from tests.helpers import TELCO_CONFIG, churnops_environment

D0 = date(2026, 3, 1)
ROWS = 1_000


def write_parquet(frame: pd.DataFrame, path, row_group: int) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_parquet_writer(path, table.schema) as writer:
        writer.write_table(table, row_group_size=row_group)


def scored_day(day: date, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = [f"{day:%Y%m%d}-{i:06d}" for i in range(ROWS)]
    predictions = pd.DataFrame({"customerid": ids, "score": rng.random(ROWS), "model_version": "1"})
    write_parquet(predictions, partition("predictions", day) / "predictions.parquet", row_group=300)
    return predictions


def labelled(predictions: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customerid": predictions["customerid"], "churn": rng.choice(["Yes", "No"], len(predictions))})


# Each day's label file, from its predictions: (the frame, written as, whether it lists the scored ids in order).
LAYOUTS = {
    "same order": (lambda f: f, "parquet", True),
    "shuffled": (lambda f: f.sample(frac=1.0, random_state=1), "parquet", False),
    "one id differs": (
        lambda f: f.assign(customerid=f["customerid"].where(f.index != 500, "stranger")),
        "parquet",
        False,
    ),
    "fewer rows": (lambda f: f.iloc[::2], "parquet", False),
    "same order, CSV": (lambda f: f, "csv", False),
}


@pytest.fixture
def home(tmp_path):
    with churnops_environment(tmp_path, TELCO_CONFIG):
        yield tmp_path


def test_label_files_in_the_scored_order_are_paired_row_for_row_as_the_hash_lookup_pairs_them(home, monkeypatch):
    config = load_config()
    days, expected = [], []
    for k, (name, (layout, kind, aligned)) in enumerate(LAYOUTS.items()):
        day = D0 + timedelta(days=k)
        days.append(day)
        predictions = scored_day(day, seed=k)
        labels = layout(labelled(predictions, seed=100 + k))
        folder = partition("labels", day)
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "csv":
            labels.to_csv(folder / "labels.csv", index=False)
        else:
            write_parquet(labels, folder / "labels.parquet", row_group=700)  # row groups unlike the predictions'
        merged = labels.merge(predictions, on="customerid", how="inner")  # ids are distinct: one-to-one
        expected.append(merged.assign(label=(merged["churn"] == "Yes").astype("int8"), label_date=day.isoformat()))
        source = outcomes_module.Source(name="labels", path=next(folder.iterdir()))
        pairs = outcomes_module._aligned_scores(
            source, partition("predictions", day) / "predictions.parquet", "customerid", 256
        )
        assert (pairs is not None) == aligned, name
        if aligned:
            assert pairs.tolist() == predictions["score"].tolist()
    wanted = pd.concat(expected, ignore_index=True)

    paired = matured_outcomes(config, days)
    monkeypatch.setattr(outcomes_module, "_aligned_scores", lambda *args: None)
    looked_up = matured_outcomes(config, days)
    for got in (paired, looked_up):
        assert got["score"].tolist() == wanted["score"].tolist()
        assert got["label"].tolist() == wanted["label"].tolist()
        assert got["label_date"].astype(str).tolist() == wanted["label_date"].tolist()
        assert got.attrs["labels_without_prediction"] == 1  # "stranger"
        assert got.attrs["rejected_label_files"] == []
    pd.testing.assert_frame_equal(paired, looked_up)
    assert paired.attrs == looked_up.attrs
