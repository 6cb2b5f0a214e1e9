"""Exception types shared by the library, the CLI and the DAGs (import-light on purpose)."""

from __future__ import annotations

__all__ = [
    "ChurnopsInputError",
    "ChurnopsRetryableError",
    "PromotionStateUnavailable",
    "TrackingServerUnavailable",
]


class ChurnopsInputError(ValueError):
    """Bad input (config or data): retrying cannot help, the input must change."""


class ChurnopsRetryableError(RuntimeError):
    """A condition that retrying later can clear (a file still being written, a lock still held,
    a store that does not answer): the input is fine. Airflow retries the task; the CLI prints one
    line and exits 1."""


class PromotionStateUnavailable(ChurnopsRetryableError):
    """The store of the promotion state (Airflow's metadata DB) cannot be read or written.

    Never answered by falling back to another store: that would make two truths.
    """


class TrackingServerUnavailable(ChurnopsRetryableError):
    """The MLflow tracking server does not answer: retrying later can help, the input is fine."""
