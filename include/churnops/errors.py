"""Exception types shared by the library, the CLI and the DAGs (import-light on purpose)."""

from __future__ import annotations

__all__ = ["ChurnopsInputError", "TrackingServerUnavailable"]


class ChurnopsInputError(ValueError):
    """Bad input (config or data): retrying cannot help, the input must change."""


class TrackingServerUnavailable(RuntimeError):
    """The MLflow tracking server does not answer: retrying later can help, the input is fine."""
