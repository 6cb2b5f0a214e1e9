"""Training: validate → merge → preprocess → features → train per family → evaluate → register.

- :mod:`~churnops.training.run`: a run's identity (frozen config, parent MLflow run, folder)
  and :func:`training_step`, which opens a step's nested run.
- :mod:`~churnops.training.checks`: the raw sources' checks and their quarantine.
- :mod:`~churnops.training.steps`: the data steps (validate, merge, preprocess, features) and the
  whole run in one process, shared by the DAGs and the CLI.
- :mod:`~churnops.training.candidates`: one candidate per model family, the choice, the registration.
"""

from churnops.training.candidates import evaluate_candidates, register_chosen, train_family
from churnops.training.checks import check_sources, quarantine_dir, reject
from churnops.training.run import TrainingRun, git_commit, run_dir_for, start_run, training_step
from churnops.training.steps import (
    SourcesChangedError,
    build_features,
    merge,
    preprocess,
    run_training,
    validate_sources,
)

__all__ = [
    "SourcesChangedError",
    "TrainingRun",
    "build_features",
    "check_sources",
    "evaluate_candidates",
    "git_commit",
    "merge",
    "preprocess",
    "quarantine_dir",
    "register_chosen",
    "reject",
    "run_dir_for",
    "run_training",
    "start_run",
    "train_family",
    "training_step",
    "validate_sources",
]
