"""Connected components of the candidate graph, distributed over Ray actors with bounded memory.

Alternating large-star and small-star rounds (Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii,
"Connected Components in MapReduce and Beyond", SoCC 2014): each step is a shuffle of edges by node
hash into P partitions and a group-by inside each partition, so a worker only ever holds its partition
of the edges (about edges / P), never the whole graph. Steps go through `ctx.run_on_actors`: every
partition is ledgered, retried and resumable like a map shard.

- large-star at node u (all neighbours): m = min(u, neighbours); each neighbour v > u is re-linked to m.
- small-star at node u (neighbours v < u only): m = min of them; they and u are linked to m.
A step "changes" the graph when some u re-links (large: a u with a larger neighbour has m != u; small:
a u with 2+ smaller neighbours). When one round of both changes nothing, every node has at most one
smaller neighbour and none has both a smaller and a larger one: the graph is a forest of stars whose
centres are the components' smallest node keys (`Assign` writes them as each node's root; the
minhash_dedup phase instead decides survivors inside each component: corpus.dedup.survivors).
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa

from corpus.dedup.layout import (drilled, ordinal_of, partition_items, partition_of, peak_rss_mb, priority_of,
                                 shuffle_read, shuffle_write)
from corpus.io.files import join

EDGES = pa.schema([("u", pa.int64()), ("v", pa.int64())])
ASSIGN = pa.schema([("node", pa.int64()), ("root", pa.int64())])
MAX_ROUNDS = 200


def unique_pairs(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs sorted by (u, v), duplicates and self-loops removed."""
    keep = u != v
    u, v = u[keep], v[keep]
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    if len(u):
        first = np.ones(len(u), bool)
        first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        u, v = u[first], v[first]
    return u, v


def group_min(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For (u, v) sorted by u: (start index of each u group, group sizes, min v of each group)."""
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if len(u) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(u)])
    mins = np.minimum.reduceat(v, starts) if len(u) else np.zeros(0, np.int64)
    return starts, sizes, mins


def write_both_ways(out_dir: str, writer: str, a: np.ndarray, b: np.ndarray, n: int) -> None:
    """Undirected edges {a, b} as directed rows at both endpoints' partitions."""
    u = np.concatenate([a, b])
    v = np.concatenate([b, a])
    shuffle_write(out_dir, writer, pa.table({"u": u, "v": v}, schema=EDGES), partition_of(u, n), n)


class _Step:
    def __init__(self, in_dir: str, out_dir: str, partitions: int):
        self.in_dir, self.out_dir, self.n = in_dir, out_dir, partitions

    def read(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        t = shuffle_read(self.in_dir, p, EDGES)
        return unique_pairs(t.column("u").to_numpy(), t.column("v").to_numpy())


class LargeStar(_Step):
    def run(self, item, attempt: int) -> dict:
        u, v = self.read(item.ordinal)  # every neighbour of each u in this partition
        starts, sizes, mins = group_min(u, v)
        m = np.repeat(np.minimum(u[starts], mins), sizes)
        up = v > u
        changed = int(np.count_nonzero(up & (m != u)))
        a, b = m[up], v[up]  # canonical: a < b
        # small-star needs each b's smaller neighbours: row (b -> a) at b's partition
        shuffle_write(self.out_dir, item.key, pa.table({"u": b, "v": a}, schema=EDGES), partition_of(b, self.n),
                      self.n)
        return {"key": item.key, "rows_in": len(u), "edges_out": len(a), "changed": changed,
                "peak_rss_mb": peak_rss_mb()}


class SmallStar(_Step):
    def run(self, item, attempt: int) -> dict:
        u, v = self.read(item.ordinal)  # rows (b -> a) with a < b
        starts, sizes, mins = group_min(u, v)
        changed = int(np.count_nonzero(sizes > 1))
        m = np.repeat(mins, sizes)
        relink = v != m
        a = np.concatenate([m[relink], mins])
        b = np.concatenate([v[relink], u[starts]])
        write_both_ways(self.out_dir, item.key, a, b, self.n)
        return {"key": item.key, "rows_in": len(u), "edges_out": len(a), "changed": changed,
                "peak_rss_mb": peak_rss_mb()}


class Assign(_Step):
    """Converged star forest -> (leaf, root) rows at the leaf's upstream shard (reference leaves dropped)."""

    def __init__(self, in_dir: str, out_dir: str, partitions: int, shards: int):
        super().__init__(in_dir, out_dir, partitions)
        self.shards = shards

    def run(self, item, attempt: int) -> dict:
        u, v = self.read(item.ordinal)
        leaf = (v < u) & (priority_of(u) > 0)
        node, root = u[leaf], v[leaf]
        shuffle_write(self.out_dir, item.key, pa.table({"node": node, "root": root}, schema=ASSIGN),
                      ordinal_of(node), self.shards)
        return {"key": item.key, "rows_in": len(u), "leaves": len(node), "peak_rss_mb": peak_rss_mb()}


def star_forest(ctx, edges_dir: str, partitions: int, drill_step: str | None = None) -> tuple[dict, str]:
    """Large-star / small-star rounds over the graph whose directed rows (both orientations) lie in
    `edges_dir`, partitioned by node hash, until they converge: (summary, the folder of the converged
    star forest, rows (node, neighbour) at the node's partition)."""
    items = partition_items(partitions)
    src = edges_dir
    rounds, peak = 0, 0.0
    for rnd in range(MAX_ROUNDS):
        changed = 0
        for kind, cls in (("large", LargeStar), ("small", SmallStar)):
            step = f"cc-{rnd:03d}-{kind}"
            out = join(ctx.phase_dir, step, "out")
            q = ctx.run_on_actors(step, items, drilled(functools.partial(cls, src, out, partitions), step,
                                                       drill_step, ctx.phase_dir))
            if q:
                return {"quarantined": q, "rounds": rounds}, src
            entries = ctx.committed(step).values()
            changed += sum(e["changed"] for e in entries)
            peak = max([peak, *(e["peak_rss_mb"] for e in entries)])
            src = out
        rounds = rnd + 1
        if changed == 0:
            break
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    return {"quarantined": [], "rounds": rounds, "components_peak_rss_mb": peak}, src


def run_components(ctx, edges_dir: str, partitions: int, shards: int, drill_step: str | None = None) -> dict:
    """Components of the graph whose directed rows (both orientations) lie in `edges_dir`, partitioned by
    node hash. Writes (node, root) per upstream shard ordinal into `<phase_dir>/assign/out`."""
    summary, src = star_forest(ctx, edges_dir, partitions, drill_step)
    if summary["quarantined"]:
        return summary
    items = partition_items(partitions)
    out = join(ctx.phase_dir, "assign", "out")
    q = ctx.run_on_actors("assign", items, drilled(functools.partial(Assign, src, out, partitions, shards),
                                                   "assign", drill_step, ctx.phase_dir))
    entries = ctx.committed("assign").values()
    return {**summary, "quarantined": q, "leaves": sum(e["leaves"] for e in entries),
            "components_peak_rss_mb": max([summary["components_peak_rss_mb"], *(e["peak_rss_mb"] for e in entries)])}
