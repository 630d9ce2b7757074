"""Distributed connected components (large-star / small-star) against a union-find reference."""

import numpy as np
import pytest

from corpus.dedup.components import ASSIGN, run_components, write_both_ways
from corpus.dedup.layout import node_keys, shuffle_read
from corpus.io.files import join


def union_find_roots(nodes, edges):
    parent = {n: n for n in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in nodes}


def random_graph(seed, n_nodes, n_edges, shards=4):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 1000, n_nodes)
    ords = rng.integers(0, shards, n_nodes)
    nodes = np.unique(np.concatenate([node_keys(np.ones(1, np.int64), int(o), np.array([r]))
                                      for o, r in zip(ords, rows)]))
    # clustered edges: chains and stars inside small groups, as LSH buckets produce
    a = rng.choice(nodes, n_edges)
    b = np.array([nodes[min(len(nodes) - 1, max(0, np.searchsorted(nodes, x) + rng.integers(-3, 4)))] for x in a])
    return nodes, a, b


def run(ctx, a, b, partitions, shards=4):
    edges_dir = join(ctx.phase_dir, "buckets", "out")
    write_both_ways(edges_dir, "w", a, b, partitions)
    summary = run_components(ctx, edges_dir, partitions, shards)
    got = {}
    for ordinal in range(shards):
        t = shuffle_read(join(ctx.phase_dir, "assign", "out"), ordinal, ASSIGN)
        for n, r in zip(t.column("node").to_pylist(), t.column("root").to_pylist()):
            assert (n >> 32) & 0xFFFFFF == ordinal  # each leaf is sent to its own shard
            assert n not in got
            got[n] = r
    return got, summary


@pytest.mark.parametrize("seed,partitions", [(0, 1), (1, 3), (2, 4)])
def test_components_match_union_find(local_ctx, seed, partitions):
    nodes, a, b = random_graph(seed, 400, 300)
    got, summary = run(local_ctx, a, b, partitions)
    roots = union_find_roots(nodes.tolist(), zip(a.tolist(), b.tolist()))
    want = {n: r for n, r in roots.items() if n != r}  # leaves -> smallest node of their component
    assert got == want
    assert summary["leaves"] == len(want) and summary["rounds"] >= 1


def test_a_long_chain_converges(local_ctx):
    nodes = node_keys(np.ones(200, np.int64), 0, np.arange(200))
    order = np.random.default_rng(3).permutation(200)  # a path visiting nodes in random order
    got, summary = run(local_ctx, nodes[order[:-1]], nodes[order[1:]], 3, shards=1)
    assert got == {int(n): int(nodes[0]) for n in nodes[1:]}
    assert summary["rounds"] < 40


def test_same_result_for_any_partition_count(tmp_path):
    from corpus.dedup.local import LocalContext

    nodes, a, b = random_graph(5, 300, 250)
    results = []
    for p in (1, 3):
        ctx = LocalContext(phase_dir=str(tmp_path / f"p{p}"))
        results.append(run(ctx, a, b, p)[0])
    assert results[0] == results[1]
