"""The `exact_dedup` phase kind: one survivor per set of identical documents.

The key of a document is a 128-bit BLAKE2b digest of its text (or of its URL and text, `key: url_text`,
for Common Crawl, where the same page fetched twice is one document; a document without a URL falls back
to its text). Steps: hashes (per upstream shard, shuffled by digest to P partitions), groups (per
partition: equal digests form a group, the smallest node key survives, the others are written as
(node, root) to their shard's ordinal), results (per shard, as for MinHash). Equality is transitive, so
no components step is needed. One Python call per document computes its digest (not per shingle).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Literal

import numpy as np
import pyarrow as pa

from corpus.config import setting
from corpus.dedup.components import ASSIGN
from corpus.dedup.fuzzy import doc_priority
from corpus.dedup.layout import (PRIORITY_SHIFT, node_keys, ordinal_of, partition_items, peak_rss_mb,
                                 priority_of, read_shard, shard_items, shuffle_read, shuffle_write,
                                 write_table_atomic)
from corpus.dedup.results import NODES, ResultsWorker, nodes_path
from corpus.dedup.text import normalize
from corpus.io.files import join, write_json_atomic
from corpus.dedup.kind import PhaseKind

DIGESTS = pa.schema([("h1", pa.uint64()), ("h2", pa.uint64()), ("node", pa.int64())])


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExactDedupConfig:
    key: Literal["text", "url_text"] = setting("text", doc="what makes two documents the same")
    normalize: bool = setting(False, doc="hash the CCNet-normalized text instead of the exact bytes")
    partitions: int = setting(0, doc="shuffle partitions (0: one per upstream shard)", ge=0)
    priority: dict[str, int] | None = setting(None, doc="domain -> priority (lower survives; default 0)")
    reference: str | None = setting(None, doc="folder of this phase in an earlier job: its documents are kept")
    batch_rows: int = setting(8192, doc="documents per batch", unit="rows", ge=1)


def digests(texts: pa.Array, urls: pa.Array | None) -> tuple[np.ndarray, np.ndarray]:
    """(h1, h2) uint64 halves of the 128-bit digest of each document."""
    texts = texts.to_pylist()
    urls = urls.to_pylist() if urls is not None else [None] * len(texts)
    raw = bytearray()
    for text, url in zip(texts, urls):
        h = hashlib.blake2b(digest_size=16)
        if url:
            h.update(url.encode("utf-8", "surrogatepass") + b"\0")
        h.update((text or "").encode("utf-8", "surrogatepass"))
        raw += h.digest()
    both = np.frombuffer(bytes(raw), np.uint64).reshape(-1, 2) if raw else np.zeros((0, 2), np.uint64)
    return both[:, 0].copy(), both[:, 1].copy()


class HashWorker:
    def __init__(self, cfg: ExactDedupConfig, phase_dir: str, partitions: int):
        self.cfg, self.phase_dir, self.n = cfg, phase_dir, partitions

    def run(self, item, attempt: int) -> dict:
        cfg, row = self.cfg, 0
        h1s, h2s, id_chunks, node_chunks = [], [], [], []
        for domain, t in read_shard(item, ["id", "text", "url"] if cfg.key == "url_text" else ["id", "text"],
                                     cfg.batch_rows):
            n = t.num_rows
            nodes = node_keys(np.full(n, doc_priority(cfg, domain)), item.ordinal, np.arange(row, row + n))
            row += n
            text = normalize(t.column("text")) if cfg.normalize else t.column("text")
            url = t.column("url") if cfg.key == "url_text" and "url" in t.column_names else None
            h1, h2 = digests(text, url)
            h1s.append(h1), h2s.append(h2)
            id_chunks.extend(t.column("id").chunks)
            node_chunks.append(nodes)
        node = np.concatenate(node_chunks) if node_chunks else np.zeros(0, np.int64)
        write_table_atomic(nodes_path(self.phase_dir, item.key), pa.table(
            {"id": pa.chunked_array(id_chunks, pa.string()), "node": node}, schema=NODES))
        h1 = np.concatenate(h1s) if h1s else np.zeros(0, np.uint64)
        h2 = np.concatenate(h2s) if h2s else np.zeros(0, np.uint64)
        shuffle_write(join(self.phase_dir, "hashes", "out"), item.key,
                      pa.table({"h1": h1, "h2": h2, "node": node}, schema=DIGESTS),
                      (h1 % np.uint64(self.n)).astype(np.int64), self.n)
        return {"key": item.key, "rows_in": row, "peak_rss_mb": peak_rss_mb()}


class GroupWorker:
    def __init__(self, phase_dir: str, partitions: int, shards: int, reference: str | None):
        self.phase_dir, self.n, self.shards, self.reference = phase_dir, partitions, shards, reference

    def run(self, item, attempt: int) -> dict:
        t = shuffle_read(join(self.phase_dir, "hashes", "out"), item.ordinal, DIGESTS)
        if self.reference:
            r = shuffle_read(join(self.reference, "hashes", "out"), item.ordinal, DIGESTS)
            r = r.set_column(2, "node", pa.array(r.column("node").to_numpy() & np.int64((1 << PRIORITY_SHIFT) - 1)))
            t = pa.concat_tables([t, r])
        h1, h2, node = (t.column(c).to_numpy() for c in ("h1", "h2", "node"))
        order = np.lexsort((node, h2, h1))
        h1, h2, node = h1[order], h2[order], node[order]
        first = np.r_[True, (h1[1:] != h1[:-1]) | (h2[1:] != h2[:-1])] if len(h1) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        root = np.repeat(node[starts], np.diff(np.r_[starts, len(node)]))
        leaf = ~first & (priority_of(node) > 0)
        shuffle_write(join(self.phase_dir, "assign", "out"), item.key,
                      pa.table({"node": node[leaf], "root": root[leaf]}, schema=ASSIGN),
                      ordinal_of(node[leaf]), self.shards)
        return {"key": item.key, "rows_in": len(node), "duplicates": int(leaf.sum()), "peak_rss_mb": peak_rss_mb()}


def run_exact_dedup(cfg: ExactDedupConfig, ctx) -> dict:
    from corpus.io.files import read_json

    shards = shard_items(ctx)
    partitions = cfg.partitions or max(1, len(shards))
    if cfg.reference:
        partitions = read_json(join(cfg.reference, "params.json"))["partitions"]
    write_json_atomic(join(ctx.phase_dir, "params.json"), {"key": cfg.key, "normalize": cfg.normalize,
                                                          "partitions": partitions})
    q = ctx.run_on_actors("hashes", shards, functools.partial(HashWorker, cfg, ctx.phase_dir, partitions))
    if q:
        return {"quarantined": q}
    q = ctx.run_on_actors("groups", partition_items(partitions),
                          functools.partial(GroupWorker, ctx.phase_dir, partitions, len(shards), cfg.reference))
    if q:
        return {"quarantined": q}
    q = ctx.run_on_actors("results", shards, functools.partial(ResultsWorker, ctx.phase_dir,
                                                               join(ctx.phase_dir, "assign", "out")))
    entries = ctx.committed("results").values()
    return {"quarantined": q, "partitions": partitions, "documents": sum(e["rows_in"] for e in entries),
            "duplicates": sum(e["duplicates"] for e in entries)}


KIND = PhaseKind(name="exact_dedup", config=ExactDedupConfig, run=run_exact_dedup,
                 reads=lambda cfg: ("id", "text", "url") if cfg.key == "url_text" else ("id", "text"),
                 writes_for_stages=lambda cfg: ("exact_cluster_v1", "exact_duplicate_v1"))
