"""What the dedup phases share: node keys, work items, reading an upstream shard, shuffle files.

A document is a node key, int64: priority (7 bits) << 56 | shard ordinal (24 bits) << 32 | row (32 bits).
The ordinal is the shard's rank among the upstream shard keys, the row its position in the shard's part
files read in ledger order. Smaller keys survive first (an exact duplicate set keeps its smallest key;
near-duplicates are kept in key order, corpus.dedup.survivors): the document of the most preferred
source (priority 0 is reserved for a reference corpus, so its documents always survive), then the
earliest in input order. Keys are a pure function of the upstream data: the same with any number of
workers, on a rerun, after a resume.

A shuffle writes one file per writer, `<step>/out/from-<writer>.parquet` (published atomically), with one
row group per partition; a reader of partition p reads that row group of every writer's file once the
writing step has committed all its items.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
from typing import Iterator

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpus.io.files import filesystem, join, publish, temp_name
from corpus.io.parquet import domain_of

PRIORITY_SHIFT = 56
ORDINAL_SHIFT = 32
MAX_ORDINAL = (1 << 24) - 1
ROW_MASK = (1 << 32) - 1
_PARTITIONS_KEY = "refinery.shuffle.partitions"


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """A work item for ctx.run_on_actors: an upstream shard, a reducer partition, ..."""

    key: str
    path: str = ""
    parts: tuple[str, ...] = ()
    ordinal: int = 0


def shard_items(ctx) -> list[Item]:
    parts = ctx.upstream_parts()
    if len(parts) > MAX_ORDINAL:
        raise ValueError(f"{len(parts)} upstream shards: dedup node keys hold at most {MAX_ORDINAL}")
    return [Item(key=k, path=ctx.upstream_dir, parts=tuple(p), ordinal=i) for i, (k, p) in enumerate(parts.items())]


def partition_items(n: int) -> list[Item]:
    return [Item(key=f"p-{p:05d}", ordinal=p) for p in range(n)]


def node_keys(priority: np.ndarray, ordinal: int, rows: np.ndarray) -> np.ndarray:
    return ((priority.astype(np.int64) << PRIORITY_SHIFT) | (np.int64(ordinal) << ORDINAL_SHIFT)
            | rows.astype(np.int64))


def ordinal_of(nodes: np.ndarray) -> np.ndarray:
    return (nodes >> ORDINAL_SHIFT) & MAX_ORDINAL


def priority_of(nodes: np.ndarray) -> np.ndarray:
    return nodes >> PRIORITY_SHIFT


def read_shard(item: Item, columns: list[str], batch_rows: int = 65536) -> Iterator[tuple[str, pa.Table]]:
    """(domain, table) batches of an upstream shard in ledger order; rows numbered by the caller."""
    for path in item.parts:
        domain = domain_of(path) or ""
        fs, local = filesystem(path)
        with fs.open(local, "rb") as f:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
                yield domain, pa.Table.from_batches([batch])


def write_table_atomic(path: str, table: pa.Table) -> None:
    fs, p = filesystem(path)
    fs.makedirs(os.path.dirname(p), exist_ok=True)
    tmp = temp_name(path)
    with fsspec.open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd")
    publish(tmp, path)


def read_table(path: str) -> pa.Table:
    with fsspec.open(path, "rb") as f:
        return pq.read_table(f)


def shuffle_write(step_dir: str, writer: str, table: pa.Table, partition: np.ndarray, n: int,
                  compression: str = "zstd") -> None:
    """Rows go to partition `partition[i]` (0..n-1): one file per writer, `<step_dir>/from-<writer>.parquet`,
    one row group per non-empty partition, the partition numbers listed in the file's metadata. One file
    (one fsync) per writer instead of one per (writer, partition): P^2 small files made big shuffles slow."""
    if table.num_rows == 0:
        return
    if len(partition) > 1 and (partition[1:] < partition[:-1]).any():
        # 16-bit keys take numpy's radix sort (3x faster than a stable sort of int64 on 235k rows)
        order = np.argsort(partition.astype(np.int16) if n <= np.iinfo(np.int16).max else partition, kind="stable")
        partition = partition[order]
        table = table.take(pa.array(order))
    bounds = np.searchsorted(partition, np.arange(n + 1))
    present = [p for p in range(n) if bounds[p + 1] > bounds[p]]
    schema = table.schema.with_metadata({_PARTITIONS_KEY: json.dumps(present)})
    path = join(step_dir, f"from-{writer}.parquet")
    fs, p_ = filesystem(path)
    fs.makedirs(os.path.dirname(p_), exist_ok=True)
    tmp = temp_name(path)
    with fsspec.open(tmp, "wb") as f:
        # no dictionary pages: keys and hashes are nearly all distinct, and trying one cost 3x the write
        # of a bucket shuffle (2026-11-30)
        with pq.ParquetWriter(f, schema, compression=compression, use_dictionary=False) as w:
            for p in present:
                part = table.slice(int(bounds[p]), int(bounds[p + 1] - bounds[p]))
                w.write_table(part.replace_schema_metadata(schema.metadata), row_group_size=max(1, part.num_rows))
    publish(tmp, path)


def shuffle_read(step_dir: str, partition: int, schema: pa.Schema) -> pa.Table:
    """The row groups of every writer's file that belong to one partition (an empty table of `schema`
    when there is none)."""
    fs, p = filesystem(step_dir)
    if not fs.exists(p):
        return schema.empty_table()
    files = sorted(f for f in fs.ls(p, detail=False)
                   if os.path.basename(f).startswith("from-") and f.endswith(".parquet") and ".tmp-" not in f)
    tables = []
    for f in files:
        with fs.open(f, "rb") as fh:  # the listing's filesystem: fsspec.open per file cost more than the read
            pf = pq.ParquetFile(fh)
            present = json.loads(pf.schema_arrow.metadata[_PARTITIONS_KEY.encode()])
            if partition in present:
                tables.append(pf.read_row_group(present.index(partition)).replace_schema_metadata(None).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def partition_of(keys: np.ndarray, n: int) -> np.ndarray:
    """Partition of uint64/int64 keys: from well-mixed bits, so skewed keys still spread."""
    from corpus.dedup.text import splitmix64
    return (splitmix64(keys.astype(np.uint64)) % np.uint64(n)).astype(np.int64)


def peak_rss_mb() -> float:
    """Peak resident memory of this worker process since its worker was built (pool actors reset the
    mark then, see corpus.runtime.pool), else since it started. Linux: VmHWM, in KiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Drill:
    """Recovery drill (like the `chaos` stage, for dedup steps): the worker process dies once, before
    publishing anything, on the first item it gets; a marker file makes the retry go through."""

    def __init__(self, factory, marker: str):
        self.inner = factory()
        self.marker = marker

    def run(self, item, attempt: int) -> dict:
        if not os.path.exists(self.marker):
            os.makedirs(os.path.dirname(self.marker), exist_ok=True)
            with open(self.marker, "w") as f:
                f.write(f"killed on {item.key}\n")
            os._exit(1)
        return self.inner.run(item, attempt)


def drilled(factory, step: str, drill_step: str | None, phase_dir: str):
    """`factory`, wrapped in a Drill when this is the step the drill targets (a local phase folder)."""
    import functools

    if drill_step != step:
        return factory
    return functools.partial(Drill, factory, os.path.join(phase_dir, f"_drill_{step}"))
