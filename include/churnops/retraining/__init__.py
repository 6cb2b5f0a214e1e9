"""Retraining: the cooldowns, a challenger trained on recent matured days, the head-to-head on a
fresh labelled window, and the promotion decision.

- :mod:`~churnops.retraining.policy`: the gain rule, the paired bootstrap and the cooldown.
- :mod:`~churnops.retraining.state`: where the last promotion and the last retraining attempt are kept
  (protocol; the file store).
- :mod:`~churnops.retraining.windows`: the training and evaluation windows by the as-of day.
- :mod:`~churnops.retraining.decision`: champion vs challenger on the fresh window, the promotion.
- :mod:`~churnops.retraining.steps`: the cooldown gate and the attempt's record, the whole run, the rollback (shared by
  ``churn_retraining``, ``churn_rollback`` and the CLI).
"""

from churnops.retraining.decision import (
    apply_decision,
    compare_on_fresh_window,
    decision_tags,
    log_decision,
    record_decision,
)
from churnops.retraining.policy import (
    Cooldown,
    PromotionDecision,
    cooldown_status,
    decide_promotion,
    paired_bootstrap_gain,
)
from churnops.retraining.state import (
    COOLDOWN_DAYS_VAR,
    LAST_PROMOTION_VAR,
    LAST_RETRAINING_VAR,
    FileState,
    PromotionState,
)
from churnops.retraining.steps import (
    check_cooldown,
    record_attempt,
    record_skip,
    rollback_and_record,
    rollback_plan,
    run_retraining,
)
from churnops.retraining.windows import add_recent_days, evaluation_days, training_days, training_window

__all__ = [
    "COOLDOWN_DAYS_VAR",
    "LAST_PROMOTION_VAR",
    "LAST_RETRAINING_VAR",
    "Cooldown",
    "FileState",
    "PromotionDecision",
    "PromotionState",
    "add_recent_days",
    "apply_decision",
    "check_cooldown",
    "compare_on_fresh_window",
    "cooldown_status",
    "decide_promotion",
    "decision_tags",
    "evaluation_days",
    "log_decision",
    "paired_bootstrap_gain",
    "record_attempt",
    "record_decision",
    "record_skip",
    "rollback_and_record",
    "rollback_plan",
    "run_retraining",
    "training_days",
    "training_window",
]
