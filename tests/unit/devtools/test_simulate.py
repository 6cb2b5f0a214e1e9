"""churnops.devtools.simulate: production-like days drawn from the population, and the drift scenarios."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from churnops.config import load_config
from churnops.data.sources import label_vector
from churnops.devtools import generator, simulate
from churnops.devtools.simulate import SCENARIOS, drift_intensity, population, simulate_day, write_days
from churnops.errors import ChurnopsInputError
from churnops.modeling.models import build_model
from tests.helpers import TELCO_CONFIG, telco_table

START = date(2025, 3, 1)
FULL = START + timedelta(days=30)  # far past the 10-day ramp: full intensity
HALF = START + timedelta(days=4)  # intensity 0.5


@pytest.fixture(scope="module")
def config():
    return load_config(TELCO_CONFIG)


@pytest.fixture(scope="module")
def pop(config):
    return population(config)


@pytest.fixture(scope="module")
def model(config, pop):
    """The brief's yardstick: logistic regression fitted on the whole population."""
    features = pop[config.dataset.feature_columns]
    return build_model("logistic_regression", config).fit(features, label_vector(pop, config))


def day(pop, config, when=FULL, rows=2000, scenario="stable", seed=0, drift_start=START, **kwargs):
    return simulate_day(pop, config, when, rows, scenario, seed, drift_start, **kwargs)


def internals(pop, config, when=FULL, rows=2000, scenario="stable", seed=0, drift_start=START):
    """The generator's view of a one-chunk day: which population rows were drawn, labels before noise."""
    prepared = generator.prepare(pop, config)
    intensity = drift_intensity(when, drift_start)
    [chunk] = generator.day_chunks(prepared, when, rows, scenario, seed, intensity, simulate.CHUNK_ROWS)
    return chunk


def auc(model, config, batch, labels) -> float:
    scores = model.predict_proba(batch[config.dataset.feature_columns])[:, 1]
    return roc_auc_score(label_vector(labels, config), scores)


def churn_by(frame: pd.DataFrame, column: str, positive: np.ndarray) -> pd.Series:
    return pd.Series(positive, index=frame.index).groupby(frame[column].to_numpy()).mean()


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- population, intensity


def test_population_is_the_inner_join_of_the_typed_sources(config, pop):
    ds = config.dataset
    assert list(pop.columns) == [ds.id_column, *ds.feature_columns, ds.target]
    joined = telco_table(dtype=str)
    assert len(pop) == len(joined) and pop[ds.id_column].is_unique and pop[ds.id_column].is_monotonic_increasing
    assert all(pop[c].dtype == "float64" for c in ds.numeric_features)
    assert set(pop[ds.target]) == {"Yes", "No"}
    assert pop["totalcharges"].isna().sum() == (joined["totalcharges"].str.strip() == "").sum() > 0


def test_drift_intensity_ramps_linearly_from_drift_start():
    assert drift_intensity(START - timedelta(days=1), START) == 0.0
    assert drift_intensity(START, START) == pytest.approx(0.1)
    assert drift_intensity(HALF, START) == pytest.approx(0.5)
    assert drift_intensity(START + timedelta(days=9), START) == 1.0
    assert drift_intensity(FULL, START) == 1.0
    assert drift_intensity(START, START, ramp_days=1) == 1.0
    assert drift_intensity(START + timedelta(days=1), START, ramp_days=4) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="ramp_days"):
        drift_intensity(START, START, ramp_days=0)


# --------------------------------------------------------------------------- one day


def test_a_day_is_a_function_of_its_arguments_only(pop, config):
    batch, labels = day(pop, config, scenario="mixed", seed=3)
    again_batch, again_labels = day(pop, config, scenario="mixed", seed=3)
    pd.testing.assert_frame_equal(batch, again_batch)
    pd.testing.assert_frame_equal(labels, again_labels)

    features = config.dataset.feature_columns
    other_seed, _ = day(pop, config, scenario="mixed", seed=4)
    other_day, _ = day(pop, config, when=FULL + timedelta(days=1), scenario="mixed", seed=3)
    assert not batch[features].equals(other_seed[features])
    assert not batch[features].equals(other_day[features])
    assert other_day["customerid"].str.startswith(f"{FULL + timedelta(days=1):%Y%m%d}-").all()


def test_batch_holds_id_and_features_labels_hold_id_and_target(pop, config):
    ds = config.dataset
    batch, labels = day(pop, config, rows=3000, scenario="concept_drift")
    assert list(batch.columns) == [ds.id_column, *ds.feature_columns]
    assert list(labels.columns) == [ds.id_column, ds.target]
    assert len(batch) == len(labels) == 3000
    assert batch[ds.id_column].is_unique
    assert batch[ds.id_column].tolist() == labels[ds.id_column].tolist()
    assert batch[ds.id_column].iloc[0] == f"{FULL:%Y%m%d}-00000000"
    assert batch[ds.id_column].map(lambda i: bool(re.fullmatch(r"\d{8}-\d{8}", i))).all()
    assert set(labels[ds.target]) == {"Yes", "No"}
    assert all(batch[c].dtype == "float64" for c in ds.numeric_features)
    assert all(batch[c].dtype == object for c in ds.categorical_features)


def test_labels_are_the_drawn_rows_labels_with_2_to_5_percent_flipped(pop, config):
    target = pop[config.dataset.target].to_numpy()
    rates = []
    for offset in range(6):
        when = FULL + timedelta(days=offset)
        _, labels = day(pop, config, when=when, rows=4000, seed=offset)
        drawn = target[internals(pop, config, when=when, rows=4000, seed=offset).source_rows]
        changed = labels[config.dataset.target].to_numpy() != drawn
        rates.append(changed.mean())
        assert 0.02 <= changed.mean() <= 0.05
        # Half the flips go each way, so noise alone does not move the churn rate.
        assert abs((labels["churn"] == "Yes").sum() - (drawn == "Yes").sum()) <= 1
    assert len(set(rates)) == len(rates)  # the rate is drawn per day


def test_numeric_noise_is_small_and_keeps_the_columns_meaning(pop, config):
    batch, _ = day(pop, config, rows=5000, seed=1)
    drawn = pop.iloc[internals(pop, config, rows=5000, seed=1).source_rows].reset_index(drop=True)

    tenure, before = batch["tenure"], drawn["tenure"]
    assert (tenure == tenure.round()).all() and (tenure >= 0).all()
    assert (tenure - before).abs().max() == 1 and (tenure != before).mean() > 0.5
    assert ((tenure == 0) == (before == 0)).all()  # first-month customers stay first-month

    ratio = batch["monthlycharges"] / drawn["monthlycharges"]
    assert 0.015 < ratio.std() < 0.025 and abs(ratio.mean() - 1) < 0.002
    assert (batch["monthlycharges"] == batch["monthlycharges"].round(2)).all()
    missing = batch["totalcharges"].isna()
    assert missing.any() and (missing == drawn["totalcharges"].isna()).all()
    assert 0.015 < (batch["totalcharges"] / drawn["totalcharges"]).std() < 0.025

    for column in config.dataset.categorical_features:
        assert (batch[column] == drawn[column]).all()


def test_a_stable_day_keeps_the_population_mix(pop, config):
    batch, labels = day(pop, config, rows=20_000, seed=2)
    for column in ("contract", "internetservice", "paymentmethod"):
        shift = batch[column].value_counts(normalize=True) - pop[column].value_counts(normalize=True)
        assert shift.abs().max() < 0.03, column
    assert abs((labels["churn"] == "Yes").mean() - (pop["churn"] == "Yes").mean()) < 0.02


def test_covariate_drift_shifts_the_mix_but_not_the_labels_of_rows(pop, config):
    batch, labels = day(pop, config, rows=20_000, scenario="covariate_drift", seed=5)
    chunk = internals(pop, config, rows=20_000, scenario="covariate_drift", seed=5)
    share = (batch["contract"] == "Month-to-month").mean() - (pop["contract"] == "Month-to-month").mean()
    assert share > 0.10
    assert (batch["internetservice"] == "Fiber optic").mean() > (pop["internetservice"] == "Fiber optic").mean() + 0.05

    # Every row keeps its own label but for the noise flips: P(churn | x) is unchanged ...
    np.testing.assert_array_equal(chunk.positive ^ chunk.flipped, chunk.original)
    # ... hence P(churn | contract) only moves a little (through the tilt on fiber and tenure).
    before = churn_by(pop, "contract", pop["churn"].eq("Yes").to_numpy())
    after = churn_by(batch, "contract", labels["churn"].eq("Yes").to_numpy())
    assert (after - before).abs().max() < 0.10, (before, after)  # concept drift moves it by > 0.15

    drawn = pop["monthlycharges"].to_numpy()[chunk.source_rows]
    assert np.median(batch["monthlycharges"] / drawn) == pytest.approx(1.25, abs=0.01)


def test_concept_drift_breaks_a_model_trained_on_the_population(pop, config, model):
    stable = [auc(model, config, *day(pop, config, rows=20_000, seed=seed)) for seed in (0, 1)]
    assert min(stable) >= 0.80, stable
    half = auc(model, config, *day(pop, config, when=HALF, rows=20_000, scenario="concept_drift"))
    batch, labels = day(pop, config, rows=20_000, scenario="concept_drift")
    full = auc(model, config, batch, labels)
    assert full < 0.70 and full < half < min(stable), (stable, half, full)

    # The features keep their mix; what changed is who churns.
    shift = batch["contract"].value_counts(normalize=True) - pop["contract"].value_counts(normalize=True)
    assert shift.abs().max() < 0.03
    churn = churn_by(batch, "contract", labels["churn"].eq("Yes").to_numpy())
    assert churn["Two year"] > 0.15 and churn["Month-to-month"] < 0.35, churn


def test_mixed_drifts_both_the_mix_and_the_concept(pop, config, model):
    batch, labels = day(pop, config, rows=10_000, scenario="mixed")
    assert (batch["contract"] == "Month-to-month").mean() > (pop["contract"] == "Month-to-month").mean() + 0.10
    assert auc(model, config, batch, labels) < 0.70


def test_relation_shift_sets_a_new_relation_that_a_retrained_model_learns(pop, config, model):
    """What the demo's promotion rests on: a model refitted with one shifted day beats the old one on later days."""
    shifted_day, shifted_labels = day(pop, config, rows=2000, scenario="relation_shift", seed=3)
    batch, labels = day(pop, config, when=FULL + timedelta(days=1), rows=20_000, scenario="relation_shift")
    assert (batch["contract"] == "Month-to-month").mean() > (pop["contract"] == "Month-to-month").mean() + 0.10

    # Loyal fiber customers now churn most: the old model ranks them among the safest.
    fiber = batch["internetservice"].eq("Fiber optic").to_numpy()
    loyal = batch["contract"].isin(["One year", "Two year"]).to_numpy()
    churned = labels["churn"].eq("Yes").to_numpy()
    assert churned[fiber & loyal].mean() > 0.6 > 0.2 > churned[loyal & ~fiber].mean()

    features = config.dataset.feature_columns
    refit = pd.concat([pop, shifted_day.merge(shifted_labels, on=config.dataset.id_column)], ignore_index=True)
    retrained = build_model("logistic_regression", config).fit(refit[features], label_vector(refit, config))
    old, new = auc(model, config, batch, labels), auc(retrained, config, batch, labels)
    assert new - old > 0.03, (old, new)  # well above the policy's 0.01


@pytest.mark.parametrize("scenario", SCENARIOS[1:])
def test_before_drift_start_a_drift_scenario_is_the_stable_one(pop, config, scenario):
    before = START - timedelta(days=1)
    for got, want in zip(day(pop, config, when=before, scenario=scenario), day(pop, config, when=before), strict=True):
        pd.testing.assert_frame_equal(got, want)
    first_drift_day, _ = day(pop, config, when=START, scenario=scenario)
    assert not first_drift_day.equals(day(pop, config, when=START)[0])


def test_bad_arguments_are_refused(pop, config, tmp_path):
    with pytest.raises(ValueError, match="unknown scenario"):
        day(pop, config, scenario="drifty")
    with pytest.raises(ValueError, match="rows"):
        day(pop, config, rows=0)
    with pytest.raises(ValueError, match="seed"):
        day(pop, config, seed=-1)
    with pytest.raises(ValueError, match="days"):
        write_days(config, tmp_path, START, 0)
    with pytest.raises(ValueError, match="unknown scenario"):
        write_days(config, tmp_path, START, 2, scenario="drifty")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    three_labels = pop.assign(churn=np.where(np.arange(len(pop)) % 3 == 0, "Maybe", pop["churn"]))
    with pytest.raises(ChurnopsInputError, match="binary"):
        day(three_labels, config)


# --------------------------------------------------------------------------- files


def test_write_days_writes_each_day_as_if_generated_alone(pop, config, tmp_path):
    home = tmp_path / "home"
    written = write_days(config, home, START, 3, rows_per_day=500, scenario="covariate_drift", seed=7)
    assert [w["date"] for w in written] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    assert [w["intensity"] for w in written] == pytest.approx([0.1, 0.2, 0.3])  # drift_start defaults to start
    for offset, summary in enumerate(written):
        when = START + timedelta(days=offset)
        assert set(summary) == {"date", "rows", "scenario", "intensity", "paths", "positive_rate"}
        assert summary["rows"] == 500 and summary["scenario"] == "covariate_drift"
        assert summary["paths"] == {
            "batch": str(home / "incoming" / f"date={when}" / "batch.parquet"),
            "labels": str(home / "labels" / f"date={when}" / "labels.parquet"),
        }
        batch, labels = pd.read_parquet(summary["paths"]["batch"]), pd.read_parquet(summary["paths"]["labels"])
        want_batch, want_labels = day(pop, config, when=when, rows=500, scenario="covariate_drift", seed=7)
        pd.testing.assert_frame_equal(batch, want_batch)
        pd.testing.assert_frame_equal(labels, want_labels)
        assert summary["positive_rate"] == pytest.approx((labels["churn"] == "Yes").mean())
    assert sorted({p.name for p in home.rglob("*") if p.is_file()}) == ["batch.parquet", "labels.parquet"]  # no temp

    # The middle day written on its own (same drift_start) is the same file, byte for byte.
    alone = write_days(
        config,
        tmp_path / "alone",
        START + timedelta(days=1),
        1,
        rows_per_day=500,
        scenario="covariate_drift",
        seed=7,
        drift_start=START,
    )
    for kind in ("batch", "labels"):
        assert sha256(alone[0]["paths"][kind]) == sha256(written[1]["paths"][kind])


def test_rewriting_a_day_gives_identical_bytes(config, tmp_path):
    first = write_days(config, tmp_path, START, 2, rows_per_day=300, scenario="mixed")
    digests = {p: sha256(p) for w in first for p in w["paths"].values()}
    Path(first[0]["paths"]["batch"]).write_bytes(b"half-written garbage")
    again = write_days(config, tmp_path, START, 2, rows_per_day=300, scenario="mixed")
    assert again == first
    assert {p: sha256(p) for p in digests} == digests


def test_big_days_are_generated_and_written_in_chunks(pop, config, tmp_path):
    [summary] = write_days(config, tmp_path, START, 1, rows_per_day=2500, scenario="concept_drift", chunk_rows=1000)
    for path in summary["paths"].values():
        meta = pq.ParquetFile(path).metadata
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    batch = pd.read_parquet(summary["paths"]["batch"])
    want_batch, want_labels = day(pop, config, when=START, rows=2500, scenario="concept_drift", chunk_rows=1000)
    pd.testing.assert_frame_equal(batch, want_batch)
    pd.testing.assert_frame_equal(pd.read_parquet(summary["paths"]["labels"]), want_labels)
    assert batch["customerid"].is_unique and batch["customerid"].iloc[-1] == f"{START:%Y%m%d}-00002499"
    # Each chunk has its own stream: the second is not a replay of the first.
    first, second = batch.iloc[:1000].reset_index(drop=True), batch.iloc[1000:2000].reset_index(drop=True)
    assert not first["monthlycharges"].equals(second["monthlycharges"])
    assert all(batch[c].dtype == object for c in config.dataset.categorical_features)  # plain strings on disk


# --------------------------------------------------------------------------- another dataset


@pytest.fixture
def breast_cancer(tmp_path):
    """scikit-learn's breast-cancer table as two raw sources, plus an integral count, a 0/1 flag and a
    categorical column, with some blanks."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    frame.insert(0, "patient_id", [f"P{i:05d}" for i in range(len(frame))])
    frame["visits"] = np.arange(len(frame)) % 13 + 1
    frame["smoker"] = np.arange(len(frame)) % 2
    rows = np.arange(len(frame))
    frame["clinic"] = np.where(rows % 17 == 0, "", np.array(["north", "south", "east"])[rows % 3])
    frame.loc[::50, "mean_texture"] = np.nan
    frame["diagnosis"] = np.where(frame.pop("target") == 0, "malignant", "benign")
    numeric = [*features, "visits", "smoker"]
    half = len(numeric) // 2
    frame[["patient_id", *numeric[:half], "clinic"]].to_csv(tmp_path / "measurements.csv", index=False)
    frame[["patient_id", *numeric[half:], "diagnosis"]].to_parquet(tmp_path / "outcomes.parquet", index=False)
    raw = {
        "dataset": {
            "name": "breast_cancer",
            "id_column": "patient_id",
            "target": "diagnosis",
            "positive_label": "malignant",
            "sources": [
                {"name": "measurements", "path": "measurements.csv"},
                {"name": "outcomes", "path": "outcomes.parquet"},
            ],
            "numeric_features": numeric,
            "categorical_features": ["clinic"],
        }
    }
    path = tmp_path / "breast_cancer.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path)


def test_another_dataset_simulates_without_the_telco_rules(breast_cancer, tmp_path, caplog):
    config = breast_cancer
    pop = population(config)
    assert len(pop) == 569 and list(pop.columns) == ["patient_id", *config.dataset.feature_columns, "diagnosis"]
    for scenario in SCENARIOS:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="churnops.devtools.simulate"):
            batch, labels = day(pop, config, rows=1000, scenario=scenario)
        assert list(batch.columns) == ["patient_id", *config.dataset.feature_columns]
        assert set(labels["diagnosis"]) == {"malignant", "benign"}
        assert (batch["visits"] == batch["visits"].round()).all() and set(batch["smoker"]) == {0.0, 1.0}
        drawn = pop.iloc[internals(pop, config, rows=1000, scenario=scenario).source_rows].reset_index(drop=True)
        ratio = batch["mean_radius"] / drawn["mean_radius"]
        assert 0.015 < ratio.std() < 0.025
        assert (batch["mean_texture"].isna() == drawn["mean_texture"].isna()).all()
        assert (batch["clinic"].isna() == drawn["clinic"].isna()).all() and batch["clinic"].isna().any()
        chunk = internals(pop, config, rows=1000, scenario=scenario)
        np.testing.assert_array_equal(chunk.positive ^ chunk.flipped, chunk.original)  # no concept rule applies
        assert bool(caplog.records) == (scenario != "stable")

    [summary] = write_days(config, tmp_path / "home", START, 1, rows_per_day=500, scenario="mixed")
    want_batch, want_labels = day(pop, config, when=START, rows=500, scenario="mixed")
    pd.testing.assert_frame_equal(pd.read_parquet(summary["paths"]["batch"]), want_batch)  # blanks survive the trip
    pd.testing.assert_frame_equal(pd.read_parquet(summary["paths"]["labels"]), want_labels)
