"""Checks on raw sources, and quarantine of what fails them.

Each check yields :class:`Finding` objects that name the source, the column and the
rule; any finding rejects the source. A rejected file is copied, untouched, into
``$CHURNOPS_HOME/quarantine/`` beside a ``reason.json``.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from churnops.config import ChurnopsConfig, Source
from churnops.data import (
    SourceReadError,
    as_text_series,
    blank_to_na,
    file_sha256,
    is_text,
    missing_mask,
    read_source,
    text_codes,
)
from churnops.errors import ChurnopsInputError

__all__ = ["DataValidationError", "Finding", "quarantine", "validate_frame", "validate_source"]


@dataclass(frozen=True)
class Finding:
    source: str
    column: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"source {self.source!r}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.rule}: {self.message}"


class DataValidationError(ChurnopsInputError):
    """Raised when a source breaks a rule; carries every finding and the quarantine folder."""

    def __init__(self, findings: list[Finding], quarantine_dir: Path | None = None) -> None:
        self.findings = findings
        self.quarantine_dir = quarantine_dir
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        where = f"; input quarantined in {quarantine_dir}" if quarantine_dir else ""
        super().__init__(f"validation failed: {findings[0]}{more}{where}")


def validate_frame(frame: pd.DataFrame, source: Source, config: ChurnopsConfig) -> list[Finding]:
    """All rule violations of one raw (untyped) source frame; empty when it passes."""
    ds, rules = config.dataset, config.validation
    found: list[Finding] = []

    def fail(column: str | None, rule: str, message: str) -> None:
        found.append(Finding(source.name, column, rule, message))

    if frame.shape[1] == 0 or len(frame) == 0:
        fail(None, "not_empty", "the file has no rows")
        return found
    if len(frame) < rules.min_rows:
        fail(None, "min_rows", f"{len(frame)} rows, fewer than the minimum {rules.min_rows}")

    required = [ds.id_column] + list(source.columns or [])
    missing = [c for c in required if c not in frame.columns]
    for column in missing:
        fail(column, "required_column", "column is missing")
    if ds.id_column in missing:
        return found

    null_ids, repeated = _id_checks(frame[ds.id_column])
    if null_ids:
        fail(ds.id_column, "id_not_null", f"{null_ids} rows have no id")
    if len(repeated):
        sample = sorted(map(str, repeated))[:5]
        fail(ds.id_column, "id_unique", f"{len(repeated)} ids repeat, e.g. {sample}")

    for column in ds.feature_columns:
        if column not in frame.columns:
            continue
        values = frame[column]
        missing = missing_mask(values)  # blank_to_na(values).isna(), without building that column
        limit = rules.null_fraction.get(column, rules.max_null_fraction)
        null_share = float(missing.mean())
        if null_share > limit:
            fail(column, "max_null_fraction", f"{null_share:.2%} null, above the limit {limit:.2%}")
        if column in ds.numeric_features:
            present = values.where(~missing, None) if is_text(values) else values  # = blank_to_na(values)
            found.extend(_numeric_findings(present, column, source, config))

    if ds.target in frame.columns:
        found.extend(_label_findings(frame[ds.target], source, config))
    return found


def _id_checks(ids: pd.Series) -> tuple[int, list]:
    """(rows without an id, the distinct ids found on more than one row) after blank_to_na."""
    if not is_text(ids):
        missing = ids.isna()
        repeated = ids[ids.duplicated(keep=False) & ~missing]
        return int(missing.sum()), list(repeated.unique())
    # One hash pass serves both checks: an id repeats when its factorize code occurs twice.
    codes, uniques, blank = text_codes(ids)
    missing = blank[codes]
    counts = np.bincount(codes[~missing], minlength=len(uniques))
    return int(missing.sum()), list(uniques[counts > 1])


def _numeric_findings(values: pd.Series, column: str, source: Source, config: ChurnopsConfig) -> list[Finding]:
    present = values.dropna()
    parsed = pd.to_numeric(present, errors="coerce")
    found = []
    bad = present[parsed.isna()]
    if len(bad):
        sample = sorted(map(str, bad.unique()))[:5]
        found.append(Finding(source.name, column, "numeric_type", f"{len(bad)} values are not numbers, e.g. {sample}"))
    parsed = parsed.dropna().astype("float64")
    infinite = int(np.isinf(parsed).sum())
    if infinite:
        found.append(Finding(source.name, column, "finite", f"{infinite} values are infinite"))
    bounds = config.validation.ranges.get(column)
    if bounds is not None:
        finite = parsed[np.isfinite(parsed)]
        low = -math.inf if bounds.min is None else bounds.min
        high = math.inf if bounds.max is None else bounds.max
        outside = finite[(finite < low) | (finite > high)]
        if len(outside):
            found.append(Finding(
                source.name, column, "range",
                f"{len(outside)} values outside [{bounds.min}, {bounds.max}], e.g. {outside.iloc[0]:g}",
            ))
    return found


def _label_findings(labels: pd.Series, source: Source, config: ChurnopsConfig) -> list[Finding]:
    ds = config.dataset
    text = as_text_series(blank_to_na(labels))
    found = []
    if text.isna().any():
        found.append(Finding(source.name, ds.target, "label_not_null", f"{int(text.isna().sum())} rows have no label"))
    values = set(text.dropna().unique())
    if ds.negative_label is not None:
        expected = [ds.positive_label, ds.negative_label]
        unexpected = values - set(expected)
    else:
        expected = [ds.positive_label, "<one other value>"]
        others = values - {ds.positive_label}
        unexpected = others if len(others) > 1 else set()
    if unexpected:
        found.append(Finding(
            source.name, ds.target, "label_values", f"unexpected labels {sorted(unexpected)[:5]}; expected {expected}"
        ))
    elif ds.positive_label not in values:
        message = f"no row has the positive label {ds.positive_label!r}"
        found.append(Finding(source.name, ds.target, "label_values", message))
    return found


def validate_source(source: Source, config: ChurnopsConfig) -> tuple[pd.DataFrame, list[Finding]]:
    """Read and check one source; an unreadable file is a finding, not a crash."""
    try:
        frame = read_source(source)
    except SourceReadError as exc:
        return pd.DataFrame(), [Finding(source.name, None, "readable", str(exc).split(": ", 1)[-1])]
    return frame, validate_frame(frame, source, config)


def quarantine(source: Source, findings: list[Finding], destination: Path, context: dict) -> Path:
    """Copy the offending file (bytes untouched) and a ``reason.json`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    path = Path(source.path)
    copied = None
    if path.is_file():
        copied = destination / path.name
        shutil.copyfile(path, copied)
    reason = {
        "source": source.name,
        "path": str(path),
        "sha256": file_sha256(path) if path.is_file() else None,
        "copy": str(copied) if copied else None,
        "findings": [asdict(f) for f in findings],
        **context,
    }
    (destination / "reason.json").write_text(json.dumps(reason, indent=2) + "\n", encoding="utf-8")
    return destination

