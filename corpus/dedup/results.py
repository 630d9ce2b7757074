"""Per-shard dedup results: `results/<shard key>.parquet` = (id, cluster, duplicate) for every document.

Written by the last step of the exact and fuzzy phases from the shard's node list and the (leaf, root)
assignments shuffled to its ordinal; read by the removal stages (corpus.stages.exact_dedup,
minhash_dedup), which join them on `id` shard by shard, so a removal worker holds one shard's results.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.dedup.components import ASSIGN
from corpus.dedup.layout import peak_rss_mb, read_table, shuffle_read, write_table_atomic
from corpus.io.files import filesystem, join

NODES = pa.schema([("id", pa.string()), ("node", pa.int64())])
RESULTS = pa.schema([("id", pa.string()), ("cluster", pa.int64()), ("duplicate", pa.bool_())])


def nodes_path(phase_dir: str, key: str) -> str:
    return join(phase_dir, "nodes", f"{key}.parquet")


def results_path(phase_dir: str, key: str) -> str:
    return join(phase_dir, "results", f"{key}.parquet")


class ResultsWorker:
    def __init__(self, phase_dir: str, assign_dir: str):
        self.phase_dir, self.assign_dir = phase_dir, assign_dir

    def run(self, item, attempt: int) -> dict:
        nodes = read_table(nodes_path(self.phase_dir, item.key))
        assign = shuffle_read(self.assign_dir, item.ordinal, ASSIGN)
        node = nodes.column("node").to_numpy()
        leaf = assign.column("node").to_numpy()
        root = assign.column("root").to_numpy()
        order = np.argsort(leaf)
        leaf, root = leaf[order], root[order]
        pos = np.clip(np.searchsorted(leaf, node), 0, max(len(leaf) - 1, 0))
        dup = (leaf[pos] == node) if len(leaf) else np.zeros(len(node), bool)
        cluster = np.where(dup, root[pos] if len(leaf) else node, node)
        table = pa.table({"id": nodes.column("id"), "cluster": cluster, "duplicate": dup}, schema=RESULTS)
        write_table_atomic(results_path(self.phase_dir, item.key), table)
        return {"key": item.key, "rows_in": len(node), "duplicates": int(dup.sum()),
                "peak_rss_mb": peak_rss_mb()}


def upstream_key(shard) -> str:
    """The key of the upstream shard whose results to join: a removal stage reads a later phase's shard
    (its `parts` are the upstream part files), whose key is the upstream ledger key the dedup phase
    named its results after."""
    if not shard.parts:
        raise ValueError(f"dedup removal: shard {shard.key} ({shard.path}) is read from the job's inputs; "
                         f"the stage must run in a map phase that reads the dedup phase's upstream output")
    return shard.key


class ShardResults:
    """Joins a phase's results onto batches of the current shard (loaded once per shard)."""

    def __init__(self, phase_dir: str, what: str):
        self.phase_dir, self.what = phase_dir, what
        self.table: pa.Table | None = None

    def start_shard(self, shard) -> None:
        path = results_path(self.phase_dir, upstream_key(shard))
        fs, p = filesystem(path)
        if not fs.exists(p):
            raise FileNotFoundError(f"{self.what}: no results for this shard at {path}; was the dedup phase "
                                    f"run on the same upstream phase as this one?")
        self.table = read_table(path)

    def lookup(self, ids) -> tuple[pa.Array, pa.Array]:
        """(cluster int64, duplicate bool) per id; ids the phase never saw get null, False."""
        if self.table is None or len(ids) == 0:
            return pa.array([], pa.int64()), pa.array([], pa.bool_())
        idx = pc.index_in(ids, value_set=self.table.column("id"))
        cluster = pc.take(self.table.column("cluster"), idx)
        dup = pc.fill_null(pc.take(self.table.column("duplicate"), idx), False)
        return _arr(cluster, pa.int64()), _arr(dup, pa.bool_())


def _arr(x, t):
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    return x.cast(t)
