"""The check of candidate pairs (on by default, `verify: true`): the exact Jaccard of their shingle sets.

LSH candidates include pairs below the threshold (the S-curve's false positives, many of them as the
default bands are chosen for recall at the threshold); the minhash_dedup phase links only pairs whose
exact Jaccard reaches the threshold. Two steps, so that every upstream shard's texts are read once and
every candidate document is shingled once, however many shards its pairs span:

1. `ShingleSetWorker` (per upstream shard): the candidate pairs with an end in this shard (the buckets
   step writes a pair to both its documents' shards), the shard's texts read once, the shingle set
   (sorted, without repeats) of each of its documents in a pair, shuffled to the shard that checks that
   pair: the shard of its member (larger node key), once per such shard.
2. `VerifyWorker` (per upstream shard): the pairs whose member lies here, both sets at hand from step 1,
   linked when their Jaccard reaches the threshold.
A shard reading the texts of every shard holding a root of its pairs (the first version) read
shards^2 texts on a big corpus; here the extra cost is the sets' bytes (8 per shingle of a candidate
document, per checking shard). Pairs with a reference-corpus root are kept unchecked (the reference's
texts are not at hand).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from corpus.dedup.components import EDGES, unique_pairs, write_both_ways
from corpus.dedup.layout import ROW_MASK, ordinal_of, peak_rss_mb, priority_of, read_shard, shuffle_read, shuffle_write
from corpus.dedup.minhash import shingle
from corpus.io.files import join

SETS = pa.schema([("node", pa.int64()), ("shingles", pa.large_binary())])
"""A candidate document's shingle set (sorted uint64 hashes, no repeats, as little-endian bytes), at the shard
checking its pairs. One binary value per set: as a Parquet list, each of the millions of hashes carried
its own repetition and definition levels, and writing and reading them cost 3x more."""


def to_blobs(sets: list[np.ndarray]) -> pa.Array:
    """uint64 arrays -> one large_binary value each (their bytes, without a copy per value)."""
    sizes = np.array([len(x) for x in sets], np.int64) * 8
    offsets = np.zeros(len(sets) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    data = np.concatenate(sets).astype("<u8", copy=False) if sets else np.zeros(0, "<u8")
    return pa.Array.from_buffers(pa.large_binary(), len(sets), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def from_blobs(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A large_binary column of to_blobs -> (offsets into values, in hashes; values uint64), no copy."""
    blobs = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not len(blobs):
        return np.zeros(1, np.int64), np.zeros(0, np.uint64)
    _, offsets, data = blobs.buffers()
    offsets = np.frombuffer(offsets, np.int64)[blobs.offset: blobs.offset + len(blobs) + 1]
    return offsets // 8, np.frombuffer(data, "<u8")


def sorted_set(hashes: np.ndarray) -> np.ndarray:
    """A document's shingle hashes sorted, without repeats (a sort and a compare: np.unique's hash table
    cost 3x more on these)."""
    h = np.sort(hashes)
    if not len(h):
        return h
    first = np.empty(len(h), bool)  # not np.r_: its indexing machinery cost more than the compare here
    first[0] = True
    np.not_equal(h[1:], h[:-1], out=first[1:])
    return h[first]


def jaccard_of_sets(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted arrays without repeats (non-empty)."""
    if len(a) > len(b):
        a, b = b, a
    at = np.searchsorted(b, a)
    inter = int(np.count_nonzero(b[np.minimum(at, len(b) - 1)] == a))
    return inter / (len(a) + len(b) - inter)


def candidate_pairs(phase_dir: str, ordinal: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique candidate pairs (root u < member v) with an end in shard `ordinal`."""
    t = shuffle_read(join(phase_dir, "buckets", "candidates"), ordinal, EDGES)
    return unique_pairs(t.column("u").to_numpy(), t.column("v").to_numpy())


class ShingleSetWorker:
    """Shard s: the shingle sets of its documents in candidate pairs -> the checking shards (step 1)."""

    def __init__(self, cfg, phase_dir: str, shards: int):
        self.cfg, self.phase_dir, self.shards = cfg, phase_dir, shards

    def _sets(self, item, rows: np.ndarray) -> list[np.ndarray]:
        """Shingle sets of the shard's rows `rows` (sorted, unique), in that order: one read of the shard,
        one shingling call per batch for the rows wanted in it."""
        sets, start = [], 0
        for _, t in read_shard(item, ["text"], self.cfg.batch_rows):
            lo, hi = np.searchsorted(rows, [start, start + t.num_rows])
            if hi > lo:
                sh = shingle(t.column("text").take(pa.array(rows[lo:hi] - start)), ngram=self.cfg.ngram,
                             mode=self.cfg.mode)
                sets += [sorted_set(sh.hashes[sh.offsets[k]:sh.offsets[k + 1]]) for k in range(hi - lo)]
            start += t.num_rows
        assert len(sets) == len(rows), f"shard {item.key}: {len(rows) - len(sets)} candidate rows past its end"
        return sets

    def run(self, item, attempt: int) -> dict:
        u, v = candidate_pairs(self.phase_dir, item.ordinal)
        checked = priority_of(u) > 0  # a reference root's pair is kept unchecked: no set needed
        node = np.concatenate([u[checked], v[checked]])
        dest = np.tile(ordinal_of(v[checked]), 2)  # both ends go to the member's shard
        here = ordinal_of(node) == item.ordinal
        # (dest, node) once each, grouped by dest: the shuffle then needs no reordering of the sets
        dest, node = np.unique(np.stack([dest[here], node[here]]), axis=1)
        docs, at = np.unique(node, return_inverse=True)
        sets = self._sets(item, docs & ROW_MASK)
        table = pa.table({"node": node, "shingles": to_blobs([sets[i] for i in at])}, schema=SETS)
        # sorted random 64-bit hashes barely compress (zstd: 4% smaller, 3x the write and read time)
        shuffle_write(join(self.phase_dir, "shingles", "out"), item.key, table, dest, self.shards, compression="none")
        return {"key": item.key, "rows_in": len(u), "documents": len(docs), "set_rows": len(node),
                "shingles": sum(len(sets[i]) for i in at), "peak_rss_mb": peak_rss_mb()}


class VerifyWorker:
    """Shard s: the candidate pairs whose member lies here, linked when their exact Jaccard reaches the
    threshold (step 2); both documents' sets come from step 1."""

    def __init__(self, cfg, phase_dir: str, partitions: int):
        self.cfg, self.phase_dir, self.n = cfg, phase_dir, partitions

    def run(self, item, attempt: int) -> dict:
        u, v = candidate_pairs(self.phase_dir, item.ordinal)
        mine = ordinal_of(v) == item.ordinal
        u, v = u[mine], v[mine]
        t = shuffle_read(join(self.phase_dir, "shingles", "out"), item.ordinal, SETS)
        node = t.column("node").to_numpy()
        order = np.argsort(node)
        node = node[order]
        offsets, values = from_blobs(t.column("shingles"))

        def set_of(x: int) -> np.ndarray | None:
            k = int(np.searchsorted(node, x))
            if k == len(node) or node[k] != x:
                return None
            r = order[k]
            return values[offsets[r]:offsets[r + 1]]

        keep = priority_of(u) == 0
        for i in np.flatnonzero(~keep):
            a, b = set_of(int(u[i])), set_of(int(v[i]))
            assert a is not None and b is not None, f"shard {item.key}: no shingle set for a candidate pair"
            keep[i] = len(a) > 0 and len(b) > 0 and jaccard_of_sets(a, b) >= self.cfg.threshold
        write_both_ways(join(self.phase_dir, "verify", "out"), item.key, u[keep], v[keep], self.n)
        return {"key": item.key, "rows_in": len(u), "verified_edges": int(keep.sum()), "peak_rss_mb": peak_rss_mb()}
