"""Outcomes: matured labels joined to the scores given for them, and the realized performance.

Labels of day D's customers arrive ``label_delay_days`` later; a monitored day judges the
labels matured within its trailing ``label_window_days`` window.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from churnops.config import ChurnopsConfig, MonitoringConfig, Source
from churnops.data import coerce_types, iter_source, label_vector, open_source, partition
from churnops.modeling import threshold_metrics
from churnops.monitoring.drift import as_scores
from churnops.monitoring.intake import accepted_files, batch_files
from churnops.monitoring.scoring import SCORE_COLUMN
from churnops.monitoring.verdicts import judged_identity, reading

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["DECIMALS", "matured_outcomes", "realized_performance", "roc_auc"]


DECIMALS = 12
"""ROC-AUC values and drops are rounded to this many decimals before being compared with thresholds.

Without it, 0.80 − 0.75 evaluates to 0.05000000000000004 and a drop exactly equal to
``max_roc_auc_drop`` would raise an alarm; twelve decimals are far below any meaningful
difference in ROC-AUC yet far above float64 rounding error.
"""


def matured_outcomes(config: ChurnopsConfig, days: list[date]) -> pd.DataFrame:
    """Labels joined to the scores predicted for them, over ``days`` (days missing either are skipped).

    An inner join on the id, day by day and chunk by chunk. A day's one label file that lists
    the scored ids in their order is paired row for row (compared in Arrow, :func:`_aligned_scores`);
    otherwise the day's predictions are held as 64-bit id hashes and scores (16 bytes a row,
    never the ids themselves), sorted by hash, and each chunk of its label files looks its ids
    up there (``np.searchsorted``). Both pair the same rows. Only label
    files that pass validation are used (:func:`accepted_files`: a file with a label outside
    the two classes is quarantined, never read as a negative), each read as the file its verdict
    judged; a label day whose ``monitoring.label_arrival_marker`` is configured and absent has
    no labels yet. The result is compact, 10 bytes a matched label (an int8 label, a float64
    score, the label day as an int8 categorical code), whatever the size of the days.

    Args:
        config: the dataset's id and target, ``monitoring.chunk_rows``.
        days: the label days (e.g. :func:`~churnops.days.matured_days`).

    Returns:
        One row per matched label, in label-file order: ``label`` (0/1, int8), ``score`` and
        ``label_date`` (a categorical of ``days``); ``attrs`` holds ``rejected_label_files``
        and ``labels_without_prediction`` (labels of ids that were never scored, left out).
    """
    import pandas as pd

    ds, size = config.dataset, config.monitoring.chunk_rows
    labels: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    rejected, unmatched = [], 0
    known: dict[str, np.ndarray] = {}  # the reader's missing masks of each chunk
    for code, label_day in enumerate(days):
        predictions = partition("predictions", label_day) / "predictions.parquet"
        if not batch_files(partition("labels", label_day)) or not predictions.is_file():
            continue
        label_files, refused = accepted_files(config, "labels", label_day)
        rejected += refused
        keys = day_scores = None
        for path in label_files:
            with reading(path, judged_identity("labels", label_day, path), judged_afresh=True):
                source = Source(name=path.stem, path=path)
                aligned = _aligned_scores(source, predictions, ds.id_column, size) if len(label_files) == 1 else None
                if aligned is not None:  # the file lists the scored ids in their order: no lookup needed
                    position = 0
                    for chunk in iter_source(source, size, [ds.target], masks=known):
                        labels.append(label_vector(coerce_types(chunk, ds, known), config).astype(np.int8))
                        scores.append(aligned[position : position + len(chunk)])
                        codes.append(np.full(len(chunk), code, dtype=_code_dtype(len(days))))
                        position += len(chunk)
                    continue
                if keys is None or day_scores is None:
                    keys, day_scores = _scores_by_id_hash(predictions, ds.id_column, size)
                columns = [ds.id_column, ds.target]
                for chunk in iter_source(source, size, columns, unique_text=(ds.id_column,), masks=known):
                    chunk = coerce_types(chunk, ds, known)
                    chunk = chunk[chunk[ds.id_column].notna()]
                    hashes = _id_hashes(chunk[ds.id_column])
                    at = _positions(keys, hashes)
                    found = keys[at] == hashes if len(keys) else np.zeros(len(hashes), dtype=bool)
                    unmatched += int(len(chunk) - np.count_nonzero(found))
                    labels.append(label_vector(chunk[found], config).astype(np.int8))
                    scores.append(day_scores[at[found]])
                    codes.append(np.full(len(labels[-1]), code, dtype=_code_dtype(len(days))))
        del keys, day_scores
    outcomes = pd.DataFrame(
        {
            "label": _concatenated(labels, np.int8),
            SCORE_COLUMN: _concatenated(scores, np.float64),
            "label_date": pd.Categorical.from_codes(
                _concatenated(codes, _code_dtype(len(days))), categories=[d.isoformat() for d in days]
            ),
        },
        copy=False,
    )
    outcomes.attrs.update(rejected_label_files=rejected, labels_without_prediction=unmatched)
    return outcomes


def _code_dtype(categories: int) -> type[np.signedinteger]:
    return np.int8 if categories <= np.iinfo(np.int8).max else np.int32


def _concatenated(parts: list[np.ndarray], dtype: type[np.generic]) -> np.ndarray:
    # One column at a time, each part released as soon as it is copied, so the peak is the
    # column plus its parts, never every column twice.
    out = np.empty(sum(len(p) for p in parts), dtype=dtype)
    position = 0
    while parts:
        part = parts.pop(0)
        out[position : position + len(part)] = part
        position += len(part)
    return out


def _aligned_scores(source: Source, predictions: Path, id_column: str, chunk_rows: int) -> np.ndarray | None:
    """The day's scores in row order when the label file holds exactly the predictions' ids in their order, else None.

    Compared in Arrow a chunk at a time (no Python strings, no hashes): every id present, as
    text, equal row for row, and as many rows. The join then pairs row ``i`` with score ``i``,
    what the hash lookup gives too: the file passed validation, so its ids, hence the
    predictions', are distinct. Only a Parquet label file is compared (None for CSV).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if source.file_format != "parquet":
        return None
    with open_source(source) as raw:
        labelled, scored = pq.ParquetFile(raw), pq.ParquetFile(predictions)
        if (
            labelled.metadata.num_rows != scored.metadata.num_rows
            or id_column not in labelled.schema_arrow.names
            or labelled.schema_arrow.field(id_column).type != pa.string()
            or scored.schema_arrow.field(id_column).type != pa.string()
        ):
            return None
        parts = []
        pairs = zip(
            _arrow_chunks(labelled, [id_column], chunk_rows),
            _arrow_chunks(scored, [id_column, SCORE_COLUMN], chunk_rows),
            strict=True,
        )
        for label_chunk, score_chunk in pairs:
            ids, scored_ids = label_chunk.column(0), score_chunk.column(0)
            if ids.null_count or scored_ids.null_count or not pc.all(pc.equal(ids, scored_ids)).as_py():
                return None
            parts.append(score_chunk.column(1).to_numpy().astype(np.float64, copy=False))
    return _concatenated(parts, np.float64)


def _arrow_chunks(file: pq.ParquetFile, columns: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    """A Parquet file's columns in chunks of exactly ``chunk_rows`` rows (the last shorter), by row groups."""
    import pyarrow as pa

    pending: pa.Table | None = None
    for group in range(file.num_row_groups):
        table = file.read_row_group(group, columns=columns)
        pending = table if pending is None else pa.concat_tables([pending, table])
        while pending.num_rows >= chunk_rows:
            yield pending.slice(0, chunk_rows)
            pending = pending.slice(chunk_rows)
    if pending is not None and pending.num_rows:
        yield pending


def _scores_by_id_hash(predictions: Path, id_column: str, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A day's predictions as id hashes in increasing order and the score of each (first of equal ids)."""
    key_parts, score_parts = [], []
    source = Source(name="predictions", path=predictions)
    for chunk in iter_source(source, chunk_rows, [id_column, SCORE_COLUMN], unique_text=(id_column,)):
        key_parts.append(_id_hashes(chunk[id_column]))
        score_parts.append(chunk[SCORE_COLUMN].to_numpy(dtype="float64"))
    keys, scores = _concatenated(key_parts, np.uint64), _concatenated(score_parts, np.float64)
    # A stable order keeps the first of repeated ids first, where searchsorted finds it.
    order = np.argsort(keys, kind="stable")
    keys.sort()  # equal hashes are interchangeable: the same array as keys[order], without a copy
    return keys, scores[order]


def _positions(keys: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Where each hash is (or would be) in the sorted ``keys``, clipped to a valid index."""
    # Looked up in increasing order, the binary searches walk ``keys`` forward (cache-friendly):
    # several times faster than in the label file's order.
    order = np.argsort(hashes)
    at = np.empty(len(hashes), dtype=np.intp)
    at[order] = np.searchsorted(keys, hashes[order])
    return np.minimum(at, max(len(keys) - 1, 0))


def _id_hashes(ids: pd.Series) -> np.ndarray:
    import pandas as pd

    # Ids are text once typed (coerce_types) and as written in predictions; a 64-bit hash stands
    # in for each. They are (nearly) all distinct: hashed directly, not factorized first.
    return pd.util.hash_array(ids.to_numpy(dtype=object), categorize=False)


def realized_performance(
    y_true: ArrayLike,
    scores: ArrayLike,
    reference_roc_auc: float | None,
    monitoring: MonitoringConfig,
    threshold: float = 0.5,
) -> dict:
    """ROC-AUC on matured labels, compared with the floor and with the champion's holdout ROC-AUC,
    and precision, recall and F1 at the scoring version's decision threshold.

    ROC-AUC values, the drop and the threshold metrics are rounded to :data:`DECIMALS` decimals
    before comparison, so a drop exactly equal to ``max_roc_auc_drop`` (in decimal) does not
    raise an alarm, nor a precision exactly at ``min_precision``.

    Args:
        y_true: matured 0/1 labels.
        scores: the model's positive-class probabilities for the same rows.
        reference_roc_auc: the champion's holdout ROC-AUC, or None when unknown.
        monitoring: ``min_labels``, ``min_roc_auc``, ``max_roc_auc_drop`` and the optional
            ``min_precision``, ``min_recall`` and ``min_f1``.
        threshold: the scoring version's decision threshold (a row scored at least this is
            predicted positive).

    Returns:
        ``{"n_labels", "realized_roc_auc", "reference_roc_auc", "drop", "threshold", "precision",
        "recall", "f1", "confusion", "alarm", "reasons"}``. ``realized_roc_auc`` and the metrics at
        the threshold are None with fewer than ``min_labels`` labels or a single class
        (``confusion``, ``{"tn", "fp", "fn", "tp"}``, is then None too); ``drop`` is reference −
        realized, None when either is None. ``alarm`` is realized < ``min_roc_auc``, drop >
        ``max_roc_auc_drop``, or a metric at the threshold below its configured minimum (False
        when not judged). ``reasons`` explains the alarm, or why performance was not judged;
        empty otherwise.
    """

    labels = np.asarray(y_true).ravel()
    probabilities = as_scores(scores)
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} scores")
    # Compact (one byte a label, the scores as given): a window of millions of labels is
    # judged without int64 copies or scikit-learn's per-call validation passes.
    positive = labels.astype(bool) if labels.dtype.kind in "biu" else labels.astype("int64").astype(bool)
    n_labels, n_positive = len(labels), int(np.count_nonzero(positive))
    reasons: list[str] = []
    realized: float | None = None
    at_threshold: dict | None = None
    if n_labels < monitoring.min_labels:
        reasons.append(
            f"performance not judged: {n_labels} matured labels, fewer than min_labels {monitoring.min_labels}"
        )
    elif n_positive in (0, n_labels):
        reasons.append(
            f"performance not judged: all {n_labels} matured labels are {int(n_positive > 0)}, ROC-AUC undefined"
        )
    else:
        realized = round(roc_auc(positive, probabilities), DECIMALS)
        at_threshold = threshold_metrics(positive, probabilities, threshold)
    business = {
        k: None if at_threshold is None else round(at_threshold[k], DECIMALS) for k in ("precision", "recall", "f1")
    }

    reference = None if reference_roc_auc is None else float(reference_roc_auc)
    drop = None if realized is None or reference is None else round(reference - realized, DECIMALS)
    alarm = False
    if realized is not None:
        if realized < monitoring.min_roc_auc:
            alarm = True
            reasons.append(
                f"realized ROC-AUC {realized:.4f} is below min_roc_auc {monitoring.min_roc_auc:g} ({n_labels} labels)"
            )
        if drop is not None and drop > monitoring.max_roc_auc_drop:
            alarm = True
            reasons.append(
                f"realized ROC-AUC {realized:.4f} is {drop:.4f} below the champion's {reference:.4f}"
                f" (max_roc_auc_drop {monitoring.max_roc_auc_drop:g})"
            )
        for name, value in business.items():
            floor = getattr(monitoring, f"min_{name}")
            if floor is not None and value is not None and value < floor:
                alarm = True
                reasons.append(
                    f"realized {name} {value:.4f} at threshold {threshold:.4f} is below min_{name} {floor:g}"
                    f" ({n_labels} labels)"
                )
    return {
        "n_labels": n_labels,
        "realized_roc_auc": realized,
        "reference_roc_auc": reference,
        "drop": drop,
        "threshold": float(threshold),
        **business,
        "confusion": None if at_threshold is None else {k: at_threshold[k] for k in ("tn", "fp", "fn", "tp")},
        "alarm": alarm,
        "reasons": reasons,
    }


ROC_AUC_BLOCK = 1_000_000
"""Positives ranked against the negatives per block in :func:`roc_auc` (bounds its temporary arrays)."""


def roc_auc(positive: ArrayLike, scores: ArrayLike) -> float:
    """ROC-AUC, exactly, as the Mann–Whitney statistic: P(positive outscores negative) + ½ P(tie).

    The same value as :func:`sklearn.metrics.roc_auc_score` (the area under the ROC curve
    through every distinct score, ties on the diagonal), computed from the two classes' sorted
    scores: for each positive, the negatives below it (``np.searchsorted``) count 1 and the
    tied ones ½. The counts are integers and the one division is the only rounding. Memory is
    the scores once more (the two sorted classes) plus a bounded block, never scikit-learn's
    several per-row arrays.

    Args:
        positive: True (or 1) for the positive rows.
        scores: each row's score.

    Returns:
        The ROC-AUC.

    Raises:
        ValueError: a class is empty, the lengths differ, or a score is not finite.
    """
    mask = np.asarray(positive).astype(bool, copy=False).ravel()
    values = np.asarray(scores, dtype="float64").ravel()
    if len(mask) != len(values):
        raise ValueError(f"{len(mask)} labels but {len(values)} scores")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite to rank them")
    positives, negatives = np.sort(values[mask]), np.sort(values[~mask])
    if not len(positives) or not len(negatives):
        raise ValueError("ROC-AUC needs both classes")
    # twice the Mann-Whitney U: below counts 2, tied counts 1 (= below + at-or-below)
    doubled = 0
    for start in range(0, len(positives), ROC_AUC_BLOCK):
        block = positives[start : start + ROC_AUC_BLOCK]
        doubled += int(np.searchsorted(negatives, block, side="left").sum(dtype=np.int64))
        doubled += int(np.searchsorted(negatives, block, side="right").sum(dtype=np.int64))
    return doubled / (2 * len(positives) * len(negatives))
