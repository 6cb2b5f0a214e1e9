"""MLflow: where runs are tracked, one parent run per pipeline run with nested step runs, and the registry.

- :mod:`~churnops.tracking.runs`: the tracking store, parent and step runs found again on
  retries, and the listeners told of every run (how a task links to its run).
- :mod:`~churnops.tracking.registry`: model versions, aliases moved by compare-and-set under
  the promotion lock, and the decisions recorded on versions.
- :mod:`~churnops.tracking.locks`: the promotion lock (one ``@champion`` move at a time per model).
- :mod:`~churnops.tracking.integrity`: each registered version's artifact digest, recorded at
  registration (MLflow tag and churnops' own record) and checked by :func:`load_registered_model`,
  the one way to load a registered version.
- :mod:`~churnops.tracking.moves`: the log of every ``@champion`` move (promotions, rollbacks) with its day.
- :mod:`~churnops.tracking.thresholds`: each version's decision threshold (its ``churnops.threshold``
  tag, 0.5 without one), read by :func:`version_threshold`.
"""

from churnops.tracking.integrity import (
    ARTIFACT_DIGEST_TAG,
    ArtifactDigest,
    ModelIntegrityError,
    artifact_digest,
    digest_record_path,
    load_registered_model,
    record_artifact_digest,
)
from churnops.tracking.locks import PromotionLockTimeout, promotion_lock, promotion_lock_path
from churnops.tracking.moves import champion_moves_path, read_champion_moves, record_champion_move
from churnops.tracking.registry import (
    PromotionConflict,
    alias_version,
    assign_training_alias,
    last_decision,
    model_aliases,
    plan_rollback,
    promote_version,
    register_version,
    rollback_champion,
    version_tags,
)
from churnops.tracking.runs import (
    OWNER_TAG,
    TAG_PREFIX,
    RunContext,
    RunListener,
    announce_run,
    configure_mlflow,
    ensure_experiment,
    fail_abandoned_runs,
    finish_parent_run,
    get_or_create_parent_run,
    listening_for_runs,
    step_run,
    tracking_outage,
    tracking_uri,
    use_tracking_store,
)
from churnops.tracking.thresholds import (
    DEFAULT_THRESHOLD,
    THRESHOLD_RULE_TAG,
    THRESHOLD_TAG,
    threshold_tags,
    version_threshold,
)

__all__ = [
    "ARTIFACT_DIGEST_TAG",
    "DEFAULT_THRESHOLD",
    "OWNER_TAG",
    "TAG_PREFIX",
    "THRESHOLD_RULE_TAG",
    "THRESHOLD_TAG",
    "ArtifactDigest",
    "ModelIntegrityError",
    "PromotionConflict",
    "PromotionLockTimeout",
    "RunContext",
    "RunListener",
    "alias_version",
    "announce_run",
    "artifact_digest",
    "assign_training_alias",
    "champion_moves_path",
    "configure_mlflow",
    "digest_record_path",
    "ensure_experiment",
    "fail_abandoned_runs",
    "finish_parent_run",
    "get_or_create_parent_run",
    "last_decision",
    "listening_for_runs",
    "load_registered_model",
    "model_aliases",
    "plan_rollback",
    "promote_version",
    "promotion_lock",
    "promotion_lock_path",
    "read_champion_moves",
    "record_artifact_digest",
    "record_champion_move",
    "register_version",
    "rollback_champion",
    "step_run",
    "threshold_tags",
    "tracking_outage",
    "tracking_uri",
    "use_tracking_store",
    "version_tags",
    "version_threshold",
]
