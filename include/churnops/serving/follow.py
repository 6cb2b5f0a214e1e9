"""Following ``@champion``: poll the registry, load a new version beside the old one, swap atomically.

The served model is one reference (:attr:`ChampionFollower.current`), replaced in a single
assignment once the new version is loaded and checked: a request that took the old model
finishes on it, the next one gets the new. A version that fails to load (its artifacts do not
match their digest, its files are unreadable, the registry is down) is refused: the old one
keeps serving, the failure is logged and shown by ``GET /health``, and it is tried again at
the next poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from churnops.config import ChurnopsConfig
from churnops.serving.model import ServedModel, load_served_model

__all__ = ["ChampionFollower"]

log = logging.getLogger(__name__)


class ChampionFollower:
    """The current champion in memory, kept in step with the registry by a polling thread.

    Args:
        config: the registry (model name, champion alias) and ``serving.poll_seconds``.
        loader: loads one version (:func:`~churnops.serving.model.load_served_model`).
        resolver: the version the alias points at now, or None.
    """

    def __init__(
        self,
        config: ChurnopsConfig,
        loader: Callable[[ChurnopsConfig, str], ServedModel] = load_served_model,
        resolver: Callable[[ChurnopsConfig], str | None] | None = None,
    ) -> None:
        self.config = config
        self.current: ServedModel | None = None
        self.error: str | None = "no model loaded yet"
        self.refused: dict[str, str] = {}
        self.checked_at: float | None = None
        self._loader = loader
        self._resolver = resolver or _champion_version
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._check_lock = threading.Lock()

    def check(self) -> ServedModel | None:
        """Ask the registry once; load and swap to the alias's version if it moved.

        Returns:
            The model served after the check.
        """
        with self._check_lock:
            alias = self.config.registry.champion_alias
            try:
                version = self._resolver(self.config)
            except Exception as exc:  # the registry unreachable: keep serving what is loaded
                self._fail(f"cannot read @{alias} from the registry: {exc}")
                return self.current
            self.checked_at = time.time()
            if version is None:
                self._fail(f"{self.config.registry.model_name} has no @{alias} version")
                return self.current
            if self.current is not None and self.current.version == version:
                self.error, self.refused = None, {}  # the alias is (back) on the served version
                return self.current
            try:
                loaded = self._loader(self.config, version)
            except Exception as exc:  # refused: the old version keeps serving
                reason = f"version {version} (@{alias}) refused: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                self.refused[version] = reason
                self._fail(reason)
                return self.current
            previous_version = self.current.version if self.current else None
            self.current = loaded  # the swap: one assignment
            self.error, self.refused = None, {}
            _freeze_heap()
            log.info(
                "serving %s version %s (@%s)%s",
                loaded.model_name,
                version,
                alias,
                f", was version {previous_version}" if previous_version else "",
            )
            return loaded

    def _fail(self, reason: str) -> None:
        self.error = reason
        serving = f"; still serving version {self.current.version}" if self.current else ""
        log.error("%s%s", reason, serving)

    def start(self) -> None:
        """Check now and then every ``serving.poll_seconds`` in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="churnops-champion-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (the current model stays loaded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self.check()
            if self._stop.wait(self.config.serving.poll_seconds):
                return

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether a model is served, and what ``GET /health`` shows."""
        body: dict[str, Any] = {"status": "ok" if self.current else "unavailable"}
        if self.current is not None:
            body.update(model_name=self.current.model_name, model_version=self.current.version)
        if self.error:
            body["detail"] = self.error
        if self.refused:
            body["refused_versions"] = dict(self.refused)
        return self.current is not None, body


def _freeze_heap() -> None:
    """Move every object alive now (the libraries, the model) out of the garbage collector's sight.

    A request of 10,000 rows allocates hundreds of thousands of objects, each full collection
    otherwise walking the whole heap of pandas, scikit-learn and MLflow again (more than half the
    time of building the answer's reasons). The previous model is collected first (``unfreeze``,
    ``collect``), then the heap is frozen again with the new one.
    """
    import gc

    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _champion_version(config: ChurnopsConfig) -> str | None:
    from churnops.tracking import alias_version

    return alias_version(config.registry, config.registry.champion_alias)
