"""Who survives in a cluster of near-duplicates, without chaining: a document is removed only for a kept
document it is linked to.

Connected components chain: with A~B and B~C linked, C is removed for resembling B even when C and the
kept A share little (the issue #16 measurement: 16% of removed documents below the threshold with their
survivor). Here the decision is the greedy of a streaming dedup, made per component: documents in node-key
order (priority, then input order: corpus.dedup.layout), each one kept unless it is linked to an already
kept document, then removed for the smallest such. Kept documents are never linked to each other, and
every removed document is linked to its survivor, which is kept: with verified links (the default), its
Jaccard with the survivor is at least the threshold. A document linked only to removed ones is kept (it
may head a cluster of its own). The result is a function of the links and the node keys, so it is the
same for any number of shards, partitions or workers. Documents of a reference corpus (priority 0) are
always kept.

Two steps over the components' partitions, after corpus.dedup.components:
1. `ComponentLinks` (per node partition): each link, once, at the partition of its component's root,
   joined through the converged star forest (node -> root).
2. `Survivors` (per root partition): the greedy over every component there, in numpy rounds: a pending
   document with a kept smaller neighbour is removed, one whose smaller neighbours are all removed is
   kept. Each round decides at least the smallest pending document of each component, so it ends;
   near-duplicate clusters are nearly cliques and take 2-3 rounds. A removed document's survivor is
   its smallest kept neighbour (tests/corpus/dedup/test_survivors.py: equal to the one-by-one greedy).
Writes (node, survivor) of removed documents to their upstream shard's ordinal (`assign/out`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from corpus.dedup.components import ASSIGN, EDGES, unique_pairs
from corpus.dedup.layout import ordinal_of, partition_of, peak_rss_mb, priority_of, shuffle_read, shuffle_write

LINKS = pa.schema([("root", pa.int64()), ("u", pa.int64()), ("v", pa.int64())])

_PENDING, _KEPT, _REMOVED = 0, 1, 2


def greedy_survivors(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Links (u, v) with u < v (any number of components; duplicates allowed) -> (removed node, its
    survivor), both sorted by node. A node is kept unless linked to a smaller kept node; priority-0
    nodes are always kept."""
    u, v = unique_pairs(u, v)
    nodes, inverse = np.unique(np.concatenate([u, v]), return_inverse=True)
    lo, hi = inverse[: len(u)], inverse[len(u):]  # indexes into nodes; lo < hi as nodes are sorted
    status = np.full(len(nodes), _PENDING, np.int8)
    status[priority_of(nodes) == 0] = _KEPT
    live = np.ones(len(lo), bool)  # links whose larger end is still pending
    while True:
        live &= status[hi] == _PENDING
        if not live.any():
            break
        a, b = lo[live], hi[live]
        blocked = np.zeros(len(nodes), bool)  # a smaller neighbour still pending
        blocked[b[status[a] == _PENDING]] = True
        has_kept = np.zeros(len(nodes), bool)
        has_kept[b[status[a] == _KEPT]] = True
        pending = status == _PENDING
        removed = pending & has_kept  # one kept smaller neighbour settles it
        kept = pending & ~removed & ~blocked
        status[removed], status[kept] = _REMOVED, _KEPT
    assert not (status == _PENDING).any(), "greedy survivors left a node undecided"
    # The survivor is the smallest kept neighbour, known once all are decided (a round may remove a
    # document for a kept neighbour before a smaller one is kept).
    survivor = np.full(len(nodes), len(nodes), np.int64)
    to_kept = (status[hi] == _REMOVED) & (status[lo] == _KEPT)
    np.minimum.at(survivor, hi[to_kept], lo[to_kept])
    out = np.flatnonzero(status == _REMOVED)
    return nodes[out], nodes[survivor[out]]


class ComponentLinks:
    """Partition p: the links at nodes of p (rows (u, v) both ways) -> (root of u's component, u, v) once per
    link (the row with u > v), shuffled by the root's partition."""

    def __init__(self, forest_dir: str, links_dir: str, out_dir: str, partitions: int):
        self.forest_dir, self.links_dir, self.out_dir, self.n = forest_dir, links_dir, out_dir, partitions

    def run(self, item, attempt: int) -> dict:
        f = shuffle_read(self.forest_dir, item.ordinal, EDGES)
        fu, fv = unique_pairs(f.column("u").to_numpy(), f.column("v").to_numpy())
        leaf = fv < fu  # converged star forest: a leaf's only smaller neighbour is its root
        node, root = fu[leaf], fv[leaf]
        t = shuffle_read(self.links_dir, item.ordinal, EDGES)
        u, v = unique_pairs(t.column("u").to_numpy(), t.column("v").to_numpy())
        once = u > v
        u, v = u[once], v[once]
        pos = np.clip(np.searchsorted(node, u), 0, max(len(node) - 1, 0))
        # u has a smaller neighbour v, so u is a leaf of the forest and its row is in this partition
        assert len(u) == 0 or (node[pos] == u).all(), "a linked node is missing from the component forest"
        r = root[pos] if len(u) else np.zeros(0, np.int64)
        shuffle_write(self.out_dir, item.key, pa.table({"root": r, "u": v, "v": u}, schema=LINKS),
                      partition_of(r, self.n), self.n)
        return {"key": item.key, "rows_in": len(t), "links": len(u), "peak_rss_mb": peak_rss_mb()}


class Survivors:
    """Partition p: the greedy over its components -> (removed node, survivor) at the node's shard."""

    def __init__(self, links_dir: str, out_dir: str, shards: int):
        self.links_dir, self.out_dir, self.shards = links_dir, out_dir, shards

    def run(self, item, attempt: int) -> dict:
        t = shuffle_read(self.links_dir, item.ordinal, LINKS)
        node, survivor = greedy_survivors(t.column("u").to_numpy(), t.column("v").to_numpy())
        mine = priority_of(node) > 0  # reference documents are never written (they are kept)
        node, survivor = node[mine], survivor[mine]
        shuffle_write(self.out_dir, item.key, pa.table({"node": node, "root": survivor}, schema=ASSIGN),
                      ordinal_of(node), self.shards)
        return {"key": item.key, "rows_in": t.num_rows, "leaves": len(node), "peak_rss_mb": peak_rss_mb()}
