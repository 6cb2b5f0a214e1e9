"""One training run's identity: its frozen config, its parent MLflow run and its folder.

Each step takes the small dict the previous step returned (what XCom carries) and opens its
own nested MLflow run through :func:`training_step`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from churnops.config import PACKAGE_DIR, ChurnopsConfig, churnops_home, load_config
from churnops.data import write_text_atomically
from churnops.tracking import RunContext

__all__ = ["TrainingRun", "git_commit", "run_dir_for", "start_run", "training_step"]


@dataclass(frozen=True)
class TrainingRun:
    """Identity of one pipeline run, passed from step to step."""

    config_path: str
    """The run's frozen copy of the config (Params applied, source paths absolute)."""
    experiment_id: str
    parent_run_id: str
    run_dir: str
    context: dict[str, Any]
    families: list[str] = field(default_factory=list)

    @property
    def ctx(self) -> RunContext:
        return RunContext(**self.context)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (what XCom carries); ``TrainingRun(**d)`` rebuilds it."""
        return asdict(self)


def run_dir_for(config: ChurnopsConfig, ctx: RunContext, kind: str = "runs") -> Path:
    """A pipeline run's own folder of one kind: ``$CHURNOPS_HOME/<kind>/<dataset>/<dag id>/<run id>``.

    Args:
        config: the run's config (its dataset's name is part of the path).
        ctx: the pipeline run.
        kind: ``runs`` (the steps' outputs) or ``quarantine`` (rejected sources).

    Returns:
        The folder (not created).
    """
    return churnops_home() / kind / config.dataset.name / ctx.dag_id / ctx.slug


def start_run(
    ctx: RunContext, config_path: str | None = None, families: list[str] | None = None, cv_folds: int | None = None
) -> dict[str, Any]:
    """Freeze the run's config and open (or find again) its parent MLflow run.

    Args:
        ctx: the pipeline run.
        config_path: the config file (None: the default one).
        families: families to train instead of the config's (None or empty: the config's).
        cv_folds: CV folds instead of the config's (None: the config's).

    Returns:
        ``{"run": TrainingRun.to_dict(), "families": [...]}``: what the first step takes.
    """
    from mlflow import MlflowClient

    from churnops.tracking import configure_mlflow, get_or_create_parent_run

    config = load_config(config_path).with_training(families=families or None, cv_folds=cv_folds)
    run_dir = run_dir_for(config, ctx)
    run_dir.mkdir(parents=True, exist_ok=True)
    frozen = run_dir / "config.yaml"
    write_text_atomically(frozen, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    experiment_id = configure_mlflow(config)
    parent = get_or_create_parent_run(experiment_id, ctx, name=f"{ctx.dag_id} {ctx.logical_date or ctx.run_id}")
    client = MlflowClient()
    client.log_artifact(parent, str(frozen))
    for key, value in {
        "dataset": config.dataset.name,
        "families": ",".join(config.training.families),
        "cv_folds": config.training.cv_folds,
        "seed": config.training.seed,
        "test_fraction": config.training.test_fraction,
        "config_source": str(Path(config_path).resolve()) if config_path else "default",
    }.items():
        client.log_param(parent, key, value)
    run = TrainingRun(str(frozen), experiment_id, parent, str(run_dir), ctx.to_dict(), list(config.training.families))
    return {"run": run.to_dict(), "families": run.families}


@contextmanager
def training_step(
    previous: dict[str, Any], name: str, **tags: str
) -> Iterator[tuple[TrainingRun, ChurnopsConfig, Path]]:
    """Load the run's config and open the step's nested MLflow run (resumed on a retry).

    Args:
        previous: the previous step's result (its ``run`` identifies the pipeline run).
        name: the step's name.
        **tags: more tags for a new step run.

    Yields:
        The run, its config and its folder.
    """
    from churnops.tracking import configure_mlflow, step_run

    run = TrainingRun(**previous["run"])
    config = load_config(run.config_path)
    configure_mlflow(config)
    with step_run(run.experiment_id, run.parent_run_id, run.ctx, name, **tags):
        yield run, config, Path(run.run_dir)


def git_commit() -> str:
    """The commit of the checkout churnops runs from, or ``unknown``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
