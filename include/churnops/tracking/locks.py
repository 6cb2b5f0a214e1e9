"""The promotion lock: one ``@champion`` move at a time per registered model, whoever moves it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from churnops.config import RegistryConfig
from churnops.errors import ChurnopsRetryableError

__all__ = ["PromotionLockTimeout", "promotion_lock", "promotion_lock_path"]


class PromotionLockTimeout(ChurnopsRetryableError):
    """The promotion lock stayed held past ``registry.lock_timeout_seconds``.

    Not bad input: the holder may finish or die, so a retry later can succeed.
    """


def promotion_lock_path(registry: RegistryConfig) -> Path:
    """The model's promotion lock file, ``$CHURNOPS_HOME/locks/promotion-<model>.lock``.

    Args:
        registry: the registered model's name (one lock per model).

    Returns:
        The lock file's path (it may not exist yet).
    """
    from churnops.config import churnops_home

    return churnops_home() / "locks" / f"promotion-{registry.model_name}.lock"


@contextmanager
def promotion_lock(registry: RegistryConfig) -> Iterator[None]:
    """Hold the model's promotion lock: one alias move at a time, whoever moves it.

    MLflow's alias moves are last-writer-wins and it has no compare-and-set, so every
    promotion and rollback (the retraining DAG, ``churnops retrain``, ``churnops rollback``,
    the rollback DAG) checks and moves ``@champion``, and records the move, under an exclusive
    ``flock`` on :func:`promotion_lock_path`. That serialises processes on one machine and
    containers sharing the ``$CHURNOPS_HOME`` volume; the Airflow pool ``churnops_promotion``
    (one slot) also queues the DAGs' promote tasks. Workers on several hosts need a lock their
    storage honours (``flock`` over NFS may not be).

    The wait is bounded by ``registry.lock_timeout_seconds``: a hung holder makes the waiter
    fail (and Airflow retry it later) instead of occupying a worker slot forever.

    Args:
        registry: the registered model's name (one lock per model) and the wait's limit.

    Raises:
        PromotionLockTimeout: the lock was still held when the wait ran out.
    """
    import fcntl

    path = promotion_lock_path(registry)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        _acquire(handle, path, registry.lock_timeout_seconds)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle: IO[str], path: Path, timeout: float) -> None:
    """Take the exclusive ``flock`` on ``handle``, polling until ``timeout`` seconds have passed."""
    import fcntl

    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)
    handle.seek(0)
    holder = handle.read().strip() or "unknown"
    raise PromotionLockTimeout(
        f"the promotion lock {path} is still held after waiting {timeout:g} s "
        f"(registry.lock_timeout_seconds; taken by pid, host, time: {holder}); "
        "another promotion or rollback is running or hung; retry later"
    )
