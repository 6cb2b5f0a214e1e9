"""churnops.retraining.steps: the parts that need no MLflow run."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from churnops.retraining.decision import decision_tags
from churnops.retraining.windows import training_window


def original_rows() -> pd.DataFrame:
    return pd.DataFrame({"customerid": ["a", "b"], "tenure": [1.0, 2.0], "churn": ["No", "Yes"]}, index=[5, 9])


def test_recent_rows_follow_the_original_ones_in_its_columns():
    recent = pd.DataFrame({"churn": ["Yes"], "tenure": [3.0], "customerid": ["c"], "extra": [1]})
    window = training_window(original_rows(), recent)
    assert list(window.columns) == ["customerid", "tenure", "churn"]
    assert window["customerid"].tolist() == ["a", "b", "c"] and list(window.index) == [0, 1, 2]


def test_no_recent_rows_leave_the_original_rows_and_types_without_a_warning():
    # An empty recent frame (object columns) must neither warn (pandas' FutureWarning on empty
    # entries is an error in this suite) nor change the original types.
    empty = pd.DataFrame(columns=["customerid", "tenure", "churn"])
    window = training_window(original_rows(), empty)
    assert window["tenure"].dtype == "float64" and list(window.index) == [0, 1]


# --- decision_tags -----------------------------------------------------------------------------------------------

AS_OF = date(2026, 3, 14)
PROMOTED = {
    "promote": True,
    "gain": 0.0123456789,
    "reason": "challenger ROC-AUC 0.8523 beats the champion's 0.8400 by more than min_gain 0.01",
    "ci": {"mean": 0.0121, "low": 0.00412345678, "high": 0.0209, "n": 1000, "level": 0.95},
}


def test_a_promotion_is_tagged_with_its_reason_gain_ci_day_and_run():
    assert decision_tags(PROMOTED, AS_OF, {"run_id": "scheduled__2026-03-14", "dag_id": "churn_retraining"}) == {
        "churnops.decision": "promoted",
        "churnops.decision_reason": PROMOTED["reason"],
        "churnops.gain": "0.012346",
        "churnops.decision_as_of": "2026-03-14",
        "churnops.decision_run": "scheduled__2026-03-14",
        "churnops.gain_ci": "[0.004123, 0.020900]",
    }


@pytest.mark.parametrize("ci", [None, {}], ids=["no-bootstrap", "empty"])
def test_a_rejection_without_a_confidence_interval_has_no_ci_tag(ci):
    rejected = {**PROMOTED, "promote": False, "gain": -0.002, "reason": "the challenger is worse", "ci": ci}
    tags = decision_tags(rejected, AS_OF, {})
    assert tags["churnops.decision"] == "rejected"
    assert tags["churnops.gain"] == "-0.002000"
    assert tags["churnops.decision_run"] == "", "no run id outside Airflow"
    assert "churnops.gain_ci" not in tags


def test_a_comparison_without_a_ci_key_has_no_ci_tag():
    same = {"promote": False, "gain": 0.0, "reason": "the challenger is already the champion"}
    tags = decision_tags(same, AS_OF, {"run_id": "manual__1"})
    assert (tags["churnops.decision"], tags["churnops.gain"]) == ("rejected", "0.000000")
    assert "churnops.gain_ci" not in tags


def test_the_reason_tag_is_cut_to_4000_characters():
    tags = decision_tags({**PROMOTED, "reason": "x" * 5000}, AS_OF, {})
    assert tags["churnops.decision_reason"] == "x" * 4000
