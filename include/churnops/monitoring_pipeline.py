"""The steps of daily monitoring, shared by the ``churn_monitoring`` DAG and ``churnops monitor``.

Every step is keyed by the monitored day (the run's logical date) and reads and writes
only that day's partitions under ``$CHURNOPS_HOME``::

    incoming/date=D/*.parquet|csv     the day's batch (read only)
    labels/date=D/*.parquet|csv       outcomes of day D's customers (read only)
    predictions/date=D/predictions.parquet
    reports/date=D/*.json, drift_report.html
    work/monitoring/date=D/shard-*/   each shard's scores and drift parts (merged into the above)
    quarantine/monitoring/date=D/...  rejected batch files with reason.json

so a rerun or a backfill of a day gives the same result and never duplicates anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from churnops.config import ChurnopsConfig, Source, churnops_home
from churnops.errors import ChurnopsInputError
from churnops.faults import crash_point
from churnops.pipeline import write_json

__all__ = [
    "MissingBatchError",
    "check_batch",
    "feature_drift_step",
    "merge_shards",
    "parse_day",
    "partition",
    "performance_step",
    "plan_shards",
    "prediction_drift_step",
    "report_step",
    "run_monitoring",
    "score_batch",
    "score_shard",
]

SCORE_COLUMN = "score"
VERSION_COLUMN = "model_version"


class MissingBatchError(ChurnopsInputError):
    """No batch file for the day."""


class NoChampionError(RuntimeError):
    """The registered model has no ``@champion`` to score with."""


def parse_day(value: str | date) -> date:
    """A day from ``YYYY-MM-DD`` (or an ISO timestamp); anything else is an input error.

    Partitions are built from the parsed date, never from the raw string, so a value like
    ``../../etc`` cannot point outside ``$CHURNOPS_HOME``.
    """
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ChurnopsInputError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def partition(kind: str, day: date) -> Path:
    return churnops_home() / kind / f"date={day.isoformat()}"


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".parquet", ".pq", ".csv"} and p.is_file())


# Within one run_monitoring call the steps share the reference split and the model (the day's
# batch is read once anyway, by the shards). Each step called on its own (an Airflow task)
# reads its inputs itself. The shared frames are never modified by the steps.
_RUN_CACHE: ContextVar[dict | None] = ContextVar("churnops_monitoring_run_cache", default=None)


@contextmanager
def _shared_reads() -> Iterator[dict]:
    token = _RUN_CACHE.set({})
    try:
        yield _RUN_CACHE.get()
    finally:
        _RUN_CACHE.reset(token)


def _cached(key: tuple, compute: Callable[[], Any]) -> Any:
    cache = _RUN_CACHE.get()
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def read_files(config: ChurnopsConfig, files: list[Path]) -> Any:
    """Files read whole, typed like training data, as one frame."""
    import pandas as pd

    frames = [_typed_file(config, path) for path in files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _typed_file(config: ChurnopsConfig, path: Path) -> Any:
    """One file read whole and typed."""
    from churnops.data import coerce_types, read_source

    return coerce_types(read_source(Source(name=path.stem, path=path)), config.dataset)


def check_batch(config: ChurnopsConfig, day: date) -> dict[str, Any]:
    """Find the day's batch and check what needs no row: each file readable, not empty, with the
    required columns and at least ``validation.min_rows`` rows; count the rows. Quarantine what
    fails and raise.

    The row rules (types, ranges, nulls, unique ids) run where the rows are read anyway: each
    shard tallies its rows while scoring them, and ``merge_shards`` judges the merged tallies
    before anything is published.

    Raises:
        MissingBatchError: no CSV or Parquet file for the day.
        DataValidationError: a file breaks a rule (it is copied to quarantine first).
    """
    from churnops.validation import probe_source

    folder = partition("incoming", day)
    files = _files(folder)
    if not files:
        raise MissingBatchError(f"no batch for {day}: no CSV or Parquet file in {folder}")
    findings, file_rows = [], []
    for path in files:
        found, rows = probe_source(_source(config, path), config)
        findings += _quarantined(config, day, path, found, "check_batch")
        if found:  # a passing file's verdict waits for its row rules (merge_shards)
            _record_verdict("incoming", day, path, found)
        file_rows.append(rows)
    _raise_if(findings, day)
    return {"date": day.isoformat(), "files": [str(p) for p in files], "file_rows": file_rows, "rows": sum(file_rows)}


def _source(config: ChurnopsConfig, path: Path, kind: str = "incoming") -> Source:
    # What a file of a day's batch (or labels) must hold besides the id.
    required = config.dataset.feature_columns if kind == "incoming" else [config.dataset.target]
    return Source(name=path.stem, path=path, columns=required)


def _quarantined(
    config: ChurnopsConfig, day: date, path: Path, findings: list, step: str, kind: str = "incoming"
) -> list:
    # A rejected file is copied (bytes untouched) beside a reason.json; returns the findings.
    from churnops.validation import DataValidationError, quarantine

    if findings:
        folder = partition(f"quarantine/{'monitoring' if kind == 'incoming' else 'labels'}", day)
        quarantine(
            _source(config, path, kind),
            findings,
            folder / path.name,
            {"step": step, "date": day.isoformat(), "message": str(DataValidationError(findings))},
        )
    return findings


def _verdict_path(kind: str, day: date, path: Path) -> Path:
    return partition(f"work/verdicts/{kind}", day) / f"{path.name}.json"


def _record_verdict(kind: str, day: date, path: Path, findings: list) -> dict[str, Any]:
    """Remember whether this exact file (size, mtime) passed validation, so later readers need not re-read it."""
    from dataclasses import asdict

    stat = path.stat()
    verdict = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "findings": [asdict(f) for f in findings]}
    write_json(_verdict_path(kind, day, path), verdict)
    return verdict


def accepted_files(config: ChurnopsConfig, kind: str, day: date) -> tuple[list[Path], list[dict[str, Any]]]:
    """The files of a day's ``incoming`` or ``labels`` partition that pass validation, and those that do not.

    A rejected file is quarantined (``quarantine/<kind>/date=D/<file>/``, bytes untouched, with
    its reasons) and reported as ``{"file", "findings"}``; later steps and retraining use only
    the accepted ones. Each file's verdict is kept under ``work/verdicts/`` for its exact size
    and modification time, so a file is read for validation once (``merge_shards`` records the
    verdicts of the batches it judged); a changed file is judged again. Label files need the id
    and target columns and may be of any length (``validation.min_rows`` does not apply).
    """
    import json

    from churnops.validation import validate_source_in_chunks

    if kind not in {"incoming", "labels"}:
        raise ValueError(f"kind must be incoming or labels, not {kind!r}")
    rules = (
        config
        if kind == "incoming"
        else config.model_copy(update={"validation": config.validation.model_copy(update={"min_rows": 1})})
    )
    accepted, rejected = [], []
    for path in _files(partition(kind, day)):
        source = _source(config, path, kind)
        stored, stat = _verdict_path(kind, day, path), path.stat()
        verdict = json.loads(stored.read_text(encoding="utf-8")) if stored.is_file() else None
        if verdict is None or (verdict["size"], verdict["mtime_ns"]) != (stat.st_size, stat.st_mtime_ns):
            found = validate_source_in_chunks(source, rules, config.monitoring.chunk_rows)
            _quarantined(config, day, path, found, f"accepted_files({kind})", kind)
            verdict = _record_verdict(kind, day, path, found)
        if verdict["findings"]:
            rejected.append({"file": str(path), "findings": verdict["findings"]})
        else:
            accepted.append(path)
    return accepted, rejected


def _raise_if(findings: list, day: date) -> None:
    from churnops.validation import DataValidationError

    if findings:
        raise DataValidationError(findings, partition("quarantine/monitoring", day))


def champion_version(config: ChurnopsConfig) -> str:
    from churnops.registry import alias_version
    from churnops.tracking import configure_mlflow

    configure_mlflow(config)
    version = alias_version(config.registry, config.registry.champion_alias)
    if version is None:
        raise NoChampionError(
            f"{config.registry.model_name} has no @{config.registry.champion_alias}: run churn_training first"
        )
    return version


def load_model(config: ChurnopsConfig, version: str) -> Any:
    """The exact registered version (not the alias), so an alias move mid-run cannot mix models."""
    import mlflow

    from churnops.tracking import use_tracking_store

    use_tracking_store()  # a fresh task process would otherwise read MLflow's ./mlflow.db default
    uri = f"models:/{config.registry.model_name}/{version}"
    return _cached(("model", uri), lambda: mlflow.pyfunc.load_model(uri))


SCORE_CHUNK_ROWS = 250_000
"""Rows per call of the model pipeline. Every step of the logged pipeline (fitted coercion,
derived features, imputation, scaling, encoding, estimator) scores a row from that row alone,
so chunks give the same scores while keeping the intermediate frames and matrices small:
less memory, and faster than one call on a million rows."""


def positive_scores(model: Any, frame: Any, config: ChurnopsConfig) -> Any:
    import numpy as np

    columns = config.dataset.feature_columns
    predict = _direct_predict(model, frame, columns) or (lambda chunk: model.predict(chunk[columns]))
    if len(frame) <= SCORE_CHUNK_ROWS:
        return np.asarray(predict(frame))[:, 1]
    return np.concatenate(
        [
            np.asarray(predict(frame.iloc[start : start + SCORE_CHUNK_ROWS]))[:, 1]
            for start in range(0, len(frame), SCORE_CHUNK_ROWS)
        ]
    )


def _direct_predict(model: Any, data: Any, columns: list[str]) -> Callable[[Any], Any] | None:
    """The pyfunc's own predict function, minus MLflow's schema check, when that check is a no-op.

    churnops used to log its models with every input column typed ``any`` (versions registered
    before :func:`churnops.train.model_signature` dropped the input schema). For such a
    signature MLflow's enforcement only checks that the columns are present and rebuilds the
    frame in signature order, calling a Python function on every cell (about 15 µs per row,
    more than the model itself). When the model is a scikit-learn pyfunc with only required
    ``any`` columns, no params schema, and its columns are among ``columns`` (what the caller
    would pass) which ``data`` all has, this returns ``pipeline.<predict_fn>`` applied to those
    columns in signature order: exactly what ``model.predict(data[columns])`` computes.
    Otherwise None: use ``model.predict``, which
    also raises the same errors as before on a missing column.
    """
    try:
        from mlflow.types.schema import AnyType, ColSpec

        metadata = model.metadata
        flavor = metadata.flavors["python_function"]
        schema = metadata.get_input_schema()
        if (
            flavor.get("loader_module") != "mlflow.sklearn"
            or schema is None
            or not schema.has_input_names()
            or metadata.get_params_schema() is not None
            or metadata._is_signature_from_type_hint()
            or metadata._is_type_hint_from_example()
        ):
            return None
        specs = schema.inputs
        if not all(isinstance(s, ColSpec) and isinstance(s.type, AnyType) and s.required for s in specs):
            return None
        names = [s.name for s in specs]
        if not set(names) <= set(columns) or not set(columns) <= set(data.columns):
            return None
        predict = getattr(model.get_raw_model(), flavor.get("predict_fn", "predict"))
    except Exception:  # not an MLflow pyfunc of that shape (e.g. a test double): the plain path
        return None
    return lambda frame: predict(frame[names])


def raw_chunks(
    config: ChurnopsConfig,
    day: date,
    pieces: list[tuple[str, int, int | None]] | None = None,
    columns: list[str] | None = None,
) -> Iterator[tuple[Path, Any]]:
    """``(file, chunk as stored)`` for the day's files or a shard's pieces, ``monitoring.chunk_rows`` rows a chunk.

    Each file is read chunk by chunk, never whole, so memory does not grow with the day.
    """
    from churnops.data import iter_source

    if pieces is None:
        pieces = [(str(path), 0, None) for path in _files(partition("incoming", day))]
    for name, start, stop in pieces:
        path = Path(name)
        for chunk in iter_source(Source(name=path.stem, path=path), config.monitoring.chunk_rows, columns, start, stop):
            yield path, chunk


def _shard_folder(day: date, index: int) -> Path:
    return partition("work/monitoring", day) / f"shard-{index:05d}"


def plan_shards(config: ChurnopsConfig, day: date, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Cut the checked day (``check_batch``'s result) into shards of at most ``monitoring.shard_rows`` rows.

    A shard is a run of whole chunks (``monitoring.chunk_rows``), so its chunks are exactly those
    of an unsharded read, and carries its offsets in the day (first row, first chunk), which
    set its share of the drift samples and their seeds: the merged result does not depend on
    the number of shards. Every shard scores with the one model version resolved here, so an
    alias move while shards run cannot mix models. A day of at most ``shard_rows`` rows is one
    shard. Removes the day's shard parts of an earlier attempt.
    """
    import shutil

    version = champion_version(config)
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
            }
        )
        first_row += rows
    return shards


def score_shard(config: ChurnopsConfig, day: date, shard: dict[str, Any]) -> dict[str, Any]:
    """Score one shard and gather its parts of the day's drift statistics, in one pass over its chunks.

    Writes, under the shard's folder: ``predictions.parquet`` (id, score, model version, in
    row order), the feature-drift side (category and null counts of every row, the KS sample;
    :class:`~churnops.monitor.CurrentSide`) and the report page's sample. A retry rewrites them.
    """
    import json

    import pandas as pd
    import pyarrow as pa

    from churnops.data import SourceReadError, atomic_parquet_writer, coerce_types
    from churnops.monitor import current_side
    from churnops.validation import Finding, Tally

    ds, monitoring = config.dataset, config.monitoring
    version, day_rows = shard["model_version"], shard["day_rows"]
    model = load_model(config, version)
    folder = _shard_folder(day, shard["index"])
    schema = pa.schema([(ds.id_column, pa.string()), (SCORE_COLUMN, pa.float64()), (VERSION_COLUMN, pa.string())])
    page: list[Any] = []

    tallies: dict[Path, Tally] = {}
    # Where the shard's time goes (one pass does several jobs): reported, for benchmarks and the curious.
    seconds = {"chunks": 0.0, "validate": 0.0}
    with atomic_parquet_writer(folder / "predictions.parquet", schema) as writer:

        def scored_chunks() -> Iterator[Any]:
            position, resumed = shard["first_row"], time.perf_counter()
            chunks = raw_chunks(config, day, [tuple(piece) for piece in shard["pieces"]])
            for index, (path, raw) in enumerate(chunks, start=shard["first_chunk"]):
                started = time.perf_counter()
                tallies.setdefault(path, Tally.for_config(config)).add(raw)  # the validation rules' counts
                seconds["validate"] += time.perf_counter() - started
                chunk = coerce_types(raw[[ds.id_column, *ds.feature_columns]], ds)
                scored = pd.DataFrame(
                    {
                        ds.id_column: chunk[ds.id_column].astype(object),
                        SCORE_COLUMN: positive_scores(model, chunk, config),
                        VERSION_COLUMN: version,
                    }
                )
                writer.write_table(pa.Table.from_pandas(scored, schema=schema, preserve_index=False))
                page.append(_page_sample_part(chunk[ds.feature_columns], index, position, day_rows, monitoring))
                position += len(chunk)
                seconds["chunks"] += time.perf_counter() - resumed
                yield chunk
                resumed = time.perf_counter()
            seconds["chunks"] += time.perf_counter() - resumed

        try:
            started = time.perf_counter()
            side = current_side(
                scored_chunks(),
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
            _raise_if(
                _quarantined(config, day, path, [Finding(exc.source, None, "readable", str(exc))], "score_shard"), day
            )
            raise
    side.save(folder / "current_side")
    crash_point("score_shard:after_drift_parts")  # the fault tests' SIGKILL: a half-written shard folder
    for number, tally in enumerate(tallies.values()):
        tally.save(folder / "validation" / f"{number:03d}.json")
    (folder / "validation" / "files.json").write_text(json.dumps([str(p) for p in tallies]), encoding="utf-8")
    _write_parquet(
        pd.concat(page, ignore_index=True) if page else pd.DataFrame(columns=ds.feature_columns),
        folder / "page_sample.parquet",
    )
    return {
        "date": day.isoformat(),
        "index": shard["index"],
        "rows": side.rows,
        "folder": str(folder),
        "model_version": version,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }


def merge_shards(config: ChurnopsConfig, day: date, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The day's predictions partition and drift parts from its shards' (``score_shard`` results).

    Predictions are copied in shard order into one file, replaced only when complete; the
    drift sides and page samples are merged and kept for the drift and report steps.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    from churnops.data import atomic_parquet_writer
    from churnops.monitor import CurrentSide

    parts = sorted(parts, key=lambda part: part["index"])
    versions = {part["model_version"] for part in parts}
    if len(versions) != 1 or [part["index"] for part in parts] != list(range(len(parts))):
        raise ValueError(
            f"shards of {day} do not fit together: indexes {[p['index'] for p in parts]}, "
            f"model versions {sorted(versions)}"
        )
    folders = [Path(part["folder"]) for part in parts]
    _judge_tallies(config, day, folders)
    out = partition("predictions", day) / "predictions.parquet"
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
    _write_parquet(
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


def _judge_tallies(config: ChurnopsConfig, day: date, folders: list[Path]) -> None:
    """Merge each file's tallies over the shards, in order, and apply the row rules; quarantine, raise on findings."""
    import json

    from churnops.data import iter_source
    from churnops.validation import Tally, tally_findings

    merged: dict[str, Tally] = {}
    for folder in folders:
        names = json.loads((folder / "validation" / "files.json").read_text(encoding="utf-8"))
        for number, name in enumerate(names):
            tally = Tally.load(folder / "validation" / f"{number:03d}.json", config)
            merged[name] = merged[name].merge(tally) if name in merged else tally
    findings = []
    for name, tally in merged.items():
        path = Path(name)
        source = _source(config, path)
        found = tally_findings(
            tally, source, config, lambda source=source: iter_source(source, config.monitoring.chunk_rows)
        )
        findings += _quarantined(config, day, path, found, "merge_shards")
        _record_verdict("incoming", day, path, found)
    _raise_if(findings, day)


def _write_parquet(frame: Any, path: Path) -> None:
    from churnops.data import replaced_atomically

    with replaced_atomically(path) as temporary:
        frame.to_parquet(temporary, index=False)


def score_batch(config: ChurnopsConfig, day: date, batch: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the day's batch with the current ``@champion``: its shards one after another, then merged.

    What the DAG's ``plan_shards → score_shard[i] → merge_shards`` tasks do, in one process.
    ``batch`` is ``check_batch``'s result (it is run when not given).
    """
    if batch is None:
        batch = check_batch(config, day)
    parts = [score_shard(config, day, shard) for shard in plan_shards(config, day, batch)]
    return merge_shards(config, day, parts)


def _page_sample_part(chunk: Any, index: int, position: int, day_rows: int, monitoring: Any) -> Any:
    # The chunk's share of the report page's sample, seeded by the chunk's index in the day.
    import numpy as np

    from churnops.monitor import chunk_quota

    quota = chunk_quota(monitoring.sample_size, day_rows, position, position + len(chunk))
    if quota >= len(chunk):
        return chunk
    return chunk.sample(n=quota, random_state=np.random.RandomState([monitoring.seed, index]))


def reference_frame(config: ChurnopsConfig, version: str) -> Any:
    """The training split of the snapshot the version was trained on (found through its tags)."""
    import pandas as pd

    from churnops.data import SPLIT_COLUMN
    from churnops.registry import version_tags

    def read() -> Any:
        path = version_tags(config.registry, version).get("churnops.snapshot_path")
        if not path or not Path(path).is_file():
            raise FileNotFoundError(f"version {version} has no readable training snapshot (tag churnops.snapshot_path)")
        snapshot = pd.read_parquet(path)
        return snapshot[snapshot[SPLIT_COLUMN] == "train"].reset_index(drop=True)

    return _cached(("reference", config.registry.model_name, version), read)


def feature_drift_step(config: ChurnopsConfig, day: date, scored: dict[str, Any]) -> dict[str, Any]:
    """Per-feature drift of the day against the scoring model's own training data.

    The day's side (category and null counts of every row, the seeded KS sample) was gathered
    by the shards while they scored and merged by ``merge_shards``; the day is not read again.
    """
    from churnops.monitor import CurrentSide, drift_summary, feature_drift

    ds = config.dataset
    reference = reference_frame(config, scored["model_version"])
    current = CurrentSide.load(Path(scored["drift_parts"]) / "current_side")
    rows = feature_drift(reference, current, ds.numeric_features, ds.categorical_features, config.monitoring)
    summary = drift_summary(rows, config.monitoring)
    path = write_json(partition("reports", day) / "feature_drift.json", {"features": rows, **summary})
    return {**summary, "feature_drift": str(path)}


def prediction_drift_step(config: ChurnopsConfig, day: date, scored: dict[str, Any]) -> dict[str, Any]:
    """KS between the model's scores on its training data (capped sample) and on the day."""
    import pandas as pd

    from churnops.monitor import prediction_drift, sample_rows

    reference = sample_rows(
        reference_frame(config, scored["model_version"]), config.monitoring.sample_size, config.monitoring.seed
    )
    reference_scores = positive_scores(load_model(config, scored["model_version"]), reference, config)
    current_scores = pd.read_parquet(scored["predictions"], columns=[SCORE_COLUMN])[SCORE_COLUMN].to_numpy()
    result = prediction_drift(reference_scores, current_scores, config.monitoring)
    write_json(partition("reports", day) / "prediction_drift.json", result)
    return result


def trailing_days(last: date, count: int) -> list[date]:
    """The ``count`` days ending with ``last``, oldest first."""
    return [last - timedelta(days=k) for k in range(count - 1, -1, -1)]


def matured_days(config: ChurnopsConfig, day: date) -> list[date]:
    """Label days that have matured by ``day``: the trailing window ending ``label_delay_days`` earlier."""
    monitoring = config.monitoring
    return trailing_days(day - timedelta(days=monitoring.label_delay_days), monitoring.label_window_days)


def matured_outcomes(config: ChurnopsConfig, days: list[date]) -> Any:
    """Labels joined to the scores predicted for them, over ``days`` (days missing either are skipped).

    An inner join on the id, day by day and chunk by chunk: a day's predictions are held as
    64-bit id hashes and scores (16 bytes a row, never the ids themselves), and each chunk of
    its label files looks its ids up there. Only label files that pass validation are used
    (:func:`accepted_files`: a file with a label outside the two classes is quarantined, never
    read as a negative). Returns one row per matched label, in label-file order: ``label``
    (0/1), ``score`` and ``label_date``; ``attrs`` holds ``rejected_label_files`` and
    ``labels_without_prediction`` (labels of ids that were never scored, left out).
    """
    import numpy as np
    import pandas as pd

    from churnops.data import coerce_types, iter_source, label_vector

    ds, size = config.dataset, config.monitoring.chunk_rows
    dates = [d.isoformat() for d in days]  # one byte a row, not a string
    parts, rejected, unmatched = [], [], 0
    for label_day in days:
        predictions = partition("predictions", label_day) / "predictions.parquet"
        if not _files(partition("labels", label_day)) or not predictions.is_file():
            continue
        label_files, refused = accepted_files(config, "labels", label_day)
        rejected += refused
        keys, scores = [], []
        for chunk in iter_source(Source(name="predictions", path=predictions), size, [ds.id_column, SCORE_COLUMN]):
            keys.append(_id_hashes(chunk[ds.id_column]))
            scores.append(chunk[SCORE_COLUMN].to_numpy(dtype="float64"))
        keys, scores = np.concatenate(keys), np.concatenate(scores)
        order = np.argsort(keys, kind="stable")
        keys, scores = keys[order], scores[order]
        for path in label_files:
            for chunk in iter_source(Source(name=path.stem, path=path), size, [ds.id_column, ds.target]):
                chunk = coerce_types(chunk, ds)
                chunk = chunk[chunk[ds.id_column].notna()]
                hashes = _id_hashes(chunk[ds.id_column])
                at = np.minimum(np.searchsorted(keys, hashes), max(len(keys) - 1, 0))
                found = keys[at] == hashes if len(keys) else np.zeros(len(hashes), dtype=bool)
                matched = chunk[found]
                unmatched += int(len(chunk) - found.sum())
                parts.append(
                    pd.DataFrame(
                        {
                            "label": label_vector(matched, config).astype("int8"),
                            SCORE_COLUMN: scores[at[found]],
                            "label_date": pd.Categorical([label_day.isoformat()] * len(matched), categories=dates),
                        }
                    )
                )
    outcomes = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(
            {
                "label": pd.Series(dtype="int8"),
                SCORE_COLUMN: pd.Series(dtype="float64"),
                "label_date": pd.Categorical([], categories=dates),
            }
        )
    )
    outcomes.attrs.update(rejected_label_files=rejected, labels_without_prediction=unmatched)
    return outcomes


def _id_hashes(ids: Any) -> Any:
    import pandas as pd

    # Ids are text once typed (coerce_types) and as written in predictions; a 64-bit hash stands in for each.
    return pd.util.hash_array(ids.to_numpy(dtype=object))


def performance_step(config: ChurnopsConfig, day: date, scored: dict[str, Any]) -> dict[str, Any]:
    """Target drift and realized ROC-AUC on the labels matured within the trailing window."""
    from churnops.data import label_vector
    from churnops.monitor import realized_performance, target_drift
    from churnops.registry import version_tags

    days = matured_days(config, day)
    outcomes = matured_outcomes(config, days)
    reference_labels = label_vector(reference_frame(config, scored["model_version"]), config)
    target = target_drift(reference_labels, outcomes["label"].to_numpy(dtype=int), config.monitoring)
    holdout = version_tags(config.registry, scored["model_version"]).get("churnops.test_roc_auc")
    performance = realized_performance(
        outcomes["label"].to_numpy(dtype=int),
        outcomes[SCORE_COLUMN].to_numpy(),
        float(holdout) if holdout else None,
        config.monitoring,
    )
    result = {
        "window": [days[0].isoformat(), days[-1].isoformat()],
        "label_days": sorted(outcomes["label_date"].astype(object).unique().tolist()),
        "target_drift": target,
        "performance": performance,
        "rejected_label_files": outcomes.attrs["rejected_label_files"],
        "labels_without_prediction": outcomes.attrs["labels_without_prediction"],
    }
    write_json(partition("reports", day) / "performance.json", result)
    return result


def _monitoring_run(config: ChurnopsConfig, day: date) -> str:
    """The one MLflow run of a monitored day, created once and reused by reruns."""
    from mlflow import MlflowClient

    from churnops.orchestration import publish_mlflow_run
    from churnops.tracking import ensure_experiment

    experiment_id = ensure_experiment(f"{config.experiment_name}-monitoring")
    client = MlflowClient()
    found = client.search_runs([experiment_id], f"tags.`churnops.monitoring_date` = '{day.isoformat()}'", max_results=1)
    run_id = (
        found[0].info.run_id
        if found
        else client.create_run(
            experiment_id, run_name=f"monitoring {day}", tags={"churnops.monitoring_date": day.isoformat()}
        ).info.run_id
    )
    publish_mlflow_run(experiment_id, run_id)
    return run_id


def report_step(
    config: ChurnopsConfig,
    day: date,
    scored: dict[str, Any],
    features: dict[str, Any],
    prediction: dict[str, Any],
    performance: dict[str, Any],
    context: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Decide, write the day's report (JSON + evidently HTML unless switched off) and log it to the day's MLflow run."""
    import pandas as pd
    from mlflow import MlflowClient

    from churnops.monitor import decide, drift_report_html

    decision = decide(features, prediction, performance["performance"])
    folder = partition("reports", day)
    report = {
        "date": day.isoformat(),
        "model_version": scored["model_version"],
        "rows": scored["rows"],
        "shards": scored.get("shards", 1),
        "drifted_features": features["drifted_features"],
        "drift_share": features["drift_share"],
        "dataset_drift": features["dataset_drift"],
        "prediction_drift": prediction["drifted"],
        "target_drift": performance["target_drift"]["drifted"],
        "realized_roc_auc": performance["performance"]["realized_roc_auc"],
        "n_labels": performance["performance"]["n_labels"],
        "decision": decision["decision"],
        "reasons": decision["reasons"],
        "notes": [
            *decision.get("notes", []),
            *(
                f"label file {Path(r['file']).name} of {Path(r['file']).parent.name} rejected (quarantined): "
                f"{r['findings'][0]['rule']}: {r['findings'][0]['message']}"
                for r in performance.get("rejected_label_files", [])
            ),
        ],
        "details": {"features": features["feature_drift"], "prediction": prediction, "performance": performance},
    }
    json_path = write_json(folder / "drift_report.json", report)
    html_path: Path | None = folder / "drift_report.html"
    if config.monitoring.html_report:
        current = pd.read_parquet(Path(scored["drift_parts"]) / "page_sample.parquet")  # the shards' sample
        drift_report_html(
            reference_frame(config, scored["model_version"]),
            current,
            config.dataset.numeric_features,
            config.dataset.categorical_features,
            html_path,
            config.monitoring.sample_size,
            config.monitoring.seed,
        )
    else:  # a rerun with the report switched off leaves no stale page behind
        html_path.unlink(missing_ok=True)
        html_path = None
    run_id = _monitoring_run(config, day)
    client = MlflowClient()
    metrics = {
        key: float(report[key])
        for key in ("rows", "drift_share", "dataset_drift", "prediction_drift", "target_drift", "n_labels")
    }
    metrics["retrain"] = float(decision["decision"] == "retrain")
    if report["realized_roc_auc"] is not None:
        metrics["realized_roc_auc"] = report["realized_roc_auc"]
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, step=0)
    for key, value in {
        "churnops.model_version": scored["model_version"],
        "churnops.decision": decision["decision"],
        "churnops.reasons": "; ".join(decision["reasons"])[:4000],
        **(context or {}),
    }.items():
        client.set_tag(run_id, key, value)
    client.log_artifact(run_id, str(json_path))
    if html_path is not None:
        client.log_artifact(run_id, str(html_path))
    client.set_terminated(run_id, "FINISHED")
    summary = {k: v for k, v in report.items() if k != "details"}
    return {**summary, "report": str(json_path), "html": html_path and str(html_path), "mlflow_run_id": run_id}


def run_monitoring(config: ChurnopsConfig, day: date) -> dict[str, Any]:
    """All monitoring steps for one day, in DAG order: what ``churnops monitor`` runs.

    The shards run one after another; the steps share the reference split and the model
    within the call; run as separate Airflow tasks they read them themselves.
    """
    with _shared_reads():
        scored = score_batch(config, day, check_batch(config, day))
        features = feature_drift_step(config, day, scored)
        prediction = prediction_drift_step(config, day, scored)
        performance = performance_step(config, day, scored)
        return report_step(config, day, scored, features, prediction, performance, {"churnops.dag_id": "cli"})
