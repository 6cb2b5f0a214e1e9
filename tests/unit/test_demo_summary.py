"""scripts/demo_summary.py: each churn_retraining run's line of the demo's summary."""

from __future__ import annotations

import importlib.util
import sys

from tests.helpers import ROOT


def _summary_module():
    spec = importlib.util.spec_from_file_location("demo_summary", ROOT / "scripts" / "demo_summary.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


summary = _summary_module()


def run(run_id: str, as_of: str | None, state: str = "success") -> dict:
    return {"dag_run_id": run_id, "state": state, "conf": {"as_of": as_of} if as_of else {}}


def test_a_promotion_carries_its_as_of_day_gain_and_reason():
    tags = {
        "churnops.decision": "promoted",
        "churnops.gain": "0.061234",
        "churnops.decision_reason": "challenger ROC-AUC 0.80 vs champion 0.74, gain +0.0612 is more than 0.0100",
        "churnops.decision_as_of": "2026-12-02",
    }
    assert summary.retraining_decision(run("monitoring__2026-12-02", "2026-12-02"), tags) == {
        "dag_run_id": "monitoring__2026-12-02",
        "as_of": "2026-12-02",
        "decision": "promoted",
        "gain": 0.0612,
        "reason": tags["churnops.decision_reason"],
    }


def test_a_run_stopped_at_the_cooldown_has_no_gain():
    tags = {"churnops.decision": "skipped", "churnops.decision_reason": "in cooldown: last promotion on 2026-12-02"}
    line = summary.retraining_decision(run("monitoring__2026-12-03", "2026-12-03"), tags)
    assert line["decision"] == "stopped_by_cooldown" and line["gain"] is None
    assert line["reason"] == tags["churnops.decision_reason"]


def test_a_rejection_or_a_lost_race_reads_rejected_and_a_run_without_a_record_its_state():
    for recorded in ("rejected", "conflict"):
        line = summary.retraining_decision(run("r", None), {"churnops.decision": recorded, "churnops.gain": "-0.002"})
        assert line["decision"] == "rejected" and line["gain"] == -0.002
    # A manual run without an as_of conf takes the as-of day its decision recorded.
    tagged = summary.retraining_decision(
        run("r", None), {"churnops.decision": "rejected", "churnops.decision_as_of": "2026-12-01"}
    )
    assert tagged["as_of"] == "2026-12-01"
    failed = summary.retraining_decision(run("r", "2026-12-03", state="failed"), None)
    assert failed == {"dag_run_id": "r", "as_of": "2026-12-03", "decision": "failed", "gain": None, "reason": ""}
