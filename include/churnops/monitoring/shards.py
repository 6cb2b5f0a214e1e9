"""Scoring a day in shards: plan, score each shard in one pass over its chunks, merge.

A day of more than ``monitoring.shard_rows`` rows is cut into shards of whole chunks, each
scored by one task; each shard also tallies its rows for validation and gathers its part of
the drift statistics, so the day is read once. The merged result does not depend on the
number of shards. Shard parts live under ``work/monitoring/date=D/shard-*/``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from churnops.config import ChurnopsConfig, MonitoringConfig
from churnops.data import (
    Finding,
    SourceReadError,
    Tally,
    atomic_parquet_writer,
    coerce_types,
    iter_source,
    partition,
    replaced_atomically,
    tally_findings,
    write_parquet,
    write_text_atomically,
)
from churnops.days import parse_day
from churnops.faults import crash_point
from churnops.monitoring.intake import (
    check_batch,
    file_rules,
    file_source,
    ids_unique,
    quarantine_file,
    raise_if_rejected,
    raw_chunks,
)
from churnops.monitoring.sampling import CurrentSide, chunk_quota, current_side
from churnops.monitoring.scoring import SCORE_COLUMN, VERSION_COLUMN, champion_version, load_model, positive_scores
from churnops.monitoring.verdicts import reading, record_verdict

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["merge_shards", "plan_shards", "score_batch", "score_shard"]


def _shard_folder(day: date, index: int) -> Path:
    return partition("work/monitoring", day) / f"shard-{index:05d}"


def plan_shards(config: ChurnopsConfig, day: date | str, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Cut the checked day (``check_batch``'s result) into shards of at most ``monitoring.shard_rows`` rows.

    A shard is a run of whole chunks (``monitoring.chunk_rows``), so its chunks are exactly those
    of an unsharded read, and carries its offsets in the day (first row, first chunk), which
    set its share of the drift samples and their seeds: the merged result does not depend on
    the number of shards. Every shard scores with the one model version resolved here, so an
    alias move while shards run cannot mix models. Each shard also carries the identity of
    each file it reads as ``check_batch`` read it (``identities``): the rows it scores and
    tallies must come from that very file. A day of at most ``shard_rows`` rows is one shard.
    Removes the day's shard parts of an earlier attempt.

    Args:
        config: ``monitoring.chunk_rows`` and ``monitoring.shard_rows``; the registered model.
        day: the day (a date or ``YYYY-MM-DD``).
        batch: :func:`~churnops.monitoring.intake.check_batch`'s result.

    Returns:
        One dict per shard (at least one): its index and the shard count, the model version,
        the day's rows, its first row and first chunk in the day, its rows, its ``pieces``
        (``[file, first row, row after the last]``) and their files' ``identities``.

    Raises:
        NoChampionError: the registered model has no ``@champion``.
    """
    day = parse_day(day)

    version = champion_version(config)
    identities = dict(zip(batch["files"], batch["identities"], strict=True))
    size = config.monitoring.chunk_rows
    per_shard = max(1, config.monitoring.shard_rows // size)
    chunks = [
        (path, first, min(first + size, rows))
        for path, rows in zip(batch["files"], batch["file_rows"], strict=True)
        for first in range(0, rows, size)
    ]
    shutil.rmtree(partition("work/monitoring", day), ignore_errors=True)
    shards, first_row = [], 0
    groups = [chunks[k : k + per_shard] for k in range(0, len(chunks), per_shard)] or [[]]
    for index, group in enumerate(groups):
        pieces: list[list] = []
        for path, start, stop in group:  # consecutive chunks of one file form one piece
            if pieces and pieces[-1][0] == path and pieces[-1][2] == start:
                pieces[-1][2] = stop
            else:
                pieces.append([path, start, stop])
        rows = sum(stop - start for _, start, stop in group)
        shards.append(
            {
                "date": day.isoformat(),
                "index": index,
                "count": len(groups),
                "model_version": version,
                "day_rows": batch["rows"],
                "first_row": first_row,
                "first_chunk": index * per_shard,
                "rows": rows,
                "pieces": pieces,
                "identities": {path: identities[path] for path, _, _ in pieces},
            }
        )
        first_row += rows
    return shards


def score_shard(config: ChurnopsConfig, day: date | str, shard: dict[str, Any]) -> dict[str, Any]:
    """Score one shard and gather its parts of the day's drift statistics, in one pass over its chunks.

    Writes, under the shard's folder: ``predictions.parquet`` (id, score, model version, in
    row order), the feature-drift side (category and null counts of every row, the KS sample;
    :class:`~churnops.monitoring.drift.CurrentSide`) and the report page's sample. A retry rewrites them.

    Args:
        config: the dataset and the monitoring settings.
        day: the day (a date or ``YYYY-MM-DD``).
        shard: one of :func:`plan_shards`' shards.

    Returns:
        ``{"date", "index", "rows", "folder", "model_version", "seconds"}``: what
        :func:`merge_shards` takes, with where the shard's time went.

    Raises:
        DataValidationError: a file turns out unreadable past the footer
            :func:`~churnops.monitoring.intake.check_batch` read (it is quarantined first).
        FileChangedError: a file is not the one ``check_batch`` read, or changed while the
            shard read it (nothing is quarantined; the day must be run again from ``check_batch``).
    """
    day = parse_day(day)

    import pandas as pd
    import pyarrow as pa

    ds, monitoring = config.dataset, config.monitoring
    version, day_rows = shard["model_version"], shard["day_rows"]
    model = load_model(config, version)
    folder = _shard_folder(day, shard["index"])
    schema = pa.schema([(ds.id_column, pa.string()), (SCORE_COLUMN, pa.float64()), (VERSION_COLUMN, pa.string())])
    page: list[pd.DataFrame] = []

    tallies: dict[Path, Tally] = {}
    # Where the shard's time goes (one pass does several jobs): reported, for benchmarks and the curious.
    seconds = {"chunks": 0.0, "validate": 0.0}
    with atomic_parquet_writer(folder / "predictions.parquet", schema) as writer:

        def scored_chunks(pool: ThreadPoolExecutor) -> Iterator[pd.DataFrame]:
            # The model scores each chunk on a worker thread while this one reads, tallies and types
            # the next chunk and gathers the drift parts of the previous one (its native code and
            # Arrow's release the GIL): the chunks' results are still taken in order.
            position, resumed = shard["first_row"], time.perf_counter()
            known: dict = {}  # the reader's missing masks of each chunk
            pieces = [tuple(piece) for piece in shard["pieces"]]
            chunks = raw_chunks(config, day, pieces, None, shard["identities"], known)
            waiting: tuple[int, pd.DataFrame, Future] | None = None
            for index, (path, raw) in enumerate(chunks, start=shard["first_chunk"]):
                started = time.perf_counter()
                missing = tallies.setdefault(path, Tally.for_config(config)).add(raw, known)  # the rules' counts
                seconds["validate"] += time.perf_counter() - started
                wanted = [ds.id_column, *ds.feature_columns]
                chunk = coerce_types(raw if list(raw.columns) == wanted else raw[wanted], ds, missing)
                del raw
                scoring = pool.submit(positive_scores, model, chunk, config)
                if waiting is not None:
                    position = write(*waiting, position)
                    seconds["chunks"] += time.perf_counter() - resumed
                    yield waiting[1]
                    resumed = time.perf_counter()
                waiting = (index, chunk, scoring)
            if waiting is not None:
                position = write(*waiting, position)
                seconds["chunks"] += time.perf_counter() - resumed
                yield waiting[1]
                resumed = time.perf_counter()
            seconds["chunks"] += time.perf_counter() - resumed

        def write(index: int, chunk: pd.DataFrame, scoring: Future, position: int) -> int:
            # Built as Arrow columns: the same table as from a pandas frame, without one.
            scores = scoring.result()
            ids = pa.array(chunk[ds.id_column].to_numpy(dtype=object), pa.string(), from_pandas=True)
            versions = pa.repeat(pa.scalar(version, pa.string()), len(chunk))
            score_column = pa.array(scores, pa.float64(), from_pandas=True)  # NaN as null, as from a frame
            writer.write_table(pa.table([ids, score_column, versions], schema=schema))
            page.append(_page_sample_part(chunk[ds.feature_columns], index, position, day_rows, monitoring))
            return position + len(chunk)

        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnops-score") as pool:
                side = current_side(
                    scored_chunks(pool),
                    day_rows,
                    ds.numeric_features,
                    ds.categorical_features,
                    monitoring,
                    first_row=shard["first_row"],
                    first_chunk=shard["first_chunk"],
                )
            # current_side's own time: the drift counts and KS samples, without reading and scoring
            seconds["drift_parts"] = time.perf_counter() - started - seconds.pop("chunks")
        except SourceReadError as exc:  # e.g. a damaged page past the footer check_batch read
            path = next((Path(p) for p, _, _ in shard["pieces"] if Path(p).stem == exc.source), None)
            if path is None:
                raise
            raise_if_rejected(
                quarantine_file(config, day, path, [Finding(exc.source, None, "readable", str(exc))], "score_shard"),
                day,
            )
            raise
    side.save(folder / "current_side")
    crash_point("score_shard:after_drift_parts")  # the fault tests' SIGKILL: a half-written shard folder
    for number, tally in enumerate(tallies.values()):
        tally.save(folder / "validation" / f"{number:03d}.json")
    write_text_atomically(folder / "validation" / "files.json", json.dumps([str(p) for p in tallies]))
    write_parquet(
        pd.concat(page, ignore_index=True) if page else pd.DataFrame(columns=ds.feature_columns),
        folder / "page_sample.parquet",
    )
    return {
        "date": day.isoformat(),
        "index": shard["index"],
        "rows": side.rows,
        "folder": str(folder),
        "model_version": version,
        "identities": shard["identities"],
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def merge_shards(config: ChurnopsConfig, day: date | str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The day's predictions partition and drift parts from its shards' (``score_shard`` results).

    Predictions are copied in shard order into one file, replaced only when complete; the
    drift sides and page samples are merged and kept for the drift and report steps. Each
    file's verdict records the file as ``check_batch`` read it and the shards scored it; a file
    that is no longer that one (rows appended, rewritten, replaced) stops the merge before
    anything is published, so no prediction or verdict covers rows nobody validated.

    Args:
        config: the dataset, its validation rules and ``monitoring.chunk_rows``.
        day: the day (a date or ``YYYY-MM-DD``).
        parts: :func:`score_shard`'s results, one per shard, in any order.

    Returns:
        ``{"date", "predictions", "model_version", "rows", "shards", "drift_parts",
        "shard_seconds"}``; ``drift_parts`` is the folder of the merged drift side and page sample.

    Raises:
        ValueError: the parts are not every shard of one plan (indexes or model versions differ).
        DataValidationError: the row rules reject a file of the day (it is quarantined first;
            nothing is published).
        FileChangedError: a file of the day changed since ``check_batch`` read it (nothing is
            published, quarantined or recorded; the day must be run again from ``check_batch``).
    """
    day = parse_day(day)
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted(parts, key=lambda part: part["index"])
    versions = {part["model_version"] for part in parts}
    if len(versions) != 1 or [part["index"] for part in parts] != list(range(len(parts))):
        raise ValueError(
            f"shards of {day} do not fit together: indexes {[p['index'] for p in parts]}, "
            f"model versions {sorted(versions)}"
        )
    folders = [Path(part["folder"]) for part in parts]
    _judge_tallies(config, day, folders, {name: i for part in parts for name, i in part["identities"].items()})
    out = partition("predictions", day) / "predictions.parquet"
    if len(folders) == 1:  # the one shard's file is the day's: its bytes are copied, not decoded and encoded again
        with replaced_atomically(out) as temporary:
            shutil.copyfile(folders[0] / "predictions.parquet", temporary)
    else:
        schema = pq.read_schema(folders[0] / "predictions.parquet")
        with atomic_parquet_writer(out, schema) as writer:
            for folder in folders:
                for batch in pq.ParquetFile(folder / "predictions.parquet").iter_batches(
                    batch_size=config.monitoring.chunk_rows
                ):
                    writer.write_batch(batch)
    crash_point("merge_shards:after_predictions")  # published, but no drift parts nor MLflow run yet
    side = CurrentSide()
    for folder in folders:
        side = side.merge(CurrentSide.load(folder / "current_side"))
    merged = partition("work/monitoring", day) / "merged"
    side.save(merged / "current_side")
    write_parquet(
        pd.concat([pd.read_parquet(f / "page_sample.parquet") for f in folders], ignore_index=True),
        merged / "page_sample.parquet",
    )
    seconds = {
        key: round(sum(part.get("seconds", {}).get(key, 0.0) for part in parts), 3)
        for key in ("validate", "drift_parts")
    }
    return {
        "date": day.isoformat(),
        "predictions": str(out),
        "model_version": versions.pop(),
        "rows": side.rows,
        "shards": len(parts),
        "drift_parts": str(merged),
        "shard_seconds": seconds,
    }


def _judge_tallies(
    config: ChurnopsConfig, day: date, folders: list[Path], identities: dict[str, dict[str, int]]
) -> None:
    """Merge each file's tallies over the shards, in order, and apply the row rules; quarantine, raise on findings.

    Each file must still be the one the shards read (``identities``), through the rules' own
    re-reads, before its verdict is recorded for it.
    """

    merged: dict[str, Tally] = {}
    for folder in folders:
        names = json.loads((folder / "validation" / "files.json").read_text(encoding="utf-8"))
        for number, name in enumerate(names):
            tally = Tally.load(folder / "validation" / f"{number:03d}.json", config)
            merged[name] = merged[name].merge(tally) if name in merged else tally
    findings = []
    for name, tally in merged.items():
        path = Path(name)
        source = file_source(config, path)
        with reading(path, identities[name]) as identity:
            found = tally_findings(
                tally,
                source,
                file_rules(config, "incoming"),
                partial(iter_source, source, config.monitoring.chunk_rows),
                unique_ids=ids_unique(config, "incoming"),
            )
        findings += quarantine_file(config, day, path, found, "merge_shards")
        record_verdict("incoming", day, path, found, identity)
    raise_if_rejected(findings, day)


def score_batch(config: ChurnopsConfig, day: date | str, batch: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the day's batch with the current ``@champion``: its shards one after another, then merged.

    What the DAG's ``plan_shards → score_shard[i] → merge_shards`` tasks do, in one process.

    Args:
        config: the dataset and the monitoring settings.
        day: the day (a date or ``YYYY-MM-DD``).
        batch: ``check_batch``'s result (it is run when not given).

    Returns:
        :func:`merge_shards`' result.
    """
    day = parse_day(day)
    if batch is None:
        batch = check_batch(config, day)
    parts = [score_shard(config, day, shard) for shard in plan_shards(config, day, batch)]
    return merge_shards(config, day, parts)


def _page_sample_part(
    chunk: pd.DataFrame, index: int, position: int, day_rows: int, monitoring: MonitoringConfig
) -> pd.DataFrame:
    # The chunk's share of the report page's sample, seeded by the chunk's index in the day.
    import numpy as np

    quota = chunk_quota(monitoring.sample_size, day_rows, position, position + len(chunk))
    if quota >= len(chunk):
        return chunk
    return chunk.sample(n=quota, random_state=np.random.RandomState([monitoring.seed, index]))
