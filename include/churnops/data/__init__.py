"""Raw data in and files out: reading and typing sources, validating them, and storing results.

- :mod:`~churnops.data.admission`: what may be read at all: only regular files (no link, FIFO or
  device), within the ``validation.max_*`` size limits, judged before any row is parsed.
- :mod:`~churnops.data.sources`: read CSV/Parquet sources (whole or in chunks), type them as
  the config declares, merge them on the id and assign the hash split;
  :mod:`~churnops.data.parquet` reads Parquet in row-exact chunks with cheap string conversion.
- :mod:`~churnops.data.values`: what a cell means: null tokens, text, the declared types.
- :mod:`~churnops.data.validation`: the rules a source or a day's batch must pass, as findings
  (:mod:`~churnops.data.findings`); :mod:`~churnops.data.tally` counts the row rules chunk by chunk.
- :mod:`~churnops.data.storage`: day partitions, atomic writers and the quarantine.
"""

from churnops.data.admission import (
    RECORD_ONLY_RULES,
    NotRegularFileError,
    admission_findings,
    file_kind,
    file_sha256,
    is_regular_file,
    open_regular,
)
from churnops.data.findings import DataValidationError, Finding, shape_findings
from churnops.data.sources import (
    SPLIT_COLUMN,
    SourceReadError,
    assign_split,
    csv_cut_short,
    iter_source,
    label_vector,
    merge_sources,
    open_source,
    read_source,
    sources_digest,
)
from churnops.data.storage import (
    atomic_parquet_writer,
    partition,
    quarantine,
    replaced_atomically,
    write_json,
    write_parquet,
    write_text_atomically,
)
from churnops.data.tally import Tally, tally_findings
from churnops.data.validation import (
    cut_short_findings,
    probe_source,
    validate_chunks,
    validate_frame,
    validate_source,
    validate_source_in_chunks,
)
from churnops.data.values import (
    NULL_TOKENS,
    as_text,
    as_text_series,
    blank_to_na,
    coerce_types,
    is_text,
    missing_mask,
    text_codes,
)

__all__ = [
    "NULL_TOKENS",
    "RECORD_ONLY_RULES",
    "SPLIT_COLUMN",
    "DataValidationError",
    "Finding",
    "NotRegularFileError",
    "SourceReadError",
    "Tally",
    "admission_findings",
    "as_text",
    "as_text_series",
    "assign_split",
    "atomic_parquet_writer",
    "blank_to_na",
    "coerce_types",
    "csv_cut_short",
    "cut_short_findings",
    "file_kind",
    "file_sha256",
    "is_regular_file",
    "is_text",
    "iter_source",
    "label_vector",
    "merge_sources",
    "open_source",
    "missing_mask",
    "open_regular",
    "partition",
    "probe_source",
    "quarantine",
    "read_source",
    "replaced_atomically",
    "shape_findings",
    "sources_digest",
    "tally_findings",
    "text_codes",
    "validate_chunks",
    "validate_frame",
    "validate_source",
    "validate_source_in_chunks",
    "write_json",
    "write_parquet",
    "write_text_atomically",
]
