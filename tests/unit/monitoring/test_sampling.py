"""churnops.monitoring.sampling: seeded capped samples, and the current side gathered chunk by chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.features import MISSING
from churnops.monitoring.drift import feature_drift
from churnops.monitoring.sampling import CurrentSide, current_side, sample_rows

# --- sample_rows -------------------------------------------------------------------------------------------------


def test_sample_rows_returns_small_frames_unchanged():
    frame = pd.DataFrame({"a": range(10)})
    assert sample_rows(frame, 10, seed=0) is frame
    assert sample_rows(frame, 11, seed=0) is frame


def test_sample_rows_caps_without_replacement_and_is_seeded():
    frame = pd.DataFrame({"a": range(1000)}, index=range(5000, 6000))
    first = sample_rows(frame, 100, seed=3)
    assert len(first) == 100
    assert first.index.is_unique and set(first.index) <= set(frame.index)
    assert first["a"].tolist() == (first.index - 5000).tolist()  # whole rows, not shuffled cells
    assert sample_rows(frame, 100, seed=3).equals(first)
    assert not sample_rows(frame, 100, seed=4).index.equals(first.index)


# --- current_side and CurrentSide --------------------------------------------------------------------------------


def chunks_of(frame: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    edges = np.cumsum([0, *sizes])
    return [frame.iloc[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def test_current_side_counts_every_row_and_samples_each_chunk_in_proportion(monitoring):
    rng = np.random.default_rng(3)
    current = pd.DataFrame(
        {
            "x": np.where(rng.random(10_000) < 0.1, np.nan, rng.normal(size=10_000)),
            "c": rng.choice(["a", "b", None], 10_000),
        }
    )
    config = monitoring(sample_size=1_000, seed=5)
    sizes = [2_500, 2_500, 3_000, 1_999, 1]
    side = current_side(chunks_of(current, sizes), len(current), ["x"], ["c"], config)
    assert side.rows == 10_000 and side.nulls["x"] == int(current["x"].isna().sum())
    pd.testing.assert_series_equal(
        side.counts["c"].sort_index(),
        current["c"].fillna(MISSING).value_counts().sort_index().rename(None),
        check_names=False,
    )
    assert [len(part) for part in side.sample] == [250, 250, 300, 199, 1]  # quotas add up to sample_size
    whole = current_side([current], len(current), ["x"], ["c"], config)
    # one chunk: exactly sample_rows(current, n, seed + 1), the pre-chunking sample
    pd.testing.assert_frame_equal(whole.sampled(["x"]), sample_rows(current, 1_000, 6)[["x"]])


def test_shards_merge_into_the_side_of_the_whole_day(monitoring):
    rng = np.random.default_rng(4)
    current = pd.DataFrame({"x": rng.normal(size=9_000), "c": rng.choice(["a", "b", "c"], 9_000)})
    config = monitoring(sample_size=900, seed=1)
    chunks = chunks_of(current, [2_000] * 4 + [1_000])
    whole = current_side(chunks, 9_000, ["x"], ["c"], config)
    first = current_side(chunks[:2], 9_000, ["x"], ["c"], config)
    second = current_side(chunks[2:], 9_000, ["x"], ["c"], config, first_row=4_000, first_chunk=2)
    merged = first.merge(second)
    assert merged.rows == whole.rows and merged.nulls == whole.nulls
    pd.testing.assert_series_equal(merged.counts["c"].sort_index(), whole.counts["c"].sort_index())
    pd.testing.assert_frame_equal(merged.sampled(["x"]), whole.sampled(["x"]))
    reference = pd.DataFrame({"x": rng.normal(size=3_000), "c": rng.choice(["a", "b"], 3_000)})
    assert feature_drift(reference, merged, ["x"], ["c"], config) == feature_drift(
        reference, whole, ["x"], ["c"], config
    )
    with pytest.raises(ValueError, match="do not fit a day of 5000 rows"):
        current_side(chunks, 5_000, ["x"], ["c"], config)


def test_a_saved_side_loads_back_and_merges_the_same(tmp_path, monitoring):
    rng = np.random.default_rng(5)
    current = pd.DataFrame(
        {
            "x": np.where(rng.random(4_000) < 0.2, np.nan, rng.normal(size=4_000)),
            "c": rng.choice(["a", "b", None], 4_000),
        }
    )
    config = monitoring(sample_size=500, seed=2)
    chunks = chunks_of(current, [1_000] * 4)
    first = current_side(chunks[:2], 4_000, ["x"], ["c"], config)
    second = current_side(chunks[2:], 4_000, ["x"], ["c"], config, first_row=2_000, first_chunk=2)
    loaded = CurrentSide.load(first.save(tmp_path / "first")).merge(CurrentSide.load(second.save(tmp_path / "second")))
    merged = first.merge(second)
    assert (loaded.rows, loaded.nulls) == (merged.rows, merged.nulls) == (4_000, {"x": int(current["x"].isna().sum())})
    pd.testing.assert_series_equal(loaded.counts["c"].sort_index(), merged.counts["c"].sort_index())
    pd.testing.assert_frame_equal(
        loaded.sampled(["x"]).reset_index(drop=True), merged.sampled(["x"]).reset_index(drop=True)
    )
    reference = pd.DataFrame({"x": rng.normal(size=2_000), "c": rng.choice(["a", "b"], 2_000)})
    assert feature_drift(reference, loaded, ["x"], ["c"], config) == feature_drift(
        reference, merged, ["x"], ["c"], config
    )
    empty = CurrentSide.load(CurrentSide().save(tmp_path / "empty"))
    assert (empty.rows, empty.counts, empty.nulls, empty.sample) == (0, {}, {}, [])
