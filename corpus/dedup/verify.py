"""The check of candidate pairs (on by default, `verify: true`): the exact Jaccard of their shingle sets.

LSH candidates include pairs below the threshold (the S-curve's false positives, many of them as the
default bands are chosen for recall at the threshold); the minhash_dedup phase links only pairs whose
exact Jaccard reaches the threshold. Candidates are
shuffled to the shard of their member document, so each verify worker reads its own shard's texts once
and, for roots in other shards, only those shards' needed rows: memory stays per shard.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from corpus.dedup.components import EDGES, unique_pairs, write_both_ways
from corpus.dedup.layout import ROW_MASK, ordinal_of, peak_rss_mb, priority_of, read_shard, shuffle_read
from corpus.dedup.minhash import shingle
from corpus.io.files import join


def sorted_set(hashes: np.ndarray) -> np.ndarray:
    """A document's shingle hashes sorted, without repeats (a sort and a compare: np.unique's hash table
    cost 3x more on these)."""
    h = np.sort(hashes)
    return h[np.r_[True, h[1:] != h[:-1]]] if len(h) else h


def jaccard_of_sets(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted arrays without repeats (non-empty)."""
    if len(a) > len(b):
        a, b = b, a
    at = np.searchsorted(b, a)
    inter = int(np.count_nonzero(b[np.minimum(at, len(b) - 1)] == a))
    return inter / (len(a) + len(b) - inter)


class VerifyWorker:
    """True Jaccard of the candidate pairs whose member lies in this shard: the member's shard is read
    once, each other shard holding roots of its pairs once (only the rows needed are shingled). Pairs
    with a reference-corpus root are kept unverified (the reference's texts are not at hand)."""

    def __init__(self, cfg, phase_dir: str, partitions: int, shards: list):
        self.cfg, self.phase_dir, self.n = cfg, phase_dir, partitions
        self.by_ordinal = {s.ordinal: s for s in shards}

    def _shingle_sets(self, item, rows: np.ndarray) -> dict[int, np.ndarray]:
        wanted, out, row = set(rows.tolist()), {}, 0
        for _, t in read_shard(item, ["text"], self.cfg.batch_rows):
            local = [r - row for r in range(row, row + t.num_rows) if r in wanted]
            if local:
                sh = shingle(t.column("text").take(pa.array(local)), ngram=self.cfg.ngram, mode=self.cfg.mode)
                for k, r in enumerate(local):
                    out[row + r] = sorted_set(sh.hashes[sh.offsets[k]:sh.offsets[k + 1]])
            row += t.num_rows
        return out

    def run(self, item, attempt: int) -> dict:
        t = shuffle_read(join(self.phase_dir, "buckets", "candidates"), item.ordinal, EDGES)
        u, v = unique_pairs(t.column("u").to_numpy(), t.column("v").to_numpy())
        same = (ordinal_of(u) == item.ordinal) & (priority_of(u) > 0)
        mine = self._shingle_sets(item, np.concatenate([v, u[same]]) & ROW_MASK)
        keep = priority_of(u) == 0
        for r in np.unique(ordinal_of(u[~keep])):
            sel = np.flatnonzero((ordinal_of(u) == r) & ~keep)
            theirs = mine if r == item.ordinal else self._shingle_sets(self.by_ordinal[int(r)], u[sel] & ROW_MASK)
            for i in sel:
                a, b = theirs.get(int(u[i] & ROW_MASK)), mine.get(int(v[i] & ROW_MASK))
                if a is not None and b is not None and len(a) and len(b):
                    keep[i] = jaccard_of_sets(a, b) >= self.cfg.threshold
        write_both_ways(join(self.phase_dir, "verify", "out"), item.key, u[keep], v[keep], self.n)
        return {"key": item.key, "rows_in": len(u), "verified_edges": int(keep.sum()), "peak_rss_mb": peak_rss_mb()}

