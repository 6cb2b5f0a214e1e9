"""What a check reports: a :class:`Finding` per broken rule, the error that carries them, and the
rules that need only a file's columns and row count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from churnops.config import ChurnopsConfig, Source
from churnops.errors import ChurnopsInputError

__all__ = ["DataValidationError", "Finding", "shape_findings"]


@dataclass(frozen=True)
class Finding:
    """One broken rule: where (source, column) and which rule, with a message for people.

    Attributes:
        source: the source's name (``*`` for a rule about all sources together).
        column: the column concerned, or None for a rule about the whole file.
        rule: the rule's name, e.g. ``max_null_fraction``.
        message: what was found.
    """

    source: str
    column: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"source {self.source!r}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.rule}: {self.message}"


class DataValidationError(ChurnopsInputError):
    """Raised when a source breaks a rule; carries every finding and the quarantine folder.

    Args:
        findings: every broken rule (at least one); the message names the first.
        quarantine_dir: where the rejected input was copied, if it was.
    """

    def __init__(self, findings: list[Finding], quarantine_dir: Path | None = None) -> None:
        self.findings = findings
        self.quarantine_dir = quarantine_dir
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        where = f"; input quarantined in {quarantine_dir}" if quarantine_dir else ""
        super().__init__(f"validation failed: {findings[0]}{more}{where}")


def shape_findings(columns: list[str] | None, rows: int, source: Source, config: ChurnopsConfig) -> list[Finding]:
    """The rules that need only a file's columns and row count: not empty, ``min_rows``, required columns.

    Args:
        columns: the file's columns (None or empty: no columns, an empty file).
        rows: the file's row count.
        source: the source, with the columns it must provide.
        config: the id column and ``validation.min_rows``.

    Returns:
        The findings; only ``not_empty`` for a file without columns or rows.
    """
    ds, rules = config.dataset, config.validation
    if not columns or rows == 0:
        return [Finding(source.name, None, "not_empty", "the file has no rows")]
    found = []
    if rows < rules.min_rows:
        found.append(Finding(source.name, None, "min_rows", f"{rows} rows, fewer than the minimum {rules.min_rows}"))
    required = [ds.id_column] + list(source.columns or [])
    found += [Finding(source.name, c, "required_column", "column is missing") for c in required if c not in columns]
    return found
