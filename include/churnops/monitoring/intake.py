"""The day's input: finding the batch and label files, checking them, quarantining what fails.

Reads only the day's batch folder (``incoming/date=D/``, or ``serving/date=D/`` with
``monitoring.batch_folder: serving``) and ``labels/date=D/`` (never modified); a rejected file is
copied, bytes untouched, beside its reasons under ``quarantine/``, and each file's verdict is
kept under ``work/verdicts/`` for the exact file that was read (:mod:`~churnops.monitoring.verdicts`).
With ``monitoring.arrival_marker`` set, a day's folder is neither listed nor judged before its
producer has written the marker; a served day, not before every server has written its rows.

The ``kind`` of a folder is its role: ``incoming`` for the day's batch, wherever
:func:`day_folder` finds it, and ``labels``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.config import ChurnopsConfig, Source
from churnops.data import (
    DataValidationError,
    coerce_types,
    iter_source,
    partition,
    probe_source,
    quarantine,
    read_source,
    validate_source_in_chunks,
)
from churnops.days import parse_day
from churnops.errors import ChurnopsInputError
from churnops.monitoring.verdicts import (
    FileChangedError,
    file_identity,
    judged_identity,
    reading,
    record_verdict,
    stored_verdict,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from churnops.data import Finding


__all__ = [
    "BatchNotArrivedError",
    "FileChangedError",
    "MissingBatchError",
    "accepted_files",
    "arrived",
    "batch_files",
    "check_batch",
    "day_folder",
    "file_identity",
    "file_rules",
    "file_source",
    "ids_unique",
    "quarantine_file",
    "raise_if_rejected",
    "raw_chunks",
    "read_accepted",
    "read_files",
    "reading",
    "record_verdict",
    "stored_verdict",
]


class MissingBatchError(ChurnopsInputError):
    """No batch file for the day."""


class BatchNotArrivedError(MissingBatchError):
    """The day's folder has no arrival marker yet: its producer may still be writing (nothing is judged)."""


def batch_files(folder: Path) -> list[Path]:
    """The CSV and Parquet entries of a day's folder, sorted by name (none when the folder is absent).

    Listed without following links: every entry but a folder is listed, a symbolic link, FIFO or
    device too, so that checking it refuses it by name (rule ``regular_file``) instead of the
    day silently lacking a file or its reader following the link.
    """
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return sorted(
            Path(e.path)
            for e in entries
            if Path(e.name).suffix.lower() in {".parquet", ".pq", ".csv"} and not e.is_dir(follow_symlinks=False)
        )


def read_files(config: ChurnopsConfig, files: list[Path]) -> pd.DataFrame:
    """Files read whole, typed like training data, as one frame.

    Args:
        config: the dataset's columns and types.
        files: CSV or Parquet files.

    Returns:
        Their rows in file order, indexed from 0; an empty frame without files.
    """
    import pandas as pd

    frames = [_typed_file(config, path) for path in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _typed_file(config: ChurnopsConfig, path: Path) -> pd.DataFrame:
    """One file read whole and typed."""

    return coerce_types(read_source(Source(name=path.stem, path=path)), config.dataset)


def check_batch(config: ChurnopsConfig, day: date | str) -> dict[str, Any]:
    """Find the day's batch and check what needs no row: each file readable, not empty, with the
    required columns and at least ``validation.min_rows`` rows; count the rows. Quarantine what
    fails and raise.

    The row rules (types, ranges, nulls, unique ids) run where the rows are read anyway: each
    shard tallies its rows while scoring them, and ``merge_shards`` judges the merged tallies
    before anything is published.

    Args:
        config: the dataset and its validation rules.
        day: the day (a date or ``YYYY-MM-DD``).

    Returns:
        ``{"date", "files", "file_rows", "rows", "identities"}``: the day's files, their row
        counts and each file's identity as it was read (what the shards must find, what its
        verdict records).

    Raises:
        BatchNotArrivedError: ``monitoring.arrival_marker`` is set and the day's folder lacks it
            (no file is listed or judged, nothing is quarantined).
        MissingBatchError: no CSV or Parquet file for the day.
        FileChangedError: a file changed while it was read (it is not judged).
        DataValidationError: a file breaks a rule (it is copied to quarantine first).
    """
    day = parse_day(day)

    folder = day_folder(config, "incoming", day)
    waiting = _waiting_for(config, "incoming", day)
    if waiting is not None:
        raise BatchNotArrivedError(f"the batch of {day} has not arrived yet: {waiting}")
    files = batch_files(folder)
    if not files:
        raise MissingBatchError(f"no batch for {day}: no CSV or Parquet file in {folder}")
    findings, file_rows, identities = [], [], []
    for path in files:
        with reading(path) as identity:
            found, rows = probe_source(file_source(config, path), file_rules(config, "incoming"))
        findings += quarantine_file(config, day, path, found, "check_batch")
        if found:  # a passing file's verdict waits for its row rules (merge_shards)
            record_verdict("incoming", day, path, found, identity)
        file_rows.append(rows)
        identities.append(identity)
    raise_if_rejected(findings, day)
    return {
        "date": day.isoformat(),
        "files": [str(p) for p in files],
        "file_rows": file_rows,
        "rows": sum(file_rows),
        "identities": identities,
    }


SERVED_DAY_MARGIN = timedelta(seconds=5)
"""Beyond ``serving.log_flush_seconds``: a server checks its buffer's age every second."""


def day_folder(config: ChurnopsConfig, kind: str, day: date) -> Path:
    """The folder a day's batch (``incoming``) or labels (``labels``) are read from.

    Args:
        config: ``monitoring.batch_folder``.
        kind: ``incoming`` or ``labels``.
        day: the day.

    Returns:
        ``$CHURNOPS_HOME/<incoming|serving|labels>/date=YYYY-MM-DD``.
    """
    return partition(config.monitoring.batch_folder if kind == "incoming" else kind, day)


def file_rules(config: ChurnopsConfig, kind: str) -> ChurnopsConfig:
    """The rules each file of a day's batch (``incoming``) or ``labels`` is judged by.

    A batch file needs ``validation.min_rows`` rows; label files and the files of a served
    batch (``monitoring.batch_folder: serving``, one per flush of the request log) may be of
    any length.

    Args:
        config: the validation rules and ``monitoring.batch_folder``.
        kind: ``incoming`` or ``labels``.

    Returns:
        ``config``, or a copy with ``validation.min_rows`` 1.
    """
    if kind == "incoming" and config.monitoring.batch_folder == "incoming":
        return config
    return config.model_copy(update={"validation": config.validation.model_copy(update={"min_rows": 1})})


def ids_unique(config: ChurnopsConfig, kind: str) -> bool:
    """Whether a day's rows must each have an id, none repeated.

    Batches and labels must; the rows a service answered (``monitoring.batch_folder: serving``)
    may score a customer more than once a day, or a caller that sent no id.

    Args:
        config: ``monitoring.batch_folder``.
        kind: ``incoming`` or ``labels``.

    Returns:
        False only for a served batch.
    """
    return not (kind == "incoming" and config.monitoring.batch_folder == "serving")


def served_day_complete_at(config: ChurnopsConfig, day: date) -> datetime:
    """When every running ``churnops serve`` has written the rows it answered on ``day`` (UTC).

    Args:
        config: ``serving.log_flush_seconds``.
        day: the served day.

    Returns:
        The end of the day plus the request log's flush age and :data:`SERVED_DAY_MARGIN`.
    """
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    return end + timedelta(seconds=config.serving.log_flush_seconds) + SERVED_DAY_MARGIN


def arrived(config: ChurnopsConfig, kind: str, day: date | str, now: datetime | None = None) -> bool:
    """Whether a day's batch (``incoming``) or ``labels`` folder is complete.

    Complete means its arrival marker exists, if one is set (``monitoring.arrival_marker``,
    ``monitoring.label_arrival_marker``; only looked for, never read), and, for a batch read from
    ``serving/`` (``monitoring.batch_folder``), that the served day is over and its rows written
    (:func:`served_day_complete_at`).

    Args:
        config: the markers and the batch folder.
        kind: ``incoming`` or ``labels``.
        day: the day (a date or ``YYYY-MM-DD``).
        now: the time to judge at (default: now, UTC).

    Returns:
        True when the day's folder is complete.
    """
    return _waiting_for(config, kind, parse_day(day), now) is None


def _waiting_for(config: ChurnopsConfig, kind: str, day: date, now: datetime | None = None) -> str | None:
    # What a day's folder still waits for (the one judgement arrived() and check_batch() share), or None.
    folder = day_folder(config, kind, day)
    if kind == "incoming" and config.monitoring.batch_folder == "serving":
        complete_at = served_day_complete_at(config, day)
        if (now or datetime.now(UTC)) < complete_at:
            return (
                f"{folder} holds the rows served that day, complete from"
                f" {complete_at.isoformat(timespec='seconds')} (the day's end plus"
                " serving.log_flush_seconds); nothing was read or quarantined"
            )
    marker = config.monitoring.arrival_marker if kind == "incoming" else config.monitoring.label_arrival_marker
    if marker is None or (folder / marker).is_file():
        return None
    setting = "arrival_marker" if kind == "incoming" else "label_arrival_marker"
    return f"no {marker} in {folder} (monitoring.{setting}); nothing was read or quarantined"


def file_source(config: ChurnopsConfig, path: Path, kind: str = "incoming") -> Source:
    """A file of a day's batch (or labels) as a source, with the columns it must hold besides the id.

    Args:
        config: the dataset's columns.
        path: the file.
        kind: ``incoming`` (the feature columns are required) or ``labels`` (the target is).

    Returns:
        The source, named after the file's stem.
    """
    required = config.dataset.feature_columns if kind == "incoming" else [config.dataset.target]
    return Source(name=path.stem, path=path, columns=required)


def quarantine_file(
    config: ChurnopsConfig, day: date, path: Path, findings: list[Finding], step: str, kind: str = "incoming"
) -> list[Finding]:
    """Quarantine a rejected file: copied (bytes untouched) beside a ``reason.json``; a passing one stays.

    Args:
        config: the dataset's columns.
        day: the file's day.
        path: the file.
        findings: its findings (none: nothing is copied).
        step: the step that judged it, recorded in ``reason.json``.
        kind: ``incoming`` (to ``quarantine/monitoring``) or ``labels`` (to ``quarantine/labels``).

    Returns:
        ``findings``.
    """
    if findings:
        folder = partition(f"quarantine/{'monitoring' if kind == 'incoming' else 'labels'}", day)
        quarantine(
            file_source(config, path, kind),
            findings,
            folder / path.name,
            {"step": step, "date": day.isoformat(), "message": str(DataValidationError(findings))},
        )
    return findings


def accepted_files(config: ChurnopsConfig, kind: str, day: date) -> tuple[list[Path], list[dict[str, Any]]]:
    """The files of a day's ``incoming`` or ``labels`` partition that pass validation, and those that do not.

    A rejected file is quarantined (``quarantine/<kind>/date=D/<file>/``, bytes untouched, with
    its reasons) and reported as ``{"file", "findings"}``; later steps and retraining use only
    the accepted ones, read with :func:`read_accepted` (or under :func:`reading` with the verdict's
    identity). Each file's verdict is kept under ``work/verdicts/`` for the file as it was read,
    so a file is read for validation once (``merge_shards`` records the verdicts of the batches
    it judged); a file that differs from it is judged again. A folder whose arrival marker is
    configured and absent (:func:`arrived`) has no files yet. Label files need the id and target
    columns and may be of any length (``validation.min_rows`` does not apply).

    Args:
        config: the dataset and its validation rules.
        kind: ``incoming`` or ``labels``.
        day: the day.

    Returns:
        The accepted files, and ``{"file", "findings"}`` for each rejected one.

    Raises:
        ValueError: ``kind`` is neither ``incoming`` nor ``labels``.
        FileChangingError: a file changed while it was judged (retryable).
    """
    if kind not in {"incoming", "labels"}:
        raise ValueError(f"kind must be incoming or labels, not {kind!r}")
    if not arrived(config, kind, day):
        return [], []
    rules = file_rules(config, kind)
    accepted, rejected = [], []
    for path in batch_files(day_folder(config, kind, day)):
        verdict = stored_verdict(kind, day, path)
        if verdict is None:
            with reading(path) as identity:
                found = validate_source_in_chunks(
                    file_source(config, path, kind),
                    rules,
                    config.monitoring.chunk_rows,
                    unique_ids=ids_unique(config, kind),
                )
            quarantine_file(config, day, path, found, f"accepted_files({kind})", kind)
            verdict = record_verdict(kind, day, path, found, identity)
        if verdict["findings"]:
            rejected.append({"file": str(path), "findings": verdict["findings"]})
        else:
            accepted.append(path)
    return accepted, rejected


def read_accepted(config: ChurnopsConfig, kind: str, day: date) -> pd.DataFrame:
    """The rows of a day's accepted files (:func:`accepted_files`), typed, each read as the file its verdict judged.

    Args:
        config: the dataset and its validation rules.
        kind: ``incoming`` or ``labels``.
        day: the day.

    Returns:
        Their rows in file order, indexed from 0; an empty frame without accepted files.

    Raises:
        FileChangingError: a file changed after it was judged, or while it was read (retryable).
    """
    import pandas as pd

    frames = []
    for path in accepted_files(config, kind, day)[0]:
        with reading(path, judged_identity(kind, day, path), judged_afresh=True):
            frames.append(_typed_file(config, path))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def raise_if_rejected(findings: list[Finding], day: date) -> None:
    """Raise when a file of the day's batch was rejected.

    Args:
        findings: the findings of the day's files (none: nothing happens).
        day: the day (names its quarantine folder in the error).

    Raises:
        DataValidationError: there is a finding.
    """
    if findings:
        raise DataValidationError(findings, partition("quarantine/monitoring", day))


def raw_chunks(
    config: ChurnopsConfig,
    day: date,
    pieces: list[tuple[str, int, int | None]] | None = None,
    columns: list[str] | None = None,
    identities: dict[str, dict[str, int]] | None = None,
    masks: dict[str, np.ndarray] | None = None,
) -> Iterator[tuple[Path, pd.DataFrame]]:
    """``(file, chunk as stored)`` for the day's files or a shard's pieces, ``monitoring.chunk_rows`` rows a chunk.

    Each file is read chunk by chunk, never whole, so memory does not grow with the day, and
    under :func:`reading`: it must be the file ``identities`` names (the one ``check_batch``
    judged and counted) and must not change while it is read.

    Args:
        config: ``monitoring.chunk_rows``.
        day: the day (its ``incoming`` files, when ``pieces`` is None).
        pieces: ``(file, first row, row after the last or None)`` of a shard; None: every file of the day, whole.
        columns: the columns to read (default: all).
        identities: each file's identity as planned (default: whatever it is when its read starts).
        masks: filled with the missing masks the reader knows of each chunk (see
            :func:`~churnops.data.sources.iter_source`) before it is yielded.

    Yields:
        Each file's path and raw chunks, in order.

    Raises:
        FileChangedError: a file is not the planned one, or changed while it was read.
    """

    if pieces is None:
        pieces = [(str(path), 0, None) for path in batch_files(day_folder(config, "incoming", day))]
    for name, start, stop in pieces:
        path = Path(name)
        with reading(path, None if identities is None else identities.get(name, {})):
            source = Source(name=path.stem, path=path)
            unique = (config.dataset.id_column,)
            for chunk in iter_source(source, config.monitoring.chunk_rows, columns, start, stop, unique, masks):
                yield path, chunk
