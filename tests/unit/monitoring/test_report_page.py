"""churnops.monitoring.report_page: the drift page, churnops' verdicts first and evidently's view below."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from churnops.monitoring.drift import drift_rule, drift_summary, feature_drift
from churnops.monitoring.report import decide
from churnops.monitoring.report_page import drift_report_html, evidently_view, verdict_section
from tests.helpers import read_drift_page

NUMERIC, CATEGORICAL = ["tenure", "monthlycharges"], ["contract", "paymentmethod"]


def _telco_like(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n).astype(float) + shift * 10,
            "monthlycharges": rng.normal(65 + shift * 20, 30, n),
            "contract": rng.choice(["Month-to-month", "One year", "Two year"], n),
            "paymentmethod": rng.choice(["Electronic check", "Mailed check", None], n),
        }
    )
    frame.loc[frame.index[:5], "monthlycharges"] = np.nan
    return frame


def verdicts_and_report(reference, current, settings):
    """feature_drift.json's record and the day's report, as the steps make them."""
    rows = feature_drift(reference, current, NUMERIC, CATEGORICAL, settings)
    summary = drift_summary(rows, settings)
    decision = decide(summary, {"drifted": False}, {"alarm": False, "reasons": []})
    report = {"date": "2026-03-14", "model_version": "3", "rows": len(current), **decision}
    return {"features": rows, **summary, "thresholds": drift_rule(settings)}, report


def test_the_page_shows_churnops_verdicts_first_exactly_and_evidently_as_secondary(tmp_path, monitoring):
    settings = monitoring(sample_size=1000)
    reference, current = _telco_like(600, 0), _telco_like(500, 1, shift=1.5)
    verdicts, report = verdicts_and_report(reference, current, settings)
    assert verdicts["drifted_features"] and report["decision"] == "retrain"

    text = drift_report_html(reference, current, tmp_path / "p.html", verdicts, report, settings).read_text()
    page = read_drift_page(text)
    rule = {"p_value": 0.05, "min_effect_size": 0.1}
    assert page["features"] == {
        row["feature"]: {
            "feature": row["feature"],
            "kind": row["kind"],
            "test": row["test"],
            "statistic": row["statistic"],
            "p_value": row["p_value"],
            "effect_size": row["effect_size"],
            "threshold": rule,
            "drifted": row["drifted"],
            "sample_size": row["sample_size"],
            "null_fraction": [row["reference_null_fraction"], row["current_null_fraction"]],
        }
        for row in verdicts["features"]
    }
    assert page["fields"]["decision"] == "retrain"
    assert int(page["fields"]["n_drifted"]) == len(verdicts["drifted_features"])
    assert page["roles"] == ["verdict", "secondary"]
    # Evidently's document keeps its head; churnops' section opens its body, evidently's widgets follow.
    body = text.index("<body>")
    assert text.index("<script", 0, body) < body < text.index('id="churnops"') < text.index('data-role="secondary"')
    assert text.index('data-role="secondary"') < text.index("<script", body)
    assert "Evidently's view (secondary" in text


def test_evidently_judges_by_churnops_rule_on_the_same_rows(monitoring):
    """Many rows and a small shift: significant, but below the effect size, so churnops finds no drift.

    Evidently's own KS (p-value alone) would flag both numeric columns; with churnops' tests and rule
    registered it counts what churnops counts."""
    settings = monitoring(sample_size=20_000)
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"tenure": rng.normal(0, 1, 20_000), "monthlycharges": rng.normal(0, 1, 20_000)})
    current = pd.DataFrame({"tenure": rng.normal(0.06, 1, 20_000), "monthlycharges": rng.normal(0.06, 1, 20_000)})
    for frame in (reference, current):
        frame["contract"] = rng.choice(["a", "b"], len(frame), p=[0.5, 0.5] if frame is reference else [0.53, 0.47])
    rows = feature_drift(reference, current, NUMERIC, ["contract"], settings)
    assert [row["p_value"] < 0.05 for row in rows] == [True, True, True], "significant shifts"
    assert not any(row["drifted"] for row in rows), "too small to count as drift"

    view = evidently_view(reference, current, NUMERIC, ["contract"], settings)
    assert (view.drifted, view.columns) == (0, 3)
    assert "churnops KS p-value" in view.page and "churnops chi-square contingency p-value" in view.page

    strict = monitoring(sample_size=20_000, min_effect_size=0.0)
    assert evidently_view(reference, current, NUMERIC, ["contract"], strict).drifted == 3, "the rule's thresholds"


def test_verdict_section_escapes_what_it_shows():
    row = {
        "feature": "a<b",
        "kind": "categorical",
        "test": "chi2_contingency",
        "statistic": 3.5,
        "p_value": 0.2,
        "effect_size": 0.05,
        "drifted": False,
        "sample_size": {"reference": 10, "current": 12},
        "reference_null_fraction": 0.0,
        "current_null_fraction": 0.25,
    }
    verdicts = {
        "features": [row],
        "n_features": 1,
        "drifted_features": [],
        "drift_share": 0.0,
        "dataset_drift": False,
        "thresholds": {"p_value": 0.01, "min_effect_size": 0.2, "drifted_feature_share": 0.5},
    }
    report = {"date": "2026-03-14", "model_version": "3", "rows": 12, "decision": "none", "reasons": []}
    report["notes"] = ["<x>"]
    text = verdict_section(verdicts, report)
    assert "a<b" not in text and "<x>" not in text and "&lt;x&gt;" in text
    page = read_drift_page(text)
    assert page["features"]["a<b"]["threshold"] == {"p_value": 0.01, "min_effect_size": 0.2}
    assert page["features"]["a<b"]["drifted"] is False
    assert "p &lt; 0.01 and effect &gt; 0.2" in text and "exceeds 0.5" in text


def test_drift_report_html_is_written_from_capped_samples(tmp_path, monkeypatch, monitoring):
    with warnings.catch_warnings():  # evidently's import drags in deprecated numpy/litestar APIs
        warnings.simplefilter("ignore", DeprecationWarning)
        import evidently

    settings = monitoring(sample_size=2000, seed=0)
    reference, current = _telco_like(200_000, 0), _telco_like(200_000, 1, shift=0.5)
    verdicts, report = verdicts_and_report(reference, current, settings)
    seen: list[int] = []
    original = evidently.Dataset.from_pandas

    def spy(data, *args, **kwargs):
        seen.append(len(data))
        return original(data, *args, **kwargs)

    monkeypatch.setattr(evidently.Dataset, "from_pandas", spy)
    started = time.perf_counter()
    path = drift_report_html(reference, current, tmp_path / "out" / "drift.html", verdicts, report, settings)
    elapsed = time.perf_counter() - started
    assert seen == [2000, 2000]
    assert elapsed < 20, f"drift report took {elapsed:.1f}s"
    assert path == tmp_path / "out" / "drift.html"
    page = path.read_text(encoding="utf-8")
    for name in NUMERIC + CATEGORICAL:
        assert name in page
    assert "on seeded samples of 2000 reference and 2000 current rows" in page


def test_drift_report_html_survives_empty_columns_and_sides(tmp_path, monitoring):
    settings = monitoring(sample_size=1000, seed=0)
    reference, current = _telco_like(300, 0), _telco_like(200, 1)
    current["monthlycharges"] = np.nan  # Evidently refuses a numeric column without values
    verdicts, report = verdicts_and_report(reference, current, settings)
    page = drift_report_html(reference, current, tmp_path / "a.html", verdicts, report, settings).read_text()
    assert "Not shown by evidently (no value on one side): monthlycharges." in page
    assert read_drift_page(page)["features"]["monthlycharges"]["p_value"] == 1.0

    verdicts, report = verdicts_and_report(reference, current.iloc[:0], settings)
    text = drift_report_html(reference, current.iloc[:0], tmp_path / "b.html", verdicts, report, settings).read_text()
    assert "No evidently view: the reference has 300 rows and the current data 0 rows" in text
    assert set(read_drift_page(text)["features"]) == set(NUMERIC + CATEGORICAL)


def test_the_page_links_the_history_chart_once_right_after_its_body_tag(tmp_path, monitoring):
    from churnops.monitoring.history import history_link

    settings = monitoring(sample_size=1000)
    reference, current = _telco_like(300, 0), _telco_like(300, 1)
    verdicts, report = verdicts_and_report(reference, current, settings)
    path = drift_report_html(reference, current, tmp_path / "p.html", verdicts, report, settings, history_link(30))
    text = path.read_text()
    assert text.count('href="history.png"') == 1
    assert text.index('<body><div id="churnops-history"') < text.index('<section id="churnops"')
    assert "History of the last 30 days" in text


def test_the_verdict_shows_the_estimated_roc_auc_with_its_band_and_trust_only_when_the_report_holds_one():
    verdicts = {
        "features": [],
        "n_features": 0,
        "drifted_features": [],
        "drift_share": 0.0,
        "dataset_drift": False,
        "thresholds": {"p_value": 0.05, "min_effect_size": 0.1, "drifted_feature_share": 0.3},
    }
    report = {"date": "2026-03-14", "model_version": "3", "rows": 900, "decision": "none", "reasons": [], "notes": []}
    assert "churnops-estimate" not in verdict_section(verdicts, {**report, "estimated_roc_auc": None})
    estimate = {"estimated_roc_auc": 0.81234, "estimated_roc_auc_low": 0.79, "estimated_roc_auc_high": 0.83}
    trusted = read_drift_page(verdict_section(verdicts, {**report, **estimate, "estimate_trusted": True}))["fields"]
    assert {k: trusted[k] for k in (*estimate, "estimate_trusted")} == {
        "estimated_roc_auc": "0.8123",
        "estimated_roc_auc_low": "0.7900",
        "estimated_roc_auc_high": "0.8300",
        "estimate_trusted": "yes",
    }
    untrusted = verdict_section(verdicts, {**report, **estimate, "estimate_trusted": False})
    assert read_drift_page(untrusted)["fields"]["estimate_trusted"] == "no"
    assert "never a retraining trigger" in untrusted
