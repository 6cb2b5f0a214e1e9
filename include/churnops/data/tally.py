"""The row rules counted chunk by chunk: a :class:`Tally` per file, merged across shards, then judged.

A day too large to hold is validated while it is read for scoring: each chunk adds to the
tally (counts, ranges, id hashes, label values), tallies of consecutive shards merge exactly,
and :func:`tally_findings` turns the merged tally into the same findings a whole-frame check gives.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from churnops.config import ChurnopsConfig, Source
from churnops.data.findings import Finding, shape_findings
from churnops.data.storage import replaced_atomically, write_text_atomically
from churnops.data.values import as_text_series, blank_to_na, is_text, missing_mask

__all__ = ["Tally", "tally_findings"]


def tally_findings(
    tally: Tally,
    source: Source,
    config: ChurnopsConfig,
    chunks: Callable[[], Iterable[pd.DataFrame]],
    *,
    unique_ids: bool = True,
) -> list[Finding]:
    """The findings of a source from its :class:`Tally` (of every row, possibly merged from shards).

    Args:
        tally: the counts of every row of the source.
        source: the source the tally was gathered from.
        config: the dataset and its validation rules.
        chunks: reads the source again, only to name examples of repeated ids.
        unique_ids: judge the id rules (every row has an id, no id repeats). False for rows
            that may legitimately repeat a customer or have no id: the rows a service answered.

    Returns:
        The findings; empty when the source passes.
    """
    ds, rules = config.dataset, config.validation
    found = shape_findings(tally.columns, tally.rows, source, config)

    def fail(column: str | None, rule: str, message: str) -> None:
        found.append(Finding(source.name, column, rule, message))

    # shape_findings reports an untallied source (columns None) as not_empty.
    if tally.columns is None or any(f.rule == "not_empty" for f in found) or ds.id_column not in tally.columns:
        return found

    if tally.null_ids and unique_ids:
        fail(ds.id_column, "id_not_null", f"{tally.null_ids} rows have no id")
    hashes, counts = np.unique(np.concatenate(tally.id_hashes), return_counts=True)
    repeated = hashes[counts > 1]
    if len(repeated) and unique_ids:
        examples: set[str] = set()
        for chunk in chunks():
            ids, id_hashes = _id_hashes(chunk[ds.id_column])
            examples.update(map(str, ids[np.isin(id_hashes, repeated)]))
        fail(ds.id_column, "id_unique", f"{len(repeated)} ids repeat, e.g. {sorted(examples)[:5]}")

    for column in ds.feature_columns:
        if column not in tally.columns:
            continue
        limit = rules.null_fraction.get(column, rules.max_null_fraction)
        null_share = tally.nulls[column] / tally.rows
        if null_share > limit:
            fail(column, "max_null_fraction", f"{null_share:.2%} null, above the limit {limit:.2%}")
        if column in ds.numeric_features:
            found.extend(tally.numeric_findings(column, source, config))

    if tally.labels is not None:
        found.extend(_label_findings(tally.labels, tally.null_labels, source, config))
    return found


def _id_hashes(ids: pd.Series, missing: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    # (the non-missing ids, a 64-bit hash of each): missing as blank_to_na sees it (``missing``, its
    # mask, when known). Neither factorized nor hashed with categorize: that only pays off for
    # repeated values, and these are distinct.
    if missing is None:
        missing = missing_mask(ids, distinct=True)
    values = ids.to_numpy(dtype=object)[~missing] if is_text(ids) else ids[~missing].to_numpy()
    return values, pd.util.hash_array(values, categorize=False) if len(values) else np.empty(0, np.uint64)


def _mask(known: dict[str, np.ndarray], values: pd.Series, distinct: bool = False) -> np.ndarray:
    # The column's missing_mask: as known (for these very rows), else computed.
    mask = known.get(str(values.name))
    return mask if mask is not None and len(mask) == len(values) else missing_mask(values, distinct)


class Tally:
    """What the rules need of a source, added up chunk by chunk, and merged across shards.

    Shards of one file each gather a tally of their rows; merged in file order
    (:meth:`merge`) they give exactly the tally, and so the findings, of the whole file.

    Args:
        features: the feature columns (nulls counted).
        numeric: the numeric features among them (parsed, checked for infinities and ranges).
        ranges: allowed ranges by column (``validation.ranges``).
        id_column: the id column (ids hashed, missing ones counted).
        target: the target column (labels gathered, missing ones counted).
    """

    def __init__(
        self, features: list[str], numeric: list[str], ranges: dict, id_column: str = "id", target: str = ""
    ) -> None:
        self.features, self.numeric, self.ranges = features, set(numeric), ranges
        self.id_column, self.target = id_column, target
        self.columns: list[str] | None = None
        self.rows = self.null_ids = self.null_labels = 0
        self.id_hashes: list[np.ndarray] = [np.empty(0, np.uint64)]
        self.nulls: dict[str, int] = {}
        self.not_numbers: dict[str, int] = {}
        self.not_number_examples: dict[str, list[str]] = {}
        self.infinite: dict[str, int] = {}
        self.outside: dict[str, list[float]] = {}  # column: [count, first value outside]
        self.labels: set | None = None

    @classmethod
    def for_config(cls, config: ChurnopsConfig) -> Tally:
        """An empty tally for the config's dataset and rules."""
        ds = config.dataset
        return cls(ds.feature_columns, ds.numeric_features, config.validation.ranges, ds.id_column, ds.target)

    _COUNTS = ("nulls", "not_numbers", "infinite")

    def merge(self, later: Tally) -> Tally:
        """This tally followed by ``later`` (the next rows of the same file).

        Returns:
            This tally, updated in place.
        """
        self.columns = self.columns if self.columns is not None else later.columns
        self.rows += later.rows
        self.null_ids += later.null_ids
        self.null_labels += later.null_labels
        self.id_hashes = [*self.id_hashes, *later.id_hashes]
        for name in self._COUNTS:
            mine, theirs = getattr(self, name), getattr(later, name)
            setattr(self, name, {c: mine.get(c, 0) + theirs.get(c, 0) for c in {*mine, *theirs}})
        for column, examples in later.not_number_examples.items():
            self.not_number_examples[column] = sorted({*self.not_number_examples.get(column, []), *examples})[:5]
        for column, (count, first) in later.outside.items():
            mine = self.outside.setdefault(column, [0, math.nan])
            if count and not mine[0]:
                mine[1] = first  # the first in file order
            mine[0] += count
        if later.labels is not None:
            self.labels = (self.labels or set()) | later.labels
        return self

    def save(self, path: Path) -> Path:
        """Write ``path`` (JSON) and ``path`` + ``.ids.npy`` (the id hashes): for a task to pass on by path.

        Returns:
            ``path``.
        """
        with replaced_atomically(Path(f"{path}.ids.npy")) as temporary, open(temporary, "wb") as handle:
            np.save(handle, np.concatenate(self.id_hashes))  # to a handle: np.save would append ".npy" to a name
        payload = {
            "columns": self.columns,
            "rows": self.rows,
            "null_ids": self.null_ids,
            "null_labels": self.null_labels,
            "nulls": self.nulls,
            "not_numbers": self.not_numbers,
            "not_number_examples": self.not_number_examples,
            "infinite": self.infinite,
            "outside": self.outside,
            "labels": None if self.labels is None else sorted(self.labels),
        }
        write_text_atomically(path, json.dumps(payload))
        return path

    @classmethod
    def load(cls, path: Path, config: ChurnopsConfig) -> Tally:
        """The tally :meth:`save` wrote to ``path``, for the config's dataset and rules.

        Args:
            path: the JSON file (its id hashes beside it).
            config: the dataset and its validation rules.

        Returns:
            The tally as saved.
        """
        tally = cls.for_config(config)
        payload = json.loads(path.read_text(encoding="utf-8"))
        labels = payload.pop("labels")
        for name, value in payload.items():
            setattr(tally, name, value)
        tally.labels = None if labels is None else set(labels)
        tally.id_hashes = [np.load(f"{path}.ids.npy", allow_pickle=False)]
        return tally

    def add(self, chunk: pd.DataFrame, known: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Count the next chunk of raw rows (the first one also sets the file's columns).

        Args:
            chunk: the rows.
            known: :func:`~churnops.data.values.missing_mask` of some of its columns, when
                already known (e.g. by :func:`~churnops.data.sources.iter_source`), not computed again.

        Returns:
            :func:`~churnops.data.values.missing_mask` of the id and feature columns the chunk
            has, for :func:`~churnops.data.values.coerce_types` of the same chunk to reuse.
        """
        id_column, target = self.id_column, self.target
        if self.columns is None:
            self.columns = list(chunk.columns)
        masks: dict[str, np.ndarray] = {}
        if chunk.shape[1] == 0:
            return masks
        known = known or {}
        self.rows += len(chunk)
        if id_column in chunk.columns:
            masks[id_column] = _mask(known, chunk[id_column], distinct=True)
            ids, hashes = _id_hashes(chunk[id_column], masks[id_column])
            self.null_ids += len(chunk) - len(ids)
            self.id_hashes.append(hashes)
        for column in self.features:
            if column not in chunk.columns:
                continue
            values = chunk[column]
            # blank_to_na(values).isna(), without building that column
            missing = masks[column] = _mask(known, values)
            self.nulls[column] = self.nulls.get(column, 0) + int(missing.sum())
            if column in self.numeric:
                present = values.where(~missing, None) if is_text(values) and missing.any() else values  # blank_to_na
                self._add_numbers(column, present)
        if target in chunk.columns:
            text = as_text_series(blank_to_na(chunk[target], missing=_mask(known, chunk[target])))
            self.null_labels += int(text.isna().sum())
            self.labels = (self.labels or set()) | set(text.dropna().unique())
        return masks

    def _add_numbers(self, column: str, values: pd.Series) -> None:
        present = values.dropna()
        parsed = pd.to_numeric(present, errors="coerce")
        bad = present[parsed.isna()]
        self.not_numbers[column] = self.not_numbers.get(column, 0) + len(bad)
        if len(bad):  # the five smallest, as text, over all chunks
            examples = set(self.not_number_examples.get(column, [])) | set(map(str, bad.unique()))
            self.not_number_examples[column] = sorted(examples)[:5]
        parsed = parsed.dropna().astype("float64")
        self.infinite[column] = self.infinite.get(column, 0) + int(np.isinf(parsed).sum())
        bounds = self.ranges.get(column)
        if bounds is not None:
            finite = parsed[np.isfinite(parsed)]
            low = -math.inf if bounds.min is None else bounds.min
            high = math.inf if bounds.max is None else bounds.max
            outside = finite[(finite < low) | (finite > high)]
            tally = self.outside.setdefault(column, [0, math.nan])
            if len(outside) and not tally[0]:
                tally[1] = float(outside.iloc[0])  # the first in file order
            tally[0] += len(outside)

    def numeric_findings(self, column: str, source: Source, config: ChurnopsConfig) -> list[Finding]:
        """The findings of one numeric column: values that are not numbers, infinite, or out of range.

        Args:
            column: a numeric feature column.
            source: the source the tally was gathered from.
            config: the column's range (``validation.ranges``).

        Returns:
            The findings; empty when the column passes.
        """
        found = []
        if self.not_numbers.get(column):
            found.append(
                Finding(
                    source.name,
                    column,
                    "numeric_type",
                    f"{self.not_numbers[column]} values are not numbers, e.g. {self.not_number_examples[column]}",
                )
            )
        if self.infinite.get(column):
            found.append(Finding(source.name, column, "finite", f"{self.infinite[column]} values are infinite"))
        bounds = config.validation.ranges.get(column)
        count, first = self.outside.get(column, [0, math.nan])
        if bounds is not None and count:
            found.append(
                Finding(
                    source.name, column, "range", f"{count} values outside [{bounds.min}, {bounds.max}], e.g. {first:g}"
                )
            )
        return found


def _label_findings(values: set, null_labels: int, source: Source, config: ChurnopsConfig) -> list[Finding]:
    ds = config.dataset
    found = []
    if null_labels:
        found.append(Finding(source.name, ds.target, "label_not_null", f"{null_labels} rows have no label"))
    if ds.negative_label is not None:
        expected = [ds.positive_label, ds.negative_label]
        unexpected = values - set(expected)
    else:
        expected = [ds.positive_label, "<one other value>"]
        others = values - {ds.positive_label}
        unexpected = others if len(others) > 1 else set()
    if unexpected:
        found.append(
            Finding(
                source.name,
                ds.target,
                "label_values",
                f"unexpected labels {sorted(unexpected)[:5]}; expected {expected}",
            )
        )
    elif ds.positive_label not in values:
        message = f"no row has the positive label {ds.positive_label!r}"
        found.append(Finding(source.name, ds.target, "label_values", message))
    return found
