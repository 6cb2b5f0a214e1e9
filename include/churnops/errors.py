"""Exception types shared by the library, the CLI and the DAGs (import-light on purpose)."""

from __future__ import annotations

__all__ = ["ChurnopsInputError", "PromotionStateUnavailable", "TrackingServerUnavailable"]


class ChurnopsInputError(ValueError):
    """Bad input (config or data): retrying cannot help, the input must change."""


class PromotionStateUnavailable(RuntimeError):
    """The store of the promotion state (Airflow's metadata DB) cannot be read or written.

    Never answered by falling back to another store: that would make two truths.
    """


class TrackingServerUnavailable(RuntimeError):
    """The MLflow tracking server does not answer: retrying later can help, the input is fine."""
