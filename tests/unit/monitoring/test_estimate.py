"""churnops.monitoring.estimate: the label-free estimate of the day's performance (CBPE), its band and trust."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from churnops.data import partition, write_json
from churnops.monitoring.estimate import (
    BINS,
    ScoreSummary,
    estimate_errors,
    estimated_auc,
    estimated_performance,
    read_score_summary,
)
from churnops.monitoring.scoring import SCORE_COLUMN

D0 = date(2026, 4, 1)


def weighted_duplicate_auc(scores: np.ndarray) -> float:
    """The definition, brute force: every row once as a positive of weight p, once as a negative of weight 1 − p."""
    labels = np.r_[np.ones(len(scores)), np.zeros(len(scores))]
    return float(roc_auc_score(labels, np.r_[scores, scores], sample_weight=np.r_[scores, 1 - scores]))


@pytest.mark.parametrize(
    "scores",
    [
        pytest.param([0.1, 0.35, 0.8, 0.6, 0.05, 0.99, 0.42], id="distinct"),
        pytest.param([0.2, 0.2, 0.2, 0.7, 0.7, 0.9, 0.01, 0.5], id="ties"),
        pytest.param([0.0, 1.0, 0.3, 0.3, 1.0], id="certain-rows"),
    ],
)
def test_the_estimate_is_exactly_the_weighted_roc_auc_of_each_row_as_both_classes(scores):
    p = np.asarray(scores)
    assert estimated_auc(ScoreSummary().add(p)) == pytest.approx(weighted_duplicate_auc(p), abs=1e-12)


def test_equal_scores_estimate_one_half_and_no_weight_on_a_side_is_undefined(monitoring):
    assert estimated_auc(ScoreSummary().add(np.full(50, 0.3))) == pytest.approx(0.5, abs=1e-12)
    assert estimated_auc(ScoreSummary().add(np.zeros(50))) is None
    result = estimated_performance(ScoreSummary().add(np.ones(900)), 0.8, 0.01, monitoring())
    assert result["estimated_roc_auc"] is None and result["estimated_roc_auc_low"] is None
    assert result["trusted"] is False and result["alarm"] is False
    assert any("ROC-AUC undefined" in reason for reason in result["reasons"])


def test_scores_outside_zero_to_one_are_refused():
    for bad in ([0.2, 1.2], [-0.1], [0.5, np.nan]):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            ScoreSummary().add(bad)


def test_on_calibrated_scores_the_estimate_matches_the_realized_figures_and_its_band_holds_them(monitoring):
    rng = np.random.default_rng(7)
    p = rng.beta(2, 5, 200_000)  # calibrated by construction: each label is drawn from its score
    y = rng.binomial(1, p)
    threshold = 0.4
    result = estimated_performance(ScoreSummary(threshold=threshold).add(p), 0.8, 0.01, monitoring())
    realized = roc_auc_score(y, p)
    assert result["estimated_roc_auc"] == pytest.approx(realized, abs=0.003)
    assert result["estimated_roc_auc_low"] <= realized <= result["estimated_roc_auc_high"]
    assert 0.002 < result["estimated_roc_auc_high"] - result["estimated_roc_auc_low"] < 0.01
    predicted = (p >= threshold).astype(int)
    assert result["estimated_precision"] == pytest.approx(precision_score(y, predicted), abs=0.005)
    assert result["estimated_recall"] == pytest.approx(recall_score(y, predicted), abs=0.005)
    assert result["estimated_f1"] == pytest.approx(f1_score(y, predicted), abs=0.005)
    assert (result["threshold"], result["rows"], result["trusted"]) == (threshold, 200_000, True)


def test_the_band_holds_the_realized_roc_auc_of_about_95_in_100_label_draws(monitoring):
    rng = np.random.default_rng(11)
    p = rng.beta(1.5, 4, 5_000)
    result = estimated_performance(ScoreSummary().add(p), None, 0.01, monitoring())
    realized = [roc_auc_score(rng.binomial(1, p), p) for _ in range(200)]
    inside = np.mean([result["estimated_roc_auc_low"] <= r <= result["estimated_roc_auc_high"] for r in realized])
    assert 0.88 <= inside <= 0.99
    assert result["estimated_roc_auc"] == pytest.approx(np.mean(realized), abs=0.003)


def test_precision_recall_and_f1_at_the_threshold_are_the_expected_confusion_counts_exactly(monitoring):
    p = np.array([0.9, 0.6, 0.5, 0.49, 0.2, 0.05])
    result = estimated_performance(ScoreSummary(threshold=0.5).add(p), None, None, monitoring())
    tp, fp, fn = 0.9 + 0.6 + 0.5, 0.1 + 0.4 + 0.5, 0.49 + 0.2 + 0.05  # a score equal to the threshold is positive
    assert result["estimated_precision"] == pytest.approx(tp / (tp + fp), abs=1e-12)
    assert result["estimated_recall"] == pytest.approx(tp / (tp + fn), abs=1e-12)
    assert result["estimated_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)


def test_chunks_and_the_predictions_file_read_in_chunks_give_the_summary_of_all_scores(tmp_path):
    rng = np.random.default_rng(3)
    p = rng.random(10_001)
    whole = ScoreSummary(threshold=0.3).add(p)
    chunked = ScoreSummary(threshold=0.3)
    for part in np.array_split(p, 7):
        chunked.add(part)
    path = tmp_path / "predictions.parquet"
    frame = pd.DataFrame({"customerid": [str(k) for k in range(len(p))], SCORE_COLUMN: p})
    frame.to_parquet(path, row_group_size=3_000)  # row groups of 3,000, each added 1,000 rows at a time
    read = read_score_summary(path, 0.3, chunk_rows=1_000)
    for summary in (chunked, read):
        assert summary.counts.shape == (BINS,) and summary.rows == len(p)
        np.testing.assert_array_equal(summary.counts, whole.counts)
        np.testing.assert_allclose(summary.positive, whole.positive, rtol=1e-12)
        assert (summary.above_rows, summary.above_positive) == (whole.above_rows, pytest.approx(whole.above_positive))
        assert estimated_auc(summary) == pytest.approx(estimated_auc(whole), abs=1e-12)


def calibrated_summary(rows: int, seed: int = 0, a: float = 2.0, b: float = 5.0) -> ScoreSummary:
    return ScoreSummary().add(np.random.default_rng(seed).beta(a, b, rows))


def test_a_trusted_estimate_more_than_the_allowed_drop_below_the_holdout_alarms(monitoring):
    summary = calibrated_summary(5_000)
    auc = estimated_auc(summary)
    result = estimated_performance(summary, auc + 0.08, 0.02, monitoring())
    assert result["trusted"] is True and result["alarm"] is True
    assert result["drop"] == pytest.approx(0.08, abs=1e-9)
    (reason,) = result["reasons"]
    assert f"estimated ROC-AUC {auc:.4f}" in reason and "max_estimated_roc_auc_drop 0.05" in reason
    quiet = estimated_performance(summary, auc + 0.04, 0.02, monitoring())
    assert (quiet["trusted"], quiet["alarm"], quiet["reasons"]) == (True, False, [])
    off = estimated_performance(summary, auc + 0.2, 0.02, monitoring(max_estimated_roc_auc_drop=None))
    assert (off["trusted"], off["alarm"]) == (True, False)
    unknown = estimated_performance(summary, None, 0.02, monitoring())
    assert (unknown["drop"], unknown["alarm"]) == (None, False)


def test_a_drop_exactly_at_the_limit_does_not_alarm(monitoring):
    summary = calibrated_summary(5_000)
    auc = round(estimated_auc(summary), 12)
    limit = 0.05
    result = estimated_performance(summary, auc + limit, 0.02, monitoring(max_estimated_roc_auc_drop=limit))
    assert result["drop"] == pytest.approx(limit, abs=1e-12) and result["alarm"] is False


@pytest.mark.parametrize(
    ("rows", "ece", "why"),
    [
        pytest.param(300, 0.01, "300 rows, fewer than min_estimate_rows 500", id="few-rows"),
        pytest.param(5_000, None, "no holdout ECE (tag churnops.test_ece)", id="no-ece"),
        pytest.param(5_000, 0.09, "holdout ECE 0.0900 is above max_estimate_ece 0.05", id="miscalibrated"),
    ],
)
def test_an_untrusted_estimate_never_alarms_and_says_why(monitoring, rows, ece, why):
    summary = calibrated_summary(rows)
    result = estimated_performance(summary, estimated_auc(summary) + 0.3, ece, monitoring())
    assert result["estimated_roc_auc"] is not None, "still reported"
    assert (result["trusted"], result["alarm"]) == (False, False)
    assert any(why in reason for reason in result["reasons"]), result["reasons"]


def test_the_band_is_seeded(monitoring):
    summary = calibrated_summary(2_000)
    first, again = (estimated_performance(summary, None, 0.01, monitoring(seed=5)) for _ in range(2))
    other = estimated_performance(summary, None, 0.01, monitoring(seed=6))
    assert first == again
    assert (first["estimated_roc_auc_low"], first["estimated_roc_auc_high"]) != (
        other["estimated_roc_auc_low"],
        other["estimated_roc_auc_high"],
    )


# --- the estimate's track record ----------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNOPS_HOME", str(tmp_path))
    return tmp_path


def test_each_matured_label_day_with_an_estimate_in_its_report_gets_its_error(home, monitoring):
    rng = np.random.default_rng(2)
    days = [D0 + timedelta(days=k) for k in range(4)]
    frames = []
    for k, day in enumerate(days):
        p = rng.beta(2, 5, 400 if k != 3 else 150)  # the last day has too few labels to judge
        frames.append(pd.DataFrame({"label": rng.binomial(1, p), "score": p, "label_date": day.isoformat()}))
    outcomes = pd.concat(frames, ignore_index=True)
    reported = {days[0]: 0.74, days[2]: 0.71, days[3]: 0.7}  # day 1 has no report, day 2's
    for day, value in reported.items():
        write_json(
            partition("reports", day) / "drift_report.json", {"estimated_roc_auc": value, "estimate_trusted": True}
        )
    write_json(partition("reports", days[1]) / "drift_report.json", {"estimated_roc_auc": None})

    errors = estimate_errors(outcomes["label"], outcomes["score"], outcomes["label_date"], monitoring())
    assert [e["day"] for e in errors] == [days[0].isoformat(), days[2].isoformat()]
    for entry in errors:
        rows = outcomes[outcomes["label_date"] == entry["day"]]
        realized = roc_auc_score(rows["label"], rows["score"])
        assert entry["realized_roc_auc"] == pytest.approx(realized, abs=1e-12)
        assert entry["estimated_roc_auc"] == reported[date.fromisoformat(entry["day"])]
        assert entry["error"] == pytest.approx(entry["estimated_roc_auc"] - realized, abs=1e-12)
        assert (entry["n_labels"], entry["trusted"]) == (400, True)
