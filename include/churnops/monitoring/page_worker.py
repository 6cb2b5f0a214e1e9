"""Evidently's part of the drift page computed in a child process, beside the day's other steps.

Importing evidently and running its preset cost seconds whatever the day's size, and that
part of the page depends only on the two capped samples. :func:`~churnops.monitoring.steps.run_monitoring`
therefore starts a :class:`PageWorker` first: a forked child (it starts with the caller's
pandas, scipy and churnops already imported) that imports evidently on the other core while
the day is scored, receives the samples as soon as the shards have drawn the page's sample
(:meth:`PageWorker.submit`) and computes :func:`~churnops.monitoring.report_page.evidently_view`
while the drift and performance steps run. The report step collects it (:meth:`PageWorker.result`).

The child runs the very function the report step would run in-process, on the same capped rows
(the parent draws them with :func:`~churnops.monitoring.sampling.capped_pair`, which leaves an
already capped frame as it is), so the page does not depend on where its view was computed.
Should the child fail, the report step computes the view itself. The child touches nothing it
inherited but the two pipes (no MLflow store, no model), writes to neither of the caller's
streams and leaves with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
import warnings
from typing import IO, TYPE_CHECKING, Any

from churnops.config import MonitoringConfig
from churnops.monitoring.sampling import capped_pair

if TYPE_CHECKING:
    import pandas as pd

    from churnops.monitoring.report_page import EvidentlyView

__all__ = ["RESULT_TIMEOUT_SECONDS", "PageWorker"]

log = logging.getLogger(__name__)

RESULT_TIMEOUT_SECONDS = 120.0
"""The longest the report step waits for the child's view (it takes seconds): a child that hangs
(say, on a lock some other thread of the caller held when it forked) is then killed and the view
computed in-process."""


class PageWorker:
    """A child process that computes the page's evidently view for one day.

    The child starts when the worker is made; use the worker as a context manager so the child
    is always reaped.

    Args:
        monitoring: sample size, seed and thresholds of the view.
        timeout: the longest :meth:`result` waits for the view, in seconds.
    """

    def __init__(self, monitoring: MonitoringConfig, timeout: float = RESULT_TIMEOUT_SECONDS) -> None:
        self.monitoring = monitoring
        self.timeout = timeout
        self._columns: tuple[list[str], list[str]] | None = None
        self._sender: threading.Thread | None = None
        self._collected = False
        job_read, job_write = os.pipe()
        result_read, result_write = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):  # a closed or broken stream holds nothing
                    stream.flush()
        self._pid = os.fork()
        if self._pid == 0:  # the child
            try:
                os.close(job_write)
                os.close(result_read)
                quiet = os.open(os.devnull, os.O_WRONLY)  # the caller's stdout may be a JSON answer
                os.dup2(quiet, 1)
                os.dup2(quiet, 2)
                with os.fdopen(job_read, "rb") as jobs, os.fdopen(result_write, "wb") as results:
                    _serve(jobs, results)
            finally:
                os._exit(0)
        os.close(job_read)
        os.close(result_write)
        self._jobs: IO[bytes] = os.fdopen(job_write, "wb")
        self._results: IO[bytes] = os.fdopen(result_read, "rb")

    def __enter__(self) -> PageWorker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def submit(
        self, reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]
    ) -> None:
        """Send the view's samples: the rows :func:`~churnops.monitoring.report_page.evidently_view` would draw.

        Sent by a thread, so the caller goes on while the child is still importing evidently.

        Args:
            reference: reference rows.
            current: the current rows the page samples (the shards' page sample).
            numeric: numeric feature columns.
            categorical: categorical feature columns.
        """
        columns = [*numeric, *categorical]
        ref, cur = capped_pair(reference, current, self.monitoring.sample_size, self.monitoring.seed, columns)
        job = pickle.dumps((self.monitoring, ref, cur, list(numeric), list(categorical)), pickle.HIGHEST_PROTOCOL)
        self._sender = threading.Thread(target=self._send, args=(job,), name="churnops-page-samples", daemon=True)
        self._sender.start()
        self._columns = (list(numeric), list(categorical))

    def _send(self, job: bytes) -> None:
        try:
            with self._jobs:
                self._jobs.write(job)
        except OSError:  # the child is gone; result() says so
            pass

    def result(self, numeric: list[str], categorical: list[str]) -> EvidentlyView | None:
        """The view computed for these columns, waiting for it; None when there is none to use.

        Args:
            numeric: the numeric columns the page shows.
            categorical: the categorical columns the page shows.

        Returns:
            The child's :class:`~churnops.monitoring.report_page.EvidentlyView`, or None when no
            samples were submitted for these columns, or the child failed or gave no answer within
            ``timeout`` (said in the log; :meth:`close` then kills it).
        """
        if self._columns != (list(numeric), list(categorical)):
            return None
        self._columns = None
        try:
            status, value = pickle.loads(_read_until_closed(self._results.fileno(), self.timeout))
            self._collected = True
        except (EOFError, OSError, TimeoutError, pickle.UnpicklingError) as exc:
            log.warning("evidently page worker ended without a view (%r); the report step computes it", exc)
            return None
        if status != "ok":
            log.warning("evidently page worker failed; the report step computes the view:\n%s", value)
            return None
        return value

    def close(self) -> None:
        """Reap the child: it has ended or is about to once its view is collected; otherwise
        (no samples sent, or a view nobody will collect because the run failed) it is killed."""
        if not self._collected:
            os.kill(self._pid, signal.SIGKILL)
        self._results.close()
        os.waitpid(self._pid, 0)
        if self._sender is not None:
            self._sender.join()
        else:
            self._jobs.close()


def _read_until_closed(fd: int, timeout: float) -> bytes:
    # Everything the child writes before it exits, or TimeoutError once ``timeout`` seconds pass.
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"no view after {timeout:g} s")
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _serve(jobs: IO[bytes], results: IO[bytes]) -> None:
    # Import evidently while the parent scores; then compute the one view it is sent.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import evidently  # noqa: F401

            from churnops.monitoring.report_page import evidently_view

            data = jobs.read()
            if not data:  # the parent ended without samples (the run failed, or no page)
                return
            monitoring, reference, current, numeric, categorical = pickle.loads(data)
            answer: tuple[str, Any] = ("ok", evidently_view(reference, current, numeric, categorical, monitoring))
    except BaseException:  # noqa: BLE001  every failure goes back to the parent, which falls back
        answer = ("error", traceback.format_exc())
    try:
        pickle.dump(answer, results, pickle.HIGHEST_PROTOCOL)
        results.flush()
    except OSError:  # the parent stopped listening
        pass
