"""What every source reader provides, and the helpers that build document and reject tables.

A reader turns one shard (one input file, or a range of a big file) into a stream of `ReadBatch`es:
documents in the core schema plus the input it could not use, each with a reason. Readers never
raise on bad data: a corrupt archive, an undecodable line or a malformed record becomes a rejected
row (drop_stage "read") that keeps the source location and as much of the raw content as is safe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Callable, Iterator

import pyarrow as pa

from schemas.arrow import DOCUMENT_V1

# Raw content kept in a rejected row is cut here: enough to see what went wrong, and the source
# location (path#offset) points at the rest.
REJECT_TEXT_LIMIT = 1 << 20


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Shard:
    key: str
    """Stable name of the shard inside a phase: part files and ledger entries are named after it."""
    source: str
    """Reader name (jsonl, parquet, warc, ...)."""
    path: str
    """File path or URI."""
    relpath: str
    """Path relative to the input pattern's base: document ids use it, so they survive a moved corpus."""
    domain: str
    """Domain the input declares (readers of mixed inputs may override per document)."""
    size: int
    """Input bytes of this shard (a row-group shard: its own row groups' bytes), for stats and MB/s."""
    row_groups: tuple[int, ...] | None = None
    """For Parquet inputs split by row group: the row groups of this shard."""
    input_index: int = 0
    """Which of the job's inputs the shard comes from (its reader settings)."""
    parts: tuple[str, ...] = ()
    """For shards of a later phase: the previous phase's part files with this key (one per domain)."""

    @classmethod
    def of_phase(cls, phase_dir: str, key: str, parts: tuple[str, ...], size: int = 0) -> "Shard":
        """A shard of a later phase: the committed part files of `phase_dir` whose ledger key is `key`."""
        return cls(key=key, source="phase", path=phase_dir, relpath=key, domain="", size=size, parts=tuple(parts))

    def locations(self) -> tuple[str, ...]:
        """Where its documents are read from: the input, then the upstream part files if any."""
        return (self.path, *self.parts)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadBatch:
    documents: pa.Table
    """Rows in DOCUMENT_V1."""
    rejected: list[tuple[dict[str, Any], str]]
    """(document-like dict, reason) for input that could not become a document."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SourceSpec:
    name: str
    config: type
    read: Callable[[Shard, Any, int], Iterator[ReadBatch]]
    """read(shard, cfg, batch_rows) streams the shard with bounded memory."""
    split: Callable[[Shard, Any], list[Shard]] | None = None
    """Optional: split one file's shard into several (row-group ranges)."""
    folder_shards: bool = False
    """A folder matched by the input paths is one shard (a repository, a LaTeX project, a set of books),
    not walked into one shard per file."""


def document_id(source: str, relpath: str, offset: int | str) -> str:
    """Deterministic id from where the document came from: stable across reruns and machines."""
    return hashlib.blake2b(f"{source}\x00{relpath}\x00{offset}".encode(), digest_size=16).hexdigest()


class DocumentBuffer:
    """Collects documents and rejects of one shard and cuts them into ReadBatches of `batch_rows`."""

    def __init__(self, shard: Shard, batch_rows: int):
        self.shard = shard
        self.batch_rows = batch_rows
        self.columns: dict[str, list] = {name: [] for name in DOCUMENT_V1.names}
        self.rejected: list[tuple[dict[str, Any], str]] = []

    def add(self, offset: int | str, text: str, *, url: str | None = None, meta: dict | None = None,
            domain: str | None = None) -> None:
        c = self.columns
        c["id"].append(document_id(self.shard.source, self.shard.relpath, offset))
        c["domain"].append(domain or self.shard.domain)
        c["text"].append(text)
        c["url"].append(url)
        c["source"].append(f"{self.shard.relpath}#{offset}")
        c["meta"].append(json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str) if meta else None)

    def reject(self, offset: int | str, reason: str, raw: str | bytes = "", *, url: str | None = None,
               meta: dict | None = None) -> None:
        if isinstance(raw, bytes):
            raw = raw[:REJECT_TEXT_LIMIT].decode("utf-8", errors="replace")
        row = {"id": document_id(self.shard.source, self.shard.relpath, offset), "domain": self.shard.domain,
               "text": raw[:REJECT_TEXT_LIMIT], "url": url, "source": f"{self.shard.relpath}#{offset}",
               "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str) if meta else None}
        self.rejected.append((row, reason))

    def full(self) -> bool:
        return len(self.columns["id"]) + len(self.rejected) >= self.batch_rows

    def take(self) -> ReadBatch:
        batch = ReadBatch(pa.table(self.columns, schema=DOCUMENT_V1), self.rejected)
        self.columns = {name: [] for name in DOCUMENT_V1.names}
        self.rejected = []
        return batch
