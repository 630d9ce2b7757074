"""Arrow schemas of the Parquet files refinery writes.

Bump the version suffix whenever a column changes meaning or type; readers check the version in the
file's key-value metadata (`refinery.schema`).

`domain` is a Hive partition key (`domain=github/part-00007.parquet`): it lives in the folder name,
not inside the files, as Spark writes it. pandas and pyarrow refuse to merge a partition key that
also appears as a column, and DuckDB, Polars, Spark and HF datasets all read the key from the path.
"""

import pyarrow as pa

SCHEMA_METADATA_KEY = b"refinery.schema"

DOMAINS = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")

# The core columns of a document, in memory (with domain) ...
DOCUMENT_V1 = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # deterministic: source + input path + offset
        pa.field("domain", pa.string(), nullable=False),  # one of DOMAINS
        pa.field("text", pa.string(), nullable=False),
        pa.field("url", pa.string()),  # web address where the source has one
        pa.field("source", pa.string(), nullable=False),  # input location: path#offset or path!member
        pa.field("meta", pa.string()),  # JSON object of source-specific extras (license, repo, score, title)
    ],
    metadata={SCHEMA_METADATA_KEY: b"document_v1"},
)

# ... and on disk, where domain is the partition folder.
DOCUMENT_FILE_V1 = DOCUMENT_V1.remove(DOCUMENT_V1.get_field_index("domain")).with_metadata(
    {SCHEMA_METADATA_KEY: b"document_v1"}
)

REJECT_COLUMNS_V1 = [
    pa.field("drop_phase", pa.string(), nullable=False),
    pa.field("drop_stage", pa.string(), nullable=False),
    pa.field("drop_reason", pa.string(), nullable=False),
]

# A rejected document keeps every column it had when it was dropped, plus why and where.
REJECTED_V1 = pa.schema(list(DOCUMENT_V1) + REJECT_COLUMNS_V1, metadata={SCHEMA_METADATA_KEY: b"rejected_v1"})
REJECTED_FILE_V1 = pa.schema(list(DOCUMENT_FILE_V1) + REJECT_COLUMNS_V1,
                             metadata={SCHEMA_METADATA_KEY: b"rejected_v1"})

# One row per (phase, shard, stage, counter): the long format that DuckDB and pandas pivot easily.
STATS_V1 = pa.schema(
    [
        pa.field("phase", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("counter", pa.string(), nullable=False),  # rows_in, rows_out, bytes_in, seconds, dropped.<reason>
        pa.field("value", pa.float64(), nullable=False),
    ],
    metadata={SCHEMA_METADATA_KEY: b"stats_v1"},
)

CORE_COLUMNS = tuple(DOCUMENT_V1.names)


def versioned_column_ok(name: str) -> bool:
    """Scoring stages may only add columns named `<what>_v<N>`, so a model change shows in the name."""
    head, _, version = name.rpartition("_v")
    return bool(head) and version.isdigit()
