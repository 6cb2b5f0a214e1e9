"""churnops.monitoring.outcomes: realized performance on matured labels, its alarms and rounded drops."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churnops.monitoring.outcomes import realized_performance

# --- realized performance ----------------------------------------------------------------------------------------


def _labels_with_auc_075(repeats: int) -> tuple[np.ndarray, np.ndarray]:
    # positives score 0.2 and 0.4, negatives 0.1 and 0.3: 3 of the 4 pairs are ordered → ROC-AUC 0.75 exactly
    return np.array([0, 1, 0, 1] * repeats), np.array([0.1, 0.2, 0.3, 0.4] * repeats)


@pytest.mark.parametrize(
    ("changes", "reference", "realized", "drop", "alarm", "reason"),
    [
        pytest.param({}, 0.76, 0.75, 0.01, False, None, id="at-the-floor-is-fine"),
        pytest.param({"min_roc_auc": 0.8}, 0.76, 0.75, 0.01, True, "below min_roc_auc 0.8", id="below-floor"),
        pytest.param({"min_roc_auc": 0.7}, 0.81, 0.75, 0.06, True, "0.0600 below the champion", id="drop-too-big"),
        # 0.8 − 0.75 is 0.05000000000000004 in float64: rounding makes the equal drop no alarm
        pytest.param({"min_roc_auc": 0.7}, 0.8, 0.75, 0.05, False, None, id="drop-exactly-max"),
        pytest.param({"min_roc_auc": 0.7}, None, 0.75, None, False, None, id="no-reference"),
    ],
)
def test_realized_performance_alarms(changes, reference, realized, drop, alarm, reason, monitoring):
    y, scores = _labels_with_auc_075(50)  # 200 labels = min_labels
    assert roc_auc_score(y, scores) == 0.75
    result = realized_performance(y, scores, reference, monitoring(**changes))
    assert result["n_labels"] == 200
    assert (result["realized_roc_auc"], result["reference_roc_auc"], result["drop"]) == (realized, reference, drop)
    assert result["alarm"] is alarm
    if reason:
        assert any(reason in r for r in result["reasons"])
    else:
        assert result["reasons"] == []


def test_float_subtraction_is_why_drops_are_rounded():
    assert 0.8 - 0.75 > 0.05


@pytest.mark.parametrize(
    ("y", "scores", "reason"),
    [
        pytest.param(*_labels_with_auc_075(49), "196 matured labels, fewer than min_labels 200", id="too-few"),
        pytest.param(np.zeros(300, dtype=int), np.linspace(0, 1, 300), "all 300 matured labels are 0", id="one-class"),
        pytest.param(np.array([], dtype=int), np.array([]), "0 matured labels", id="none"),
    ],
)
def test_realized_performance_not_judged(y, scores, reason, monitoring):
    result = realized_performance(y, scores, 0.9, monitoring())
    assert result["realized_roc_auc"] is None and result["drop"] is None and result["alarm"] is False
    assert result["reference_roc_auc"] == 0.9
    assert reason in result["reasons"][0]


def test_realized_performance_matches_sklearn(monitoring):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 1000)
    scores = np.clip(y * 0.3 + rng.random(1000) * 0.7, 0, 1)
    result = realized_performance(y, scores, None, monitoring())
    assert result["realized_roc_auc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


# --- business metrics at the version's threshold -----------------------------------------------------------------


def test_precision_recall_and_f1_are_measured_at_the_given_threshold(monitoring):
    y, scores = _labels_with_auc_075(50)  # positives 0.2 and 0.4, negatives 0.1 and 0.3
    at_half = realized_performance(y, scores, None, monitoring())
    assert (at_half["threshold"], at_half["precision"], at_half["recall"], at_half["f1"]) == (0.5, 0.0, 0.0, 0.0)
    # From 0.3: 50 positives (0.4) and 50 negatives (0.3) flagged, 50 positives (0.2) missed.
    at_030 = realized_performance(y, scores, None, monitoring(), threshold=0.3)
    assert (at_030["precision"], at_030["recall"], at_030["f1"]) == (0.5, 0.5, 0.5)
    assert at_030["confusion"] == {"tn": 50, "fp": 50, "fn": 50, "tp": 50}
    assert at_030["realized_roc_auc"] == at_half["realized_roc_auc"] == 0.75, "the ranking ignores the threshold"
    assert at_030["alarm"] is False, "no minimum configured: no alarm"


@pytest.mark.parametrize(
    ("minimum", "alarm", "reason"),
    [
        pytest.param(
            {"min_precision": 0.6}, True, "realized precision 0.5000 at threshold 0.3000 is below min_precision 0.6"
        ),
        pytest.param({"min_recall": 0.51}, True, "realized recall 0.5000 at threshold 0.3000 is below min_recall 0.51"),
        pytest.param({"min_f1": 0.7}, True, "realized f1 0.5000 at threshold 0.3000 is below min_f1 0.7"),
        pytest.param({"min_f1": 0.5, "min_precision": 0.5, "min_recall": 0.5}, False, None, id="at-the-minimum"),
    ],
)
def test_a_configured_minimum_raises_an_alarm_the_decision_names(minimum, alarm, reason, monitoring):
    from churnops.monitoring.report import decide

    y, scores = _labels_with_auc_075(50)
    result = realized_performance(y, scores, None, monitoring(**minimum), threshold=0.3)
    assert result["alarm"] is alarm
    verdict = decide({"drifted_features": [], "dataset_drift": False}, {"drifted": False}, result)
    assert verdict["decision"] == ("retrain" if alarm else "none")
    assert verdict["reasons"] == ([f"performance: {reason} (200 labels)"] if alarm else [])
    assert verdict["triggers"] == (["performance"] if alarm else [])


def test_unjudged_days_have_no_business_metrics(monitoring):
    y, scores = _labels_with_auc_075(10)  # 40 labels, fewer than min_labels
    result = realized_performance(y, scores, None, monitoring(min_precision=0.9), threshold=0.3)
    assert (result["precision"], result["recall"], result["f1"], result["confusion"]) == (None, None, None, None)
    assert result["alarm"] is False and result["threshold"] == 0.3


# --- the exact ROC-AUC on compact arrays ---------------------------------------------------------------------------


def _pairwise_auc(y: np.ndarray, scores: np.ndarray) -> float:
    # The definition: over every (positive, negative) pair, 1 when the positive scores higher, ½ on a tie.
    from fractions import Fraction

    pos, neg = scores[y == 1][:, None], scores[y == 0][None, :]
    doubled = int(2 * (pos > neg).sum() + (pos == neg).sum())
    return float(Fraction(doubled, 2 * pos.size * neg.size))


@pytest.mark.parametrize(
    ("n", "decimals", "seed"),
    [
        pytest.param(500, None, 0, id="distinct-scores"),
        pytest.param(500, 1, 1, id="heavy-ties"),
        pytest.param(700, 2, 2, id="some-ties"),
        pytest.param(3, None, 3, id="tiny"),
    ],
)
def test_roc_auc_is_the_pairwise_definition_and_sklearns_value(n, decimals, seed):
    from churnops.monitoring.outcomes import roc_auc

    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
    scores = np.clip(y * 0.2 + rng.random(n) * 0.8, 0, 1)
    if decimals is not None:
        scores = np.round(scores, decimals)
    exact = _pairwise_auc(y, scores)
    assert roc_auc(y.astype(np.int8), scores) == exact, "one rounding, from integer counts"
    assert roc_auc(y.astype(bool), scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-15)


def test_roc_auc_in_blocks_gives_the_same_value(monkeypatch):
    import churnops.monitoring.outcomes as outcomes

    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 5000)
    scores = np.round(rng.random(5000) * 0.7 + y * 0.3, 3)
    whole = outcomes.roc_auc(y, scores)
    monkeypatch.setattr(outcomes, "ROC_AUC_BLOCK", 7)
    assert outcomes.roc_auc(y, scores) == whole == _pairwise_auc(y, scores)


@pytest.mark.parametrize(
    ("y", "scores", "message"),
    [
        pytest.param(np.zeros(4), np.linspace(0, 1, 4), "both classes", id="one-class"),
        pytest.param(np.array([0, 1]), np.array([0.2, np.nan]), "finite", id="nan-score"),
        pytest.param(np.array([0, 1, 1]), np.array([0.2, 0.3]), "3 labels but 2 scores", id="lengths"),
    ],
)
def test_roc_auc_refuses_what_has_no_roc_auc(y, scores, message):
    from churnops.monitoring.outcomes import roc_auc

    with pytest.raises(ValueError, match=message):
        roc_auc(y, scores)


def test_realized_performance_takes_compact_labels(monitoring):
    y, scores = _labels_with_auc_075(50)
    as_int8 = realized_performance(y.astype(np.int8), scores, 0.8, monitoring(), threshold=0.3)
    assert as_int8 == realized_performance(y.astype(np.int64), scores, 0.8, monitoring(), threshold=0.3)
    assert as_int8 == realized_performance(y.astype(bool), scores, 0.8, monitoring(), threshold=0.3)
    assert as_int8["realized_roc_auc"] == 0.75
