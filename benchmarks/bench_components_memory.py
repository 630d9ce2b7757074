"""Peak memory of the distributed connected-components phase as the corpus grows 10x.

A synthetic candidate graph shaped like LSH output (clusters of geometric size, each a random tree,
nodes spread over shards) of E edges and of 10 E edges runs through corpus.dedup.components. With
partitions growing with the corpus (fixed shard size, what `partitions: 0` does: one per upstream
shard), peak memory per work item should stay flat; with partitions held fixed it grows with the
corpus, which is the single-process behaviour the design avoids.

`--mode local` (default) runs the steps in this process and measures each work item's peak of numpy
allocations with tracemalloc (reset before every item): the working set a worker needs, free of
process baselines. `--mode ray` runs them on Ray actors and reports each step's peak worker RSS
(ru_maxrss of fresh actors: includes ~150-400 MB of interpreter, pyarrow and Ray baseline).

    .venv/bin/python benchmarks/bench_components_memory.py [--edges 200000] [--mode local|ray]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time

import numpy as np


def synthetic_graph(edges: int, shards: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from corpus.dedup.layout import node_keys

    rng = np.random.default_rng(seed)
    sizes = rng.geometric(0.3, size=edges) + 1  # cluster sizes >= 2
    sizes = sizes[np.cumsum(sizes - 1) <= edges]
    n = int(sizes.sum())
    perm = rng.permutation(n)
    ordinal = perm % shards
    nodes = node_keys(np.ones(n, np.int64), 0, np.zeros(n, np.int64)) | (ordinal.astype(np.int64) << 32) | (perm // shards)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    pos = np.arange(n) - starts
    child = pos > 0
    parent = starts[child] + (rng.random(child.sum()) * pos[child]).astype(np.int64)  # random tree
    return nodes[parent], nodes[np.flatnonzero(child)]


class TracedContext:
    """In-process steps (corpus.dedup.local) recording each work item's tracemalloc peak."""

    def __init__(self, phase_dir: str):
        from corpus.dedup.local import LocalContext

        self.inner = LocalContext(phase_dir=phase_dir)
        self.phase_dir = phase_dir
        self.peak_mb = 0.0

    def run_on_actors(self, step, items, factory):
        import tracemalloc

        ctx = self

        class Traced:
            def __init__(self):
                self.worker = factory()

            def run(self, item, attempt):
                tracemalloc.start()
                tracemalloc.reset_peak()
                try:
                    return self.worker.run(item, attempt)
                finally:
                    ctx.peak_mb = max(ctx.peak_mb, tracemalloc.get_traced_memory()[1] / 2**20)
                    tracemalloc.stop()

        return self.inner.run_on_actors(step, items, Traced)

    def committed(self, step):
        return self.inner.committed(step)


def run(edges: int, shards: int, partitions: int, workers: int, mode: str) -> dict:
    from corpus.dedup.components import run_components, write_both_ways
    from corpus.runtime.cross_shard import CrossShardContext

    tmp = tempfile.mkdtemp(prefix="bench-cc-")
    try:
        a, b = synthetic_graph(edges, shards)
        edges_dir = f"{tmp}/buckets/out"
        for i in range(partitions):  # written by `partitions` writers, as the bucket step does
            sl = slice(i * len(a) // partitions, (i + 1) * len(a) // partitions)
            write_both_ways(edges_dir, f"w{i}", a[sl], b[sl], partitions)
        if mode == "ray":
            ctx = CrossShardContext(phase="cc", phase_dir=tmp, upstream_dir="", upstream_entries={}, phase_dirs={},
                                    workers=workers, max_retries=1, progress=False)
        else:
            ctx = TracedContext(tmp)
        t0 = time.perf_counter()
        summary = run_components(ctx, edges_dir, partitions, shards)
        peak = summary["components_peak_rss_mb"] if mode == "ray" else round(ctx.peak_mb, 1)
        return {"edges": len(a), "shards": shards, "partitions": partitions, "rounds": summary["rounds"],
                "leaves": summary["leaves"], "peak_item_mb": peak, "wall_s": round(time.perf_counter() - t0, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edges", type=int, default=200_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mode", choices=("local", "ray"), default="local")
    args = ap.parse_args()
    if args.mode == "ray":
        import ray

        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)
    rows = [run(args.edges, args.shards, args.shards, args.workers, args.mode),
            run(10 * args.edges, 10 * args.shards, 10 * args.shards, args.workers, args.mode),
            run(10 * args.edges, 10 * args.shards, args.shards, args.workers, args.mode)]
    labels = ["1x corpus, partitions = shards", "10x corpus, partitions = shards", "10x corpus, partitions fixed"]
    for label, r in zip(labels, rows):
        print(f"  {label:34s} edges {r['edges']:>10,}  partitions {r['partitions']:>3}  rounds {r['rounds']}  "
              f"peak per item {r['peak_item_mb']:7.1f} MB  wall {r['wall_s']:6.1f} s", flush=True)
    print(f"peak memory per item, 10x / 1x corpus: {rows[1]['peak_item_mb'] / rows[0]['peak_item_mb']:.2f} with "
          f"partitions = shards, {rows[2]['peak_item_mb'] / rows[0]['peak_item_mb']:.2f} with partitions fixed; "
          f"driver peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
