"""The training sources' checks: validate every raw source, quarantine the failing ones, raise."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from churnops.config import ChurnopsConfig
from churnops.data import write_json
from churnops.tracking import RunContext
from churnops.training.run import run_dir_for

__all__ = ["check_sources", "quarantine_dir", "reject"]


def quarantine_dir(config: ChurnopsConfig, ctx: RunContext) -> Path:
    """The run's quarantine folder: :func:`~churnops.training.run.run_dir_for` of kind ``quarantine``."""
    return run_dir_for(config, ctx, "quarantine")


def reject(config: ChurnopsConfig, ctx: RunContext, findings: list, step: str) -> NoReturn:
    """Quarantine every source named by a finding (all of them for dataset-wide ones), then raise.

    Args:
        config: the dataset's sources.
        ctx: the pipeline run (names the quarantine folder, tagged in each ``reason.json``).
        findings: the broken rules (source ``*`` for a rule about all sources).
        step: the step that found them, recorded in each ``reason.json``.

    Raises:
        DataValidationError: always, with every finding and the quarantine folder.
    """
    from churnops.data import DataValidationError, quarantine

    folder = quarantine_dir(config, ctx)
    named = {f.source for f in findings}
    for source in config.dataset.sources:
        if source.name in named or "*" in named:
            own = [f for f in findings if f.source in {source.name, "*"}]
            quarantine(
                source,
                own,
                folder / source.name,
                {"step": step, **ctx.tags(), "message": str(DataValidationError(own))},
            )
    raise DataValidationError(findings, folder)


def check_sources(config: ChurnopsConfig, ctx: RunContext, out_dir: Path) -> dict[str, Any]:
    """Validate every raw source and write ``validation_report.json``; no MLflow involved.

    Args:
        config: the dataset, its sources and validation rules.
        ctx: the pipeline run (names the quarantine folder).
        out_dir: where the report is written.

    Returns:
        ``{"validation_report" (its path), "sources_digest", "rows" (by source)}``.

    Raises:
        DataValidationError: after quarantining the failing sources.
    """
    from churnops.data import RECORD_ONLY_RULES, Finding, file_sha256, is_regular_file, sources_digest, validate_source

    ds = config.dataset
    report: dict[str, Any] = {}
    findings: list[Finding] = []
    provided: set[str] = set()
    for source in ds.sources:
        frame, found = validate_source(source, config)
        findings += found
        provided |= set(frame.columns)
        # Not what a link points at, nor a pass over a file too big to be read.
        hashable = is_regular_file(source.path) and not any(f.rule in RECORD_ONLY_RULES for f in found)
        report[source.name] = {
            "path": str(source.path),
            "sha256": file_sha256(source.path) if hashable else None,
            "rows": int(len(frame)),
            "columns": list(map(str, frame.columns)),
            "findings": [asdict(f) for f in found],
            "passed": not found,
        }
    if not findings:
        for column in [*ds.feature_columns, ds.target]:
            if column not in provided:
                findings.append(Finding("*", column, "required_column", "no source provides this column"))
    path = write_json(out_dir / "validation_report.json", {"passed": not findings, "sources": report})
    if findings:
        reject(config, ctx, findings, "validate")
    return {
        "validation_report": str(path),
        "sources_digest": sources_digest(config),
        "rows": {name: r["rows"] for name, r in report.items()},
    }
