"""The dataset's sections: its sources and columns, the checks its files must pass, its derived features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from churnops.config.base import Strict


class Source(Strict):
    """One raw input table, joined to the others on ``dataset.id_column``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: Path
    """CSV or Parquet file; relative paths resolve against the config file's folder. It must be a
    regular file: a symbolic link, FIFO or device there is refused (folders on the way may be links)."""
    format: Literal["csv", "parquet"] | None = None
    """Defaults to the file extension."""
    columns: list[str] | None = None
    """Columns this source must provide (besides the id). Lets validation name the source."""

    @property
    def file_format(self) -> str:
        if self.format:
            return self.format
        return "parquet" if self.path.suffix.lower() in {".parquet", ".pq"} else "csv"


class DatasetConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    id_column: str
    target: str
    positive_label: str
    """Value of ``target`` meaning the positive class; compared after casting both to str."""
    negative_label: str | None = None
    """The other class; when omitted, any single other value is accepted."""
    sources: list[Source] = Field(min_length=1)
    numeric_features: list[str] = []
    categorical_features: list[str] = []

    @field_validator("positive_label", "negative_label", mode="before")
    @classmethod
    def _as_str(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @model_validator(mode="after")
    def _check_columns(self) -> DatasetConfig:
        features = self.numeric_features + self.categorical_features
        if not features:
            raise ValueError("declare at least one numeric or categorical feature")
        dupes = sorted({c for c in features if features.count(c) > 1})
        if dupes:
            raise ValueError(f"features declared twice: {dupes}")
        for special in (self.id_column, self.target):
            if special in features:
                raise ValueError(f"{special!r} cannot be both a feature and the id/target")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        return self

    @property
    def feature_columns(self) -> list[str]:
        return self.numeric_features + self.categorical_features


class Range(Strict):
    min: float | None = None
    max: float | None = None


class ValidationConfig(Strict):
    min_rows: int = Field(1, ge=1)
    """A source with fewer rows is rejected (an empty file always is)."""
    max_null_fraction: float = Field(0.05, ge=0, le=1)
    """Default limit on the share of nulls (blanks included) in a feature column."""
    null_fraction: dict[str, float] = {}
    """Per-column overrides of ``max_null_fraction``."""
    ranges: dict[str, Range] = {}
    """Allowed closed intervals of numeric columns; infinities are always rejected."""
    max_unmatched_fraction: float = Field(0.05, ge=0, le=1)
    """Merge fails when a source loses more than this share of its ids in the join."""
    max_file_bytes: int = Field(16 * 2**30, ge=1)
    """A raw file (batch, labels, training source) larger than this is rejected unread, and
    quarantined as a record without a copy. 16 GiB: a 10,000,000-row day is about 1.5 GB as CSV."""
    max_columns: int = Field(10_000, ge=1)
    """A file with more columns (CSV header, Parquet footer) is rejected before any row is parsed."""
    max_line_bytes: int = Field(8 * 2**20, ge=1)
    """A CSV file with a longer line (bytes, found by a streaming scan) is rejected before any row is parsed."""
    max_parquet_uncompressed_bytes: int = Field(32 * 2**30, ge=1)
    """A Parquet file whose row groups hold more bytes uncompressed (as its footer declares) is rejected
    before any row is decoded: a decompression bomb. 32 GiB: a 10,000,000-row day holds about 0.5 GB."""


class RatioFeature(Strict):
    kind: Literal["ratio"]
    name: str
    numerator: str
    denominator: str


class CountEqualFeature(Strict):
    kind: Literal["count_equal"]
    name: str
    columns: list[str] = Field(min_length=1)
    value: str


class BinsFeature(Strict):
    kind: Literal["bins"]
    name: str
    column: str
    edges: list[float] = Field(min_length=2)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ValueError("bin edges must be strictly increasing")
        return edges


DerivedFeature = Annotated[RatioFeature | CountEqualFeature | BinsFeature, Field(discriminator="kind")]


class FeaturesConfig(Strict):
    derived: list[DerivedFeature] = []
