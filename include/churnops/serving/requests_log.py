"""Served rows kept for monitoring: ``$CHURNOPS_HOME/serving/date=YYYY-MM-DD/`` in the layout of ``incoming/``.

With ``serving.log_requests`` on, every predicted row (the id column and the model's input
columns, typed as a batch file is read: numbers as float64, the rest as text) is buffered and
written as one Parquet file per day and flush: ``part-<HHMMSS>-<random>.parquet``, each written
whole or not at all. The day is the UTC day the request arrived, so the folder of a day holds
what was served that day, as ``incoming/date=D/`` holds the day's batch, and a monitoring run
pointed at it reads it the same way.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from churnops.config import ChurnopsConfig
from churnops.data import coerce_types, partition, write_parquet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RequestLog"]

log = logging.getLogger(__name__)


class RequestLog:
    """A buffer of served rows, flushed to the day's folder by size, by age and on :meth:`close`.

    Args:
        config: ``serving.log_flush_rows`` / ``log_flush_seconds`` and the dataset's columns.
    """

    def __init__(self, config: ChurnopsConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._buffer: dict[date, list[pd.DataFrame]] = {}
        self._rows = 0
        self._oldest: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flush_by_age, name="churnops-request-log", daemon=True)
        self._thread.start()

    def add(self, frame: pd.DataFrame, input_columns: list[str]) -> None:
        """Buffer a request's rows (flushing when ``log_flush_rows`` are buffered).

        Args:
            frame: the checked request rows.
            input_columns: the model's input columns (kept with the id column; the rest is dropped).
        """
        import pandas as pd

        id_column = self._config.dataset.id_column
        kept = coerce_types(frame.reindex(columns=[id_column, *input_columns]), self._config.dataset)
        if kept[id_column].isna().all():
            kept[id_column] = pd.Series([None] * len(kept), dtype=object, index=kept.index)
        day = datetime.now(UTC).date()  # the day it was served: a request has no logical date
        with self._lock:
            self._buffer.setdefault(day, []).append(kept)
            self._rows += len(kept)
            self._oldest = self._oldest or time.monotonic()
            if self._rows >= self._config.serving.log_flush_rows:
                self._flush_locked()

    def flush(self) -> None:
        """Write every buffered row now."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Stop the age check and write what is buffered."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()

    def _flush_locked(self) -> None:
        import pandas as pd

        buffered, self._buffer, self._rows, self._oldest = self._buffer, {}, 0, None
        stamp = datetime.now(UTC).strftime("%H%M%S")
        for day, frames in buffered.items():
            path = partition("serving", day) / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
            try:
                write_parquet(pd.concat(frames, ignore_index=True), path)
            except (OSError, ValueError) as exc:  # logging must never fail a prediction
                log.error("could not write %d served rows to %s: %s", sum(map(len, frames)), path, exc)

    def _flush_by_age(self) -> None:
        limit = self._config.serving.log_flush_seconds
        while not self._stop.wait(min(1.0, limit)):
            with self._lock:
                if self._oldest is not None and time.monotonic() - self._oldest >= limit:
                    self._flush_locked()
