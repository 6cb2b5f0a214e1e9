"""churnops.retraining.policy: the >min_gain rule at its boundary, the bootstrap CI, the cooldown by date."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churnops.config import PolicyConfig
from churnops.retraining.policy import cooldown_status, decide_promotion, paired_bootstrap_gain

POLICY = PolicyConfig()


@pytest.mark.parametrize(
    ("champion", "challenger", "promote"),
    [
        (0.85, 0.86, False),  # gain exactly 0.01 (0.010000000000000009 in floats): not *more than* 0.01
        (0.80, 0.81, False),
        (0.85, 0.8601, True),  # 0.0101
        (0.85, 0.855, False),  # better by 0.005 only
        (0.85, 0.84, False),  # worse
        (0.70, 0.90, True),
    ],
)
def test_gain_rule(champion, challenger, promote):
    decision = decide_promotion(champion, challenger, POLICY)
    assert decision.promote is promote
    assert decision.gain == pytest.approx(challenger - champion)
    assert f"{challenger:.4f}" in decision.reason and f"{champion:.4f}" in decision.reason


def test_min_gain_comes_from_config():
    assert decide_promotion(0.80, 0.82, PolicyConfig(min_gain=0.03)).promote is False
    assert decide_promotion(0.80, 0.80001, PolicyConfig(min_gain=0.0)).promote is True


def test_significance_guard_only_when_enabled():
    strict = PolicyConfig(require_significant_gain=True)
    straddling = {"low": -0.004, "high": 0.05, "level": 0.95}
    assert decide_promotion(0.80, 0.83, POLICY, straddling).promote is True
    guarded = decide_promotion(0.80, 0.83, strict, straddling)
    assert guarded.promote is False and "does not exclude 0" in guarded.reason
    assert decide_promotion(0.80, 0.83, strict, {"low": 0.01, "high": 0.05}).promote is True
    assert decide_promotion(0.80, 0.83, strict, None).promote is False


def test_paired_bootstrap_brackets_the_observed_gain():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 3000)
    champion = y * 0.6 + rng.normal(0, 0.5, 3000)
    challenger = y * 1.0 + rng.normal(0, 0.5, 3000)
    observed = roc_auc_score(y, challenger) - roc_auc_score(y, champion)
    ci = paired_bootstrap_gain(y, champion, challenger, n_samples=300, seed=3)
    assert ci["low"] < observed < ci["high"]
    assert ci["low"] > 0, "a clearly better model has a CI above 0"
    assert ci == paired_bootstrap_gain(y, champion, challenger, n_samples=300, seed=3), "seeded"


@pytest.mark.parametrize("rows", [12, 400])
def test_paired_bootstrap_equals_roc_auc_score_on_each_resample(rows):
    """The weighted Mann-Whitney AUCs are sklearn's on the resampled rows, ties and skipped
    one-class resamples (frequent with 12 rows) included."""
    rng = np.random.default_rng(rows)
    y = (rng.random(rows) < 0.25).astype(int)
    champion = np.round(rng.random(rows), 1)  # many ties
    challenger = np.round(y * 0.3 + rng.random(rows), 2)
    draws = np.random.default_rng(5)
    expected = []
    for _ in range(200):  # the same draws, scored the plain way
        index = draws.integers(0, rows, rows)
        if y[index].min() != y[index].max():
            expected.append(roc_auc_score(y[index], challenger[index]) - roc_auc_score(y[index], champion[index]))
    ci = paired_bootstrap_gain(y, champion, challenger, n_samples=200, seed=5)
    assert ci["n"] == len(expected)
    assert ci["mean"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert [ci["low"], ci["high"]] == pytest.approx(np.percentile(expected, [2.5, 97.5]).tolist(), abs=1e-12)


def test_paired_bootstrap_of_identical_models_is_zero():
    rng = np.random.default_rng(2)
    y, scores = rng.integers(0, 2, 500), rng.random(500)
    ci = paired_bootstrap_gain(y, scores, scores, n_samples=50)
    assert ci["low"] == ci["high"] == ci["mean"] == 0


@pytest.mark.parametrize(
    ("as_of", "active", "days_left"),
    [
        (date(2026, 11, 10), True, 7),  # the promotion day itself
        (date(2026, 11, 16), True, 1),  # P + 6
        (date(2026, 11, 17), False, 0),  # P + 7: free again
        (date(2026, 12, 1), False, 0),
        (date(2026, 11, 1), True, 16),  # a replay of an earlier day is blocked too: dates, not wall clock
    ],
)
def test_cooldown_boundaries_by_date(as_of, active, days_left):
    status = cooldown_status(as_of, date(2026, 11, 10), 7)
    assert (status.active, status.days_left) == (active, days_left)
    assert status.until == date(2026, 11, 17)
    assert ("in cooldown" in status.reason()) is active


def test_no_cooldown_without_a_promotion_or_with_zero_days():
    assert cooldown_status(date(2026, 11, 10), None, 7).active is False
    assert cooldown_status(date(2026, 11, 10), date(2026, 11, 10), 0).active is False
