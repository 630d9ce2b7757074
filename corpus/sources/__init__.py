"""Source readers: raw input -> document batches. `SOURCES` maps a job file's `source:` to its reader."""

from corpus.sources import arxiv, books, commoncrawl, github, jsonl, parquet, stackexchange, wikipedia
from corpus.sources.base import ReadBatch, Shard, SourceSpec

SOURCES: dict[str, SourceSpec] = {m.SPEC.name: m.SPEC for m in (commoncrawl, jsonl, parquet,
                                                        github, wikipedia, books, arxiv, stackexchange)}

__all__ = ["SOURCES", "SourceSpec", "Shard", "ReadBatch"]
