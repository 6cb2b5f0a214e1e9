"""The label-free estimate against realized ROC-AUC on simulated weeks where the answer is known.

A logistic regression is trained on half of the Telco customers; the simulated days are drawn
from the other half, so the model has never seen the customers it scores. Its probabilities
are then calibrated with isotonic regression on three stable simulated days (the days carry
2-5 % flipped labels and are resampled, which the raw model knows nothing of): the estimate
assumes calibrated scores, as the loop's own versions are calibrated at training. Every
day holds 20,000 rows, so the realized ROC-AUC itself is known to about ±0.004.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from churnops.config import MonitoringConfig, load_config
from churnops.data.sources import label_vector
from churnops.devtools.simulate import population, simulate_day
from churnops.modeling.models import build_model
from churnops.monitoring.estimate import ScoreSummary, estimated_performance
from tests.helpers import TELCO_CONFIG

START = date(2026, 3, 1)
ROWS = 20_000
WEEK = 7


@pytest.fixture(scope="module")
def scorer():
    """Scores of a calibrated model for any simulated day of unseen customers: ``scorer(day, scenario)``."""
    config = load_config(TELCO_CONFIG)
    features = config.dataset.feature_columns
    customers = population(config)
    half = pd.util.hash_array(customers[config.dataset.id_column].to_numpy(dtype=object)) % 2 == 0
    seen, unseen = customers[half].reset_index(drop=True), customers[~half].reset_index(drop=True)
    model = build_model("logistic_regression", config).fit(seen[features], label_vector(seen, config))

    def day(when: date, scenario: str, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
        # The drift ramps in over the week: full on its last day.
        batch, labels = simulate_day(unseen, config, when, ROWS, scenario, seed, START, ramp_days=WEEK)
        return model.predict_proba(batch[features])[:, 1], label_vector(labels, config)

    stable = [day(START - timedelta(days=k), "stable", seed=11) for k in (1, 2, 3)]
    calibration = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        np.concatenate([s for s, _ in stable]), np.concatenate([y for _, y in stable])
    )

    def calibrated(when: date, scenario: str) -> tuple[np.ndarray, np.ndarray]:
        scores, labels = day(when, scenario)
        return calibration.predict(scores), labels

    return calibrated


def week(scorer, scenario: str) -> list[dict]:
    """Each day of the week: the estimate (with its band) from the scores and the realized ROC-AUC from the labels."""
    days = []
    for k in range(WEEK):
        scores, labels = scorer(START + timedelta(days=k), scenario)
        estimate = estimated_performance(ScoreSummary().add(scores), None, 0.01, MonitoringConfig())
        days.append({**estimate, "realized": roc_auc_score(labels, scores)})
    return days


@pytest.fixture(scope="module")
def covariate_week(scorer):
    return week(scorer, "covariate_drift")


@pytest.fixture(scope="module")
def relation_week(scorer):
    return week(scorer, "relation_shift")


def test_under_covariate_drift_the_estimate_tracks_realized_roc_auc_within_0_015_on_average(covariate_week):
    errors = [d["estimated_roc_auc"] - d["realized"] for d in covariate_week]
    assert np.mean(np.abs(errors)) <= 0.015, errors
    realized = [d["realized"] for d in covariate_week]
    estimated = [d["estimated_roc_auc"] for d in covariate_week]
    assert realized[0] - realized[-1] > 0.02, "the drift makes the customers harder to rank"
    assert estimated[0] - estimated[-1] > 0.02, "and the estimate sees it without a label"


def test_under_concept_drift_the_estimate_stays_put_while_realized_roc_auc_falls(covariate_week, relation_week):
    """relation_shift moves the customer mix exactly as covariate_drift does, and also changes who churns
    (P(churn | features)). The scores cannot show the second: the estimate is the covariate-drift
    week's, while the realized ROC-AUC falls below it and out of the band."""
    for shifted, covariate in zip(relation_week, covariate_week, strict=True):
        assert shifted["estimated_roc_auc"] == pytest.approx(covariate["estimated_roc_auc"], abs=0.01)
    last, covariate_last = relation_week[-1], covariate_week[-1]
    assert covariate_last["realized"] - last["realized"] > 0.04, "the new relation costs realized ROC-AUC"
    assert last["realized"] < last["estimated_roc_auc_low"], "and the estimate's band does not hold it"
    errors = [d["estimated_roc_auc"] - d["realized"] for d in relation_week]
    assert np.mean(np.abs(errors)) > 0.03, "so the estimate cannot track concept drift"
    assert errors[-1] > errors[0] + 0.02, "its error grows with the shift"
