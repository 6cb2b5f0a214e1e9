"""churnops.monitoring.report: the retrain decision and the report built from the steps' results."""

from __future__ import annotations

from datetime import date

import pytest

from churnops.monitoring.report import ESTIMATE_KEYS, build_report, decide

# --- decide ------------------------------------------------------------------------------------------------------

NO_DRIFT = {"n_features": 19, "drifted_features": [], "drift_share": 0.0, "dataset_drift": False}
SOME_DRIFT = {"n_features": 10, "drifted_features": ["tenure", "contract"], "drift_share": 0.2, "dataset_drift": False}
DATASET_DRIFT = {"n_features": 10, "drifted_features": ["a", "b", "c", "d"], "drift_share": 0.4, "dataset_drift": True}
STABLE_SCORES = {"drifted": False, "statistic": 0.01, "p_value": 0.6}
MOVED_SCORES = {"drifted": True, "statistic": 0.3, "p_value": 1e-20}
FINE = {"alarm": False, "reasons": []}
ALARM = {"alarm": True, "reasons": ["realized ROC-AUC 0.7000 is below min_roc_auc 0.75 (500 labels)"]}
UNJUDGED = {"alarm": False, "reasons": ["performance not judged: 12 matured labels, fewer than min_labels 200"]}


@pytest.mark.parametrize(
    ("summary", "prediction", "performance", "decision", "reasons", "notes"),
    [
        pytest.param(NO_DRIFT, STABLE_SCORES, FINE, "none", [], [], id="quiet-day"),
        pytest.param(DATASET_DRIFT, STABLE_SCORES, FINE, "retrain", ["dataset drift"], [], id="dataset-drift"),
        pytest.param(NO_DRIFT, STABLE_SCORES, ALARM, "retrain", ["below min_roc_auc"], [], id="performance"),
        pytest.param(
            DATASET_DRIFT, STABLE_SCORES, ALARM, "retrain", ["dataset drift", "below min_roc_auc"], [], id="both"
        ),
        pytest.param(NO_DRIFT, MOVED_SCORES, FINE, "none", [], ["prediction drift"], id="prediction-drift-only"),
        pytest.param(SOME_DRIFT, STABLE_SCORES, FINE, "none", [], ["below the dataset-drift share"], id="few-features"),
        pytest.param(NO_DRIFT, STABLE_SCORES, UNJUDGED, "none", [], ["performance not judged"], id="few-labels"),
        pytest.param(
            DATASET_DRIFT,
            MOVED_SCORES,
            UNJUDGED,
            "retrain",
            ["dataset drift"],
            ["performance not judged", "prediction drift"],
            id="drift-with-notes",
        ),
    ],
)
def test_decide(summary, prediction, performance, decision, reasons, notes):
    result = decide(summary, prediction, performance)
    assert result["decision"] == decision
    assert len(result["reasons"]) == len(reasons) and len(result["notes"]) == len(notes)
    for text, fragment in zip(result["reasons"] + result["notes"], reasons + notes, strict=True):
        assert fragment in text


def test_decide_names_the_drifted_features():
    (reason,) = decide(DATASET_DRIFT, STABLE_SCORES, FINE)["reasons"]
    assert reason == "dataset drift: 4 of 10 features drifted (share 0.400): a, b, c, d"


ESTIMATED_DROP = {
    "trusted": True,
    "alarm": True,
    "reasons": ["estimated ROC-AUC 0.7400 (band 0.7300-0.7500, no labels needed) is 0.0900 below the champion's"],
}
UNTRUSTED = {"trusted": False, "alarm": False, "reasons": ["estimate not trusted: 120 rows, fewer than 500"]}
TRUSTED = {"trusted": True, "alarm": False, "reasons": []}


@pytest.mark.parametrize(
    ("summary", "estimate", "decision", "reasons", "notes"),
    [
        pytest.param(NO_DRIFT, ESTIMATED_DROP, "retrain", ["estimated ROC-AUC 0.7400"], [], id="estimated-drop"),
        pytest.param(NO_DRIFT, UNTRUSTED, "none", [], ["estimate not trusted"], id="untrusted"),
        pytest.param(NO_DRIFT, TRUSTED, "none", [], [], id="trusted-fine"),
        pytest.param(NO_DRIFT, None, "none", [], [], id="no-estimate"),
        pytest.param(
            DATASET_DRIFT, ESTIMATED_DROP, "retrain", ["dataset drift", "estimated ROC-AUC"], [], id="drift-and-drop"
        ),
    ],
)
def test_a_trusted_estimated_drop_triggers_retraining_and_an_untrusted_estimate_is_a_note(
    summary, estimate, decision, reasons, notes
):
    result = decide(summary, STABLE_SCORES, FINE, estimate)
    assert result["decision"] == decision
    assert len(result["reasons"]) == len(reasons) and len(result["notes"]) == len(notes)
    for text, fragment in zip(result["reasons"] + result["notes"], reasons + notes, strict=True):
        assert fragment in text


# --- decide: monitoring.triggers ---------------------------------------------------------------------------------

DRIFTED_TARGET = {"drifted": True, "statistic": 41.0, "p_value": 2e-9, "effect_size": 0.21}
STABLE_TARGET = {"drifted": False, "statistic": 0.4, "p_value": 0.5, "effect_size": 0.01}
ESTIMATE_ALARM = {"alarm": True, "reasons": ["estimated ROC-AUC 0.7400 is 0.0900 below the holdout's 0.8300"]}
ESTIMATE_FINE = {"alarm": False, "reasons": []}
EVERY_SIGNAL = ["dataset_drift", "performance", "estimated_performance", "prediction_drift", "target_drift"]


def test_the_default_triggers_are_dataset_drift_performance_and_the_estimate():
    from churnops.config import MonitoringConfig

    assert MonitoringConfig().triggers == ["dataset_drift", "performance", "estimated_performance"]
    everything = decide(DATASET_DRIFT, MOVED_SCORES, ALARM, ESTIMATE_ALARM, target=DRIFTED_TARGET)
    assert everything["triggers"] == ["dataset_drift", "performance", "estimated_performance"]
    assert [note.split(":")[0] for note in everything["notes"]] == ["prediction drift", "target drift"]


@pytest.mark.parametrize(
    ("triggers", "fired"),
    [
        pytest.param(EVERY_SIGNAL, EVERY_SIGNAL, id="all-enabled"),
        pytest.param([], [], id="none-enabled"),
        pytest.param(["prediction_drift"], ["prediction_drift"], id="prediction-drift-only"),
        pytest.param(["target_drift", "performance"], ["performance", "target_drift"], id="target-and-performance"),
        pytest.param(["estimated_performance"], ["estimated_performance"], id="estimate-only"),
    ],
)
def test_only_enabled_signals_trigger_and_each_reason_is_named_by_its_trigger(triggers, fired):
    result = decide(DATASET_DRIFT, MOVED_SCORES, ALARM, ESTIMATE_ALARM, target=DRIFTED_TARGET, triggers=triggers)
    assert result["triggers"] == fired
    assert result["decision"] == ("retrain" if fired else "none")
    labels = {name: name.replace("_", " ") for name in EVERY_SIGNAL}
    assert [reason.split(":")[0] for reason in result["reasons"]] == [labels[name] for name in fired]
    disabled = [labels[name] for name in EVERY_SIGNAL if name not in fired]
    assert sorted(note.split(":")[0] for note in result["notes"]) == sorted(disabled)
    assert all("not in monitoring.triggers" in note for note in result["notes"])


def test_the_estimate_triggers_from_its_alarm_and_its_reasons():
    result = decide(NO_DRIFT, STABLE_SCORES, UNJUDGED, ESTIMATE_ALARM)
    assert (result["decision"], result["triggers"]) == ("retrain", ["estimated_performance"])
    assert result["reasons"] == [f"estimated performance: {ESTIMATE_ALARM['reasons'][0]}"]
    assert result["notes"] == UNJUDGED["reasons"], "the realized performance could not be judged"

    quiet = decide(NO_DRIFT, STABLE_SCORES, FINE, {"alarm": False, "reasons": ["estimate not judged: 40 rows"]})
    assert (quiet["decision"], quiet["reasons"], quiet["notes"]) == ("none", [], ["estimate not judged: 40 rows"])
    assert decide(NO_DRIFT, STABLE_SCORES, FINE, ESTIMATE_FINE)["decision"] == "none"


def test_target_drift_triggers_on_its_drifted_flag_when_enabled():
    enabled = ["target_drift"]
    (reason,) = decide(NO_DRIFT, STABLE_SCORES, FINE, target=DRIFTED_TARGET, triggers=enabled)["reasons"]
    assert reason == "target drift: chi-square p-value 2e-09, Cramér's V 0.210"
    assert decide(NO_DRIFT, STABLE_SCORES, FINE, target=STABLE_TARGET, triggers=enabled)["decision"] == "none"
    assert decide(NO_DRIFT, STABLE_SCORES, FINE, triggers=enabled)["decision"] == "none", "no target result given"


def test_a_performance_alarm_reason_is_named_performance():
    (reason,) = decide(NO_DRIFT, STABLE_SCORES, ALARM)["reasons"]
    assert reason == f"performance: {ALARM['reasons'][0]}"


def test_triggers_are_checked_in_the_config():
    from pydantic import ValidationError

    from churnops.config import MonitoringConfig

    assert MonitoringConfig(triggers=["target_drift"]).triggers == ["target_drift"]
    with pytest.raises(ValidationError, match="repeat"):
        MonitoringConfig(triggers=["performance", "performance"])
    with pytest.raises(ValidationError):
        MonitoringConfig(triggers=["feature_drift"])


# --- build_report ------------------------------------------------------------------------------------------------

DAY = date(2026, 3, 14)
SCORED = {
    "predictions": "predictions.parquet",
    "model_version": "3",
    "rows": 12_000,
    "shards": 2,
    "drift_parts": "parts",
}
FEATURES = {**SOME_DRIFT, "feature_drift": "reports/date=2026-03-14/feature_drift.json"}
PREDICTION = {**MOVED_SCORES, "effect_size": 0.3, "sample_size": {"reference": 5000, "current": 12_000}}
LATE_LABELS = {
    "file": "churnops-home/labels/date=2026-03-10/late.csv",
    "findings": [
        {"source": "late", "column": "churn", "rule": "label_values", "message": "2 labels outside the two classes"},
        {"source": "late", "column": "customerid", "rule": "duplicates", "message": "3 repeated ids"},
    ],
}


def performance_result(rejected_label_files: list[dict] | None = None, **realized) -> dict:
    """What ``performance_step`` returns: target drift, realized performance and the rejected label files.

    Args:
        rejected_label_files: the label files ``accepted_files`` refused (the key is left out when None).
        **realized: fields of the realized performance to change (the default is a judged, unalarmed day).
    """
    result = {
        "window": ["2026-02-06", "2026-03-07"],
        "label_days": ["2026-03-06", "2026-03-07"],
        "target_drift": {"drifted": True, "p_value": 1e-6, "effect_size": 0.2},
        "performance": {
            "n_labels": 500,
            "realized_roc_auc": 0.81,
            "reference_roc_auc": 0.83,
            "drop": 0.02,
            "threshold": 0.31,
            "precision": 0.52,
            "recall": 0.74,
            "f1": 0.61,
            **FINE,
            **realized,
        },
        "labels_without_prediction": 4,
        "estimate": {
            "estimated_roc_auc": 0.8,
            "estimated_roc_auc_low": 0.79,
            "estimated_roc_auc_high": 0.81,
            "estimated_precision": 0.5,
            "trusted": True,
            **FINE,
        },
    }
    if rejected_label_files is not None:
        result["rejected_label_files"] = rejected_label_files
    return result


def test_build_report_takes_the_headline_figures_from_the_steps():
    performance = performance_result(rejected_label_files=[])
    decision = decide(FEATURES, PREDICTION, performance["performance"])
    report = build_report(DAY, SCORED, FEATURES, PREDICTION, performance, decision)
    assert report == {
        "date": "2026-03-14",
        "model_version": "3",
        "rows": 12_000,
        "shards": 2,
        "drifted_features": ["tenure", "contract"],
        "n_features": 10,
        "drift_share": 0.2,
        "dataset_drift": False,
        "prediction_drift": True,
        "target_drift": True,
        "realized_roc_auc": 0.81,
        "threshold": 0.31,
        "precision": 0.52,
        "recall": 0.74,
        "f1": 0.61,
        "n_labels": 500,
        "estimated_roc_auc": 0.8,
        "estimated_roc_auc_low": 0.79,
        "estimated_roc_auc_high": 0.81,
        "estimate_trusted": True,
        "decision": "none",
        "triggers": [],
        "reasons": [],
        "notes": decision["notes"],
        "details": {"features": FEATURES["feature_drift"], "prediction": PREDICTION, "performance": performance},
    }
    assert len(report["notes"]) == 2  # the few drifted features and the prediction drift


def test_build_report_carries_the_decision_and_its_reasons():
    performance = performance_result(realized_roc_auc=0.7, alarm=True, reasons=ALARM["reasons"])
    decision = decide(DATASET_DRIFT, STABLE_SCORES, performance["performance"])
    report = build_report(DAY, SCORED, {**FEATURES, **DATASET_DRIFT}, STABLE_SCORES, performance, decision)
    assert (report["decision"], report["dataset_drift"], report["prediction_drift"]) == ("retrain", True, False)
    assert report["triggers"] == ["dataset_drift", "performance"]
    assert report["reasons"] == decision["reasons"] and len(report["reasons"]) == 2
    assert report["notes"] == []
    assert report["realized_roc_auc"] == 0.7


def test_a_rejected_label_file_becomes_a_note_naming_its_first_finding():
    performance = performance_result(rejected_label_files=[LATE_LABELS])
    decision = {"decision": "none", "reasons": [], "notes": ["a note of decide"]}
    report = build_report(DAY, SCORED, FEATURES, PREDICTION, performance, decision)
    assert report["notes"] == [
        "a note of decide",
        "label file late.csv of date=2026-03-10 rejected (quarantined): label_values: 2 labels outside the two classes",
    ]
    assert report["details"]["performance"]["rejected_label_files"] == [LATE_LABELS]


def test_build_report_defaults_one_shard_no_notes_and_no_rejected_files():
    scored = {key: value for key, value in SCORED.items() if key != "shards"}
    performance = performance_result(realized_roc_auc=None, n_labels=12, reasons=UNJUDGED["reasons"])
    report = build_report(DAY, scored, FEATURES, PREDICTION, performance, {"decision": "none", "reasons": []})
    assert report["shards"] == 1
    assert report["notes"] == []
    assert (report["realized_roc_auc"], report["n_labels"]) == (None, 12)


def test_a_report_without_an_estimate_carries_none_for_its_figures():
    performance = performance_result()
    del performance["estimate"]
    report = build_report(DAY, SCORED, FEATURES, PREDICTION, performance, {"decision": "none", "reasons": []})
    assert [report[key] for key in ESTIMATE_KEYS] == [None, None, None] and report["estimate_trusted"] is None
