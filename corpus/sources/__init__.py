"""Source readers: raw input -> document batches. `SOURCES` maps a job file's `source:` to its reader."""

from corpus.sources import commoncrawl, jsonl, parquet
from corpus.sources.base import ReadBatch, Shard, SourceSpec

SOURCES: dict[str, SourceSpec] = {m.SPEC.name: m.SPEC for m in (commoncrawl, jsonl, parquet)}

__all__ = ["SOURCES", "SourceSpec", "Shard", "ReadBatch"]
