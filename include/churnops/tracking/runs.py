"""MLflow tracking: store selection, one parent run per pipeline run, reusable step runs.

A pipeline run is identified by (dag id, run id). Looking runs up by those tags rather
than creating them blindly is what makes a retried task reuse its step run.

Each parent and step run carries its owner (``churnops.owner``): the process that opened or
last resumed it (:func:`churnops.processes.process_owner`). A process killed with SIGKILL leaves
its runs RUNNING; the next step of the same DAG (a retry, a later task, the next run) marks
those whose owner is gone FAILED (:func:`fail_abandoned_runs`), and a retried step resumes its
own run, which ends FINISHED or FAILED.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from churnops.config import ChurnopsConfig, churnops_home
from churnops.processes import owner_is_gone, process_owner

__all__ = [
    "OWNER_TAG",
    "RunContext",
    "RunListener",
    "announce_run",
    "listening_for_runs",
    "TAG_PREFIX",
    "configure_mlflow",
    "ensure_experiment",
    "fail_abandoned_runs",
    "finish_parent_run",
    "get_or_create_parent_run",
    "step_run",
    "tracking_outage",
    "tracking_uri",
    "use_tracking_store",
]


class RunListener(Protocol):
    """Told of every MLflow run the library opens or resumes (``experiment_id``, ``run_id``)."""

    def __call__(self, experiment_id: str, run_id: str) -> None: ...


_listeners: ContextVar[tuple[RunListener, ...]] = ContextVar("churnops_run_listeners", default=())


@contextmanager
def listening_for_runs(listener: RunListener) -> Iterator[None]:
    """Tell ``listener`` of every run opened or resumed inside the block.

    The orchestration layer uses it to link each Airflow task to its MLflow run, so this
    package needs to know nothing of Airflow; outside such a block (the CLI, tests) nobody listens.

    Args:
        listener: called with ``(experiment_id, run_id)`` of each run.
    """
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)


def announce_run(experiment_id: str, run_id: str) -> None:
    """Tell the listeners of :func:`listening_for_runs` that the library logs to this run.

    Args:
        experiment_id: the run's experiment.
        run_id: the run.
    """
    for listener in _listeners.get():
        listener(experiment_id, run_id)


TAG_PREFIX = "churnops."
PARENT_STEP = "pipeline"
OWNER_TAG = f"{TAG_PREFIX}owner"
"""The tag naming the process that opened or last resumed a run (``<host>_<pid>_<start>``)."""


@dataclass(frozen=True)
class RunContext:
    """Who is running: the DAG (or ``cli``), its run id and its logical date (ISO, or None)."""

    dag_id: str
    run_id: str
    logical_date: str | None = None

    @property
    def slug(self) -> str:
        """The run id made safe as one path component."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.run_id).strip("._") or "run"

    def tags(self) -> dict[str, str]:
        """The ``churnops.dag_id``, ``churnops.run_id`` (and ``churnops.logical_date``) tags of a run."""
        tags = {f"{TAG_PREFIX}dag_id": self.dag_id, f"{TAG_PREFIX}run_id": self.run_id}
        if self.logical_date:
            tags[f"{TAG_PREFIX}logical_date"] = self.logical_date
        return tags

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (what XCom carries); ``RunContext(**d)`` rebuilds it."""
        return asdict(self)


# mlflow.set_tracking_uri() also exports MLFLOW_TRACKING_URI (for subprocesses); remember
# the default we exported so it is not mistaken for the user's choice later on.
_exported_default: str | None = None


def _user_tracking_uri() -> str | None:
    value = os.environ.get("MLFLOW_TRACKING_URI")
    return value if value and value != _exported_default else None


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` when set, else SQLite under ``$CHURNOPS_HOME``."""
    return _user_tracking_uri() or f"sqlite:///{churnops_home() / 'mlflow.db'}"


def use_tracking_store() -> str:
    """Point MLflow's tracking and registry at churnops' store; return the URI.

    Every churnops call into MLflow goes through this (or :func:`configure_mlflow`): in a
    fresh task process MLflow would otherwise fall back to ``./mlflow.db`` in the worker's
    working directory.
    """
    import mlflow

    global _exported_default
    uri = tracking_uri()
    if _user_tracking_uri() is None:
        churnops_home().mkdir(parents=True, exist_ok=True)
        _exported_default = uri
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    if mlflow.get_registry_uri() != uri:
        mlflow.set_registry_uri(uri)
    # Every model load downloads the version's artifacts (to check their digest): MLflow's
    # progress bar would add dozens of lines to stderr, where a CLI error must be one line.
    # An operator's own setting wins.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return uri


def tracking_outage(error: BaseException, timeout: float = 3.0) -> Exception | None:
    """A clear error if ``error`` happened while the MLflow tracking server is down, else None.

    MLflow reports an outage as a long ``MlflowException`` about "max retries exceeded" on some
    REST endpoint (after its own HTTP retries). When the tracking URI is a server and its
    ``/health`` does not answer now, say so in one line, naming the server: the failing step
    is retried by Airflow, and every churnops step resumes or redoes its work idempotently.

    Args:
        error: the error a step raised.
        timeout: seconds to wait for ``/health``.

    Returns:
        A :class:`~churnops.errors.TrackingServerUnavailable` to raise instead, or None: the
        tracking URI is not a server, the server answers, or ``error`` is already that.
    """
    import requests  # MLflow's own HTTP client

    from churnops.errors import TrackingServerUnavailable

    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")) or isinstance(error, TrackingServerUnavailable):
        return None
    try:
        answer = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
        if answer.status_code < 500:
            return None
        why = f"/health answered {answer.status_code}"
    except requests.RequestException as probe:
        cause = str(probe).rsplit(":", 1)[-1].strip(" )'\"")  # e.g. "Connection refused"
        why = f"{type(probe).__name__}: {cause}"
    return TrackingServerUnavailable(
        f"MLflow tracking server {uri} is unreachable ({why}); the step stopped at {type(error).__name__} "
        "and is retried: once the server is back it resumes where it stopped."
    )


def configure_mlflow(config: ChurnopsConfig) -> str:
    """Point MLflow at the tracking store and registry; return the config's experiment id (created on first use)."""
    return ensure_experiment(config.experiment_name)


def ensure_experiment(name: str) -> str:
    """The id of experiment ``name`` in churnops' store, created on first use.

    With the embedded default its artifacts go under ``$CHURNOPS_HOME/mlartifacts``; a
    tracking server decides its own artifact location.

    Args:
        name: the experiment's name.

    Returns:
        The experiment's id.
    """
    import mlflow

    use_tracking_store()
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (churnops_home() / "mlartifacts").as_uri() if _user_tracking_uri() is None else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another task created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _find_run(experiment_id: str, tags: dict[str, str]) -> Any:
    from mlflow import MlflowClient

    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = MlflowClient().search_runs(
        [experiment_id], filter_string=query, max_results=2, order_by=["attributes.start_time ASC"]
    )
    return runs[0] if runs else None


def get_or_create_parent_run(experiment_id: str, ctx: RunContext, name: str) -> str:
    """The parent run of this pipeline run, created once and found again on retries.

    Args:
        experiment_id: the experiment to look in and create in.
        ctx: the pipeline run (its DAG id and run id find the parent again).
        name: the run's name, if it is created.

    Returns:
        The parent run's id.
    """
    from mlflow import MlflowClient

    key = {**ctx.tags(), f"{TAG_PREFIX}step": PARENT_STEP}
    found = _find_run(
        experiment_id, {k: key[k] for k in (f"{TAG_PREFIX}dag_id", f"{TAG_PREFIX}run_id", f"{TAG_PREFIX}step")}
    )
    if found is not None:
        run_id = found.info.run_id
    else:
        tags = {**key, OWNER_TAG: process_owner()}
        run_id = MlflowClient().create_run(experiment_id, run_name=name, tags=tags).info.run_id
    fail_abandoned_runs(experiment_id, ctx.dag_id, keep={run_id})
    announce_run(experiment_id, run_id)
    return run_id


def fail_abandoned_runs(experiment_id: str, dag_id: str, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Mark FAILED the RUNNING runs of DAG ``dag_id`` whose owner process is gone (killed).

    A run is abandoned when its ``churnops.owner`` names a process of this host that no longer
    runs (:func:`churnops.processes.owner_is_gone`); a run of a live process, of another host
    or without an owner stays as it is. Each is tagged ``churnops.error`` with its owner. Runs
    of this DAG only: a DAG runs one pipeline run at a time (``max_active_runs`` 1; a CLI
    pipeline is one process), so a parent run whose owner is gone belongs to a pipeline run
    that died, unless it is the caller's own, which ``keep`` names.

    Args:
        experiment_id: the experiment to look in.
        dag_id: the DAG (``churnops.dag_id``) whose runs are checked.
        keep: run ids left alone whatever their owner (the caller's parent and step runs).

    Returns:
        The ids of the runs marked FAILED.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    query = f"tags.`{TAG_PREFIX}dag_id` = '{dag_id}' and attributes.status = 'RUNNING'"
    failed = []
    for run in client.search_runs([experiment_id], filter_string=query, max_results=1000):
        owner = run.data.tags.get(OWNER_TAG)
        if run.info.run_id in keep or not owner or not owner_is_gone(owner):
            continue
        # Read again right before: a retry may have resumed it (a new owner) since the search.
        now = client.get_run(run.info.run_id)
        if now.info.status != "RUNNING" or now.data.tags.get(OWNER_TAG) != owner:
            continue
        client.set_tag(run.info.run_id, f"{TAG_PREFIX}error", f"abandoned: its process {owner} is gone (killed)")
        client.set_terminated(run.info.run_id, status="FAILED")
        failed.append(run.info.run_id)
    return failed


@contextmanager
def step_run(experiment_id: str, parent_run_id: str, ctx: RunContext, step: str, **extra_tags: str) -> Iterator[Any]:
    """Start (or, on a retry, resume) the nested run of one step and make it active.

    The step run is keyed by the parent and ``step`` (e.g. ``train/xgboost``). On error,
    the step run and the parent are marked FAILED, with the error as a tag on both. This process
    becomes the owner of both; runs of the DAG abandoned by killed processes (another step's, a
    dead pipeline run's) are marked FAILED first (:func:`fail_abandoned_runs`). A resumed run,
    even one a killed attempt left RUNNING, ends FINISHED or FAILED.

    Args:
        experiment_id: the experiment of the parent run.
        parent_run_id: the pipeline run's parent run (set back to RUNNING if it was not).
        ctx: the pipeline run, tagged on a new step run.
        step: the step's name.
        **extra_tags: more tags for a new step run.

    Yields:
        The active MLflow run (``mlflow.ActiveRun``).
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    owner = process_owner()
    parent = client.get_run(parent_run_id)
    if parent.info.status != "RUNNING":
        client.update_run(parent_run_id, status="RUNNING")
    client.set_tag(parent_run_id, OWNER_TAG, owner)
    key = {"mlflow.parentRunId": parent_run_id, f"{TAG_PREFIX}step": step}
    existing = _find_run(experiment_id, key)
    own = {parent_run_id} | ({existing.info.run_id} if existing is not None else set())
    fail_abandoned_runs(experiment_id, ctx.dag_id, keep=own)
    if existing is not None:
        resumed = {f"{TAG_PREFIX}resumed": "true", OWNER_TAG: owner}
        active = mlflow.start_run(run_id=existing.info.run_id, tags=resumed)
    else:
        tags = {**ctx.tags(), **key, **extra_tags, OWNER_TAG: owner}
        active = mlflow.start_run(experiment_id=experiment_id, run_name=step.replace("/", ":"), tags=tags)
    with active as run:
        announce_run(experiment_id, run.info.run_id)
        try:
            yield run
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"[:4000]
            mlflow.set_tag(f"{TAG_PREFIX}error", message)
            client.set_tag(parent_run_id, f"{TAG_PREFIX}error", f"{step}: {message}"[:4000])
            client.set_terminated(parent_run_id, status="FAILED")
            raise


def finish_parent_run(parent_run_id: str) -> None:
    """Mark the parent FINISHED; an error tag left by a step that later succeeded on retry goes.

    Args:
        parent_run_id: the pipeline run's parent run.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    if f"{TAG_PREFIX}error" in client.get_run(parent_run_id).data.tags:
        client.delete_tag(parent_run_id, f"{TAG_PREFIX}error")
    client.set_terminated(parent_run_id, status="FINISHED")
