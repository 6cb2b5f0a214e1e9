"""churnops.modeling.thresholds: the decision threshold's rules and the metrics at a threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from churnops.config import ChurnopsConfig, ThresholdConfig
from churnops.modeling.thresholds import choose_threshold, classification_report_at, threshold_metrics
from tests.helpers import toy_dataset

# Ten rows, scores 0.1 … 1.0; the positives are those scored 0.4, 0.6, 0.7, 0.9 and 1.0.
Y = np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1])
S = np.round(np.arange(1, 11) / 10, 1)


def test_max_f1_picks_the_threshold_of_the_highest_f1_on_a_known_curve():
    # Flagging from 0.4 up: TP 5, FP 2, FN 0 → F1 10/12; from 0.6: TP 4, FP 1, FN 1 → 8/10; from 0.9: 4/5 …
    f1 = {t: f1_score(Y, (S >= t).astype(int)) for t in S}
    assert max(f1, key=f1.get) == 0.4 and f1[0.4] == pytest.approx(10 / 12)
    assert choose_threshold(Y, S, ThresholdConfig(rule="max_f1")) == 0.4


def test_max_f1_breaks_a_tie_towards_the_lower_threshold():
    # From 0.2 (TP 1, FP 0, FN 1) and from 0.1 (TP 2, FP 2, FN 0) F1 is 2/3 both times; the lower recalls more.
    y, s = np.array([1, 0, 0, 1]), np.array([0.1, 0.12, 0.15, 0.2])
    assert f1_score(y, s >= 0.2) == pytest.approx(f1_score(y, s >= 0.1)) == pytest.approx(2 / 3)
    assert max(f1_score(y, s >= t) for t in s) == pytest.approx(2 / 3)
    assert choose_threshold(y, s, ThresholdConfig()) == 0.1


@pytest.mark.parametrize(
    ("fn", "fp", "threshold"),
    [
        pytest.param(1.0, 1.0, 0.6, id="equal-costs"),  # fewest errors: 2 (one FP at 0.8, one FN at 0.4)
        pytest.param(5.0, 1.0, 0.4, id="missed-churner-dearer"),  # every positive caught, 2 FP
        pytest.param(1.0, 5.0, 0.9, id="false-alarm-dearer"),  # no FP: 3 positives missed
    ],
)
def test_cost_rule_moves_the_threshold_with_the_costs(fn, fp, threshold):
    rule = ThresholdConfig(rule="cost", cost_false_negative=fn, cost_false_positive=fp)
    costs = {t: fn * ((S < t) & (Y == 1)).sum() + fp * ((S >= t) & (Y == 0)).sum() for t in S}
    assert min(costs.values()) == costs[threshold]
    assert choose_threshold(Y, S, rule) == threshold


def test_a_dearer_missed_churner_never_raises_the_threshold():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2_000)
    s = np.clip(0.35 * y + rng.random(2_000) * 0.65, 0, 1)
    chosen = [
        choose_threshold(y, s, ThresholdConfig(rule="cost", cost_false_negative=fn, cost_false_positive=1.0))
        for fn in (0.2, 1.0, 3.0, 10.0)
    ]
    assert chosen == sorted(chosen, reverse=True) and chosen[0] > chosen[-1]
    assert all(c in s for c in chosen), "a threshold is one of the scores"


def test_a_threshold_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold(np.zeros(5), np.linspace(0, 1, 5), ThresholdConfig())


def test_threshold_metrics_and_report_at_a_threshold():
    result = threshold_metrics(Y, S, 0.6)
    assert result == {
        "threshold": 0.6,
        "precision": 0.8,
        "recall": 0.8,
        "f1": pytest.approx(0.8),
        "tn": 4,
        "fp": 1,
        "fn": 1,
        "tp": 4,
    }
    assert threshold_metrics(Y, S, 1.01)["precision"] == 0.0, "no row flagged: precision 0, not an error"
    text, report = classification_report_at(Y, S, 0.6, ("stays", "churns"))
    assert "churns" in text and report["churns"]["precision"] == pytest.approx(0.8)
    assert report["stays"]["support"] == 5


def test_the_rule_label_names_the_costs_and_the_config_rejects_bad_ones():
    assert ThresholdConfig().label == "max_f1"
    assert ThresholdConfig(rule="cost", cost_false_negative=5, cost_false_positive=1).label == "cost:fn=5,fp=1"
    assert ThresholdConfig(rule="cost", cost_false_negative=2.5).label == "cost:fn=2.5,fp=1"
    base = {"dataset": toy_dataset(["x"])}
    assert ChurnopsConfig.model_validate(base).training.threshold.rule == "max_f1"
    for bad in ({"rule": "youden"}, {"rule": "cost", "cost_false_positive": 0}, {"cost": 1}):
        with pytest.raises(ValueError):
            ChurnopsConfig.model_validate({**base, "training": {"threshold": bad}})
    assert ChurnopsConfig.model_validate(base).monitoring.min_precision is None
    with pytest.raises(ValueError):
        ChurnopsConfig.model_validate({**base, "monitoring": {"min_f1": 1.5}})


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.77, 1.01])
@pytest.mark.parametrize("dtype", [int, np.int8, bool, float])
def test_threshold_metrics_are_scikit_learns_to_the_bit(threshold, dtype):
    from sklearn import metrics as skm

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 2000)
    scores = np.round(rng.random(2000) * 0.6 + y * 0.3, 2)
    flagged = (scores >= threshold).astype(int)
    result = threshold_metrics(y.astype(dtype), scores, threshold)
    tn, fp, fn, tp = (int(n) for n in skm.confusion_matrix(y, flagged, labels=[0, 1]).ravel())
    assert result == {
        "threshold": threshold,
        "precision": float(skm.precision_score(y, flagged, zero_division=0)),
        "recall": float(skm.recall_score(y, flagged, zero_division=0)),
        "f1": float(skm.f1_score(y, flagged, zero_division=0)),
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }


def test_threshold_metrics_without_positives_are_zero_not_an_error():
    result = threshold_metrics(np.zeros(10, dtype=int), np.linspace(0, 1, 10), 0.5)
    assert (result["precision"], result["recall"], result["f1"], result["fp"], result["tn"]) == (0.0, 0.0, 0.0, 5, 5)
