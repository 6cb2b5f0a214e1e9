"""Which store holds the promotion state for a process outside a task (the CLI): one per deployment.

The DAGs keep the last promotion and the cooldown's length in Airflow Variables. So that a
promotion or rollback from the command line starts the DAGs' cooldown, and ``churnops status``
sees the DAGs' promotions, the CLI uses the same Variables whenever an Airflow deployment is
configured, and ``$CHURNOPS_HOME/state/promotion.json`` only where no Airflow is configured at all.

``CHURNOPS_STATE`` chooses:

- ``auto`` (default): Airflow Variables if :func:`airflow_configuration` finds an Airflow
  configured, else the file;
- ``airflow``: Airflow Variables (an error if Airflow's metadata DB cannot be reached);
- ``file``: the file.

An Airflow that is configured but cannot be reached is an error
(:class:`~churnops.errors.PromotionStateUnavailable`), never a silent fall back to the file.
Nothing here imports Airflow at module level: a machine without Airflow never loads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from churnops.errors import ChurnopsInputError

if TYPE_CHECKING:
    from churnops.retraining import PromotionState

__all__ = ["STATE_ENV", "STATE_STORES", "PromotionStore", "airflow_configuration", "open_promotion_state"]

STATE_ENV = "CHURNOPS_STATE"
"""The environment variable that chooses the promotion state's store (see :data:`STATE_STORES`)."""

STATE_STORES = ("auto", "airflow", "file")
"""``CHURNOPS_STATE``'s values; ``auto`` (the default) picks ``airflow`` when an Airflow is configured."""

# Airflow reads its metadata DB's URL from these (the _CMD/_SECRET forms run a command or ask a
# secrets backend for it).
_CONNECTION_ENV = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
)


@dataclass(frozen=True)
class PromotionStore:
    """The promotion state a CLI command reads and writes, and where it lives.

    Attributes:
        state: the store, a :class:`~churnops.retraining.PromotionState`.
        kind: ``"airflow-variables"`` or ``"file"``.
        location: the metadata DB's URL (password hidden) or the file's path.
    """

    state: PromotionState
    kind: str
    location: str

    def describe(self) -> str:
        """``"airflow-variables (<db url>)"`` or ``"file (<path>)"``, as ``churnops status`` shows it."""
        return f"{self.kind} ({self.location})"


def airflow_configuration() -> str | None:
    """What shows that an Airflow deployment is configured for this process, or None if nothing does.

    Checked in order, without importing Airflow: one of ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``
    (or its ``_CMD``/``_SECRET`` form) set; ``$AIRFLOW_CONFIG`` naming an existing file;
    ``$AIRFLOW_HOME/airflow.cfg`` existing (``AIRFLOW_HOME`` defaults to ``~/airflow``, as for Airflow).

    Returns:
        The variable's name or the configuration file's path, or None.
    """
    for name in _CONNECTION_ENV:
        if os.environ.get(name):
            return name
    explicit = os.environ.get("AIRFLOW_CONFIG")
    if explicit and Path(explicit).expanduser().is_file():
        return str(Path(explicit).expanduser())
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()
    return str(home / "airflow.cfg") if (home / "airflow.cfg").is_file() else None


def _chosen_store() -> tuple[str, str]:
    """(``"airflow"`` or ``"file"``, why), from ``CHURNOPS_STATE`` and the environment."""
    chosen = (os.environ.get(STATE_ENV) or "auto").strip().lower()
    if chosen not in STATE_STORES:
        raise ChurnopsInputError(
            f"{STATE_ENV}={os.environ.get(STATE_ENV)!r}: expected one of {', '.join(STATE_STORES)}"
        )
    if chosen != "auto":
        return chosen, f"{STATE_ENV}={chosen}"
    configured = airflow_configuration()
    return ("airflow", f"Airflow configured by {configured}") if configured else ("file", "no Airflow configured")


def open_promotion_state(cooldown_days: int) -> PromotionStore:
    """The promotion state for a process outside a task, chosen by ``CHURNOPS_STATE`` (module docstring).

    Args:
        cooldown_days: the cooldown's length in the file store (``policy.cooldown_days``); the
            Airflow store reads ``churnops_cooldown_days`` and falls back to the caller's default.

    Returns:
        The store and where it lives.

    Raises:
        ChurnopsInputError: ``CHURNOPS_STATE`` holds an unknown value.
        PromotionStateUnavailable: the Airflow store is chosen but its metadata DB cannot be read.
    """
    kind, why = _chosen_store()
    if kind == "file":
        from churnops.retraining import FileState

        file_state = FileState(cooldown_days=cooldown_days)
        return PromotionStore(file_state, "file", str(file_state.path))
    from churnops.orchestration.variables import MetadataVariableState

    db_state = MetadataVariableState(chosen_because=why)
    # Read once now: a command must fail before it moves an alias, not when it records the move.
    db_state.last_promotion()
    return PromotionStore(db_state, "airflow-variables", db_state.location)
