"""Candidate pairs from LSH buckets: the `buckets` step of the minhash_dedup phase (corpus.dedup.fuzzy).

Documents sharing a band bucket are candidates: every pair of a bucket of up to ALL_PAIRS_BUCKET
documents; in a bigger one (boilerplate, templates) each document is paired with the bucket's smallest
node key and with its predecessor (k documents give 2k-3 pairs, not k^2/2). Candidates go to the shard
of both their nodes for the verify steps (corpus.dedup.verify), or, unchecked, straight into the edge
files of the components (`verify: false`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from corpus.dedup.components import EDGES, unique_pairs, write_both_ways
from corpus.dedup.layout import PRIORITY_SHIFT, ordinal_of, peak_rss_mb, priority_of, shuffle_read, shuffle_write
from corpus.io.files import join

BUCKETS = pa.schema([("bucket", pa.uint64()), ("node", pa.int64())])
ALL_PAIRS_BUCKET = 16
"""Buckets of up to this many documents give all their pairs (at most 120): a star alone misses B~C when
the bucket's smallest A resembles neither enough, which the verify step then rejects."""


def bucket_pairs(bucket: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (u < v) of rows (bucket, node) sorted by (bucket, node): all pairs of a bucket of
    up to ALL_PAIRS_BUCKET nodes, (smallest, v) and (predecessor, v) in a bigger one; sorted, unique."""
    if not len(bucket):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    sizes = np.diff(np.r_[starts, len(bucket)])
    end = np.repeat(starts + sizes, sizes)  # one past each row's bucket
    small = np.repeat(sizes <= ALL_PAIRS_BUCKET, sizes)
    idx = np.arange(len(bucket))
    us, vs = [], []
    for k in range(1, min(int(sizes.max()), ALL_PAIRS_BUCKET)):  # pairs k apart inside a small bucket
        i = idx[small & (idx + k < end)]
        us.append(node[i])
        vs.append(node[i + k])
    big = ~small & (idx + 1 < end)
    i = idx[big]
    head = np.repeat(node[starts], sizes)
    us += [node[i], head[i + 1]]  # predecessor, and the bucket's smallest
    vs += [node[i + 1], node[i + 1]]
    return unique_pairs(np.concatenate(us), np.concatenate(vs))


class BucketWorker:
    def __init__(self, phase_dir: str, partitions: int, reference: str | None, verify_shards: int = 0):
        self.phase_dir, self.n, self.reference = phase_dir, partitions, reference
        self.verify_shards = verify_shards

    def run(self, item, attempt: int) -> dict:
        t = shuffle_read(join(self.phase_dir, "signatures", "out"), item.ordinal, BUCKETS)
        bucket, node = t.column("bucket").to_numpy(), t.column("node").to_numpy()
        if self.reference:
            r = shuffle_read(join(self.reference, "signatures", "out"), item.ordinal, BUCKETS)
            ref_nodes = r.column("node").to_numpy() & np.int64((1 << PRIORITY_SHIFT) - 1)  # priority 0
            bucket = np.concatenate([bucket, r.column("bucket").to_numpy()])
            node = np.concatenate([node, ref_nodes])
        order = np.lexsort((node, bucket))
        root, member = bucket_pairs(bucket[order], node[order])
        if self.reference:  # two reference documents need no link: both are kept
            keep = priority_of(member) > 0
            root, member = root[keep], member[keep]
        if self.verify_shards:  # candidates go to both documents' shards, which ship their shingle sets
            other = (ordinal_of(root) != ordinal_of(member)) & (priority_of(root) > 0)
            shuffle_write(join(self.phase_dir, "buckets", "candidates"), item.key,
                          pa.table({"u": np.concatenate([root, root[other]]),
                                    "v": np.concatenate([member, member[other]])}, schema=EDGES),
                          np.concatenate([ordinal_of(member), ordinal_of(root[other])]), self.verify_shards)
        else:
            write_both_ways(join(self.phase_dir, "buckets", "out"), item.key, root, member, self.n)
        return {"key": item.key, "rows_in": len(bucket), "candidate_edges": len(member),
                "peak_rss_mb": peak_rss_mb()}
