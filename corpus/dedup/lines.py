"""The `line_dedup` phase kind: CCNet paragraph dedup (Wenzek et al. 2020, section 3.1).

Every line is normalized (corpus.dedup.text.normalize) and hashed to 64 bits; lines are counted over a
group of `group_shards` consecutive upstream shards (CCNet used groups of shards of a snapshot) or over
the whole corpus (0); with `domains`, only documents of those domains are read and changed. A line seen more than once in its group is removed everywhere, or, with
`keep_first`, everywhere but its first occurrence (smallest shard, document row, line index). Lines whose
normalized form is empty (blank lines, pure punctuation) are never counted or removed.

Steps: hashes (per shard: per distinct line hash its count and first occurrence, shuffled by hash),
counts (per partition: totals per (group, hash); the duplicated ones go back to every shard that has
them), marks (per shard: (id, line index) of each line to remove -> `results/<key>.parquet`). The
`line_dedup` stage of the next map phase removes those lines and flags documents left empty.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import setting
from corpus.dedup.layout import (partition_items, peak_rss_mb, read_shard, shard_items, shuffle_read,
                                 shuffle_write, write_table_atomic)
from corpus.dedup.text import hash_strings, normalize
from corpus.io.files import join
from corpus.dedup.kind import PhaseKind

COUNTS = pa.schema([("hash", pa.uint64()), ("group", pa.int32()), ("ordinal", pa.int32()), ("count", pa.int64()),
                    ("first_doc", pa.int64()), ("first_line", pa.int32())])
DUPS = pa.schema([("hash", pa.uint64()), ("first_doc", pa.int64()), ("first_line", pa.int32())])
MARKS = pa.schema([("id", pa.string()), ("line", pa.int32())])


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LineDedupConfig:
    group_shards: int = setting(0, doc="count lines over groups of this many consecutive shards (0: all)",
                                unit="shards", ge=0)
    keep_first: bool = setting(False, doc="keep the first occurrence of a repeated line (CCNet removes all)")
    partitions: int = setting(0, doc="shuffle partitions (0: one per upstream shard)", ge=0)
    batch_rows: int = setting(8192, doc="documents per batch", unit="rows", ge=1)
    domains: tuple[str, ...] = setting((), doc="count and remove lines only in documents of these domains "
                                               "(empty = all): CCNet's dedup is for web text; in code and plays "
                                               "repeated lines are content")

    def takes(self, domain: str) -> bool:
        return not self.domains or domain in self.domains


def split_lines(texts) -> pa.ListArray:
    x = pc.split_pattern(pc.fill_null(texts, ""), "\n")
    return x.combine_chunks() if isinstance(x, pa.ChunkedArray) else x


def line_table(texts, row0: int):
    """(hash, doc row, line index) of each non-blank line; rows count from row0."""
    lines = split_lines(texts)
    flat = lines.flatten()
    lengths = pc.list_value_length(lines).to_numpy(zero_copy_only=False).astype(np.int64)
    norm = normalize(flat)
    keep = pc.greater(pc.utf8_length(norm), 0).to_numpy(zero_copy_only=False)
    h = hash_strings(norm)
    row = np.repeat(np.arange(row0, row0 + len(lengths), dtype=np.int64), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    line = (np.arange(len(row), dtype=np.int64) - starts).astype(np.int32)
    return h[keep], row[keep], line[keep]


class HashWorker:
    def __init__(self, cfg: LineDedupConfig, phase_dir: str, partitions: int):
        self.cfg, self.phase_dir, self.n = cfg, phase_dir, partitions

    def run(self, item, attempt: int) -> dict:
        hs, rows, lines, row = [], [], [], 0
        for domain, t in read_shard(item, ["text"], self.cfg.batch_rows):
            if not self.cfg.takes(domain):
                row += t.num_rows  # rows keep their numbers: the marks step numbers them the same way
                continue
            h, r, ln = line_table(t.column("text"), row)
            hs.append(h), rows.append(r), lines.append(ln)
            row += t.num_rows
        h = np.concatenate(hs) if hs else np.zeros(0, np.uint64)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        ln = np.concatenate(lines) if lines else np.zeros(0, np.int32)
        order = np.lexsort((ln, r, h))
        h, r, ln = h[order], r[order], ln[order]
        starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]]) if len(h) else np.zeros(0, np.int64)
        count = np.diff(np.r_[starts, len(h)])
        group = item.ordinal // self.cfg.group_shards if self.cfg.group_shards else 0
        table = pa.table({"hash": h[starts], "group": np.full(len(starts), group, np.int32),
                          "ordinal": np.full(len(starts), item.ordinal, np.int32), "count": count,
                          "first_doc": (np.int64(item.ordinal) << 32) | r[starts], "first_line": ln[starts]},
                         schema=COUNTS)
        shuffle_write(join(self.phase_dir, "hashes", "out"), item.key, table,
                      (table.column("hash").to_numpy() % np.uint64(self.n)).astype(np.int64), self.n)
        return {"key": item.key, "rows_in": row, "lines": len(h), "distinct_lines": len(starts),
                "peak_rss_mb": peak_rss_mb()}


class CountWorker:
    def __init__(self, phase_dir: str, shards: int):
        self.phase_dir, self.shards = phase_dir, shards

    def run(self, item, attempt: int) -> dict:
        t = shuffle_read(join(self.phase_dir, "hashes", "out"), item.ordinal, COUNTS)
        c = {n: t.column(n).to_numpy() for n in COUNTS.names}
        order = np.lexsort((c["first_line"], c["first_doc"], c["hash"], c["group"]))
        c = {n: v[order] for n, v in c.items()}
        new = np.r_[True, (c["hash"][1:] != c["hash"][:-1]) | (c["group"][1:] != c["group"][:-1])] \
            if len(order) else np.zeros(0, bool)
        starts = np.flatnonzero(new)
        sizes = np.diff(np.r_[starts, len(order)])
        total = np.add.reduceat(c["count"], starts) if len(starts) else np.zeros(0, np.int64)
        dup = np.repeat(total > 1, sizes)
        first_doc = np.repeat(c["first_doc"][starts], sizes)[dup]
        first_line = np.repeat(c["first_line"][starts], sizes)[dup]
        out = pa.table({"hash": c["hash"][dup], "first_doc": first_doc, "first_line": first_line}, schema=DUPS)
        shuffle_write(join(self.phase_dir, "counts", "out"), item.key, out, c["ordinal"][dup].astype(np.int64),
                      self.shards)
        return {"key": item.key, "rows_in": len(order), "duplicated_lines": int((total > 1).sum()),
                "peak_rss_mb": peak_rss_mb()}


class MarkWorker:
    def __init__(self, cfg: LineDedupConfig, phase_dir: str):
        self.cfg, self.phase_dir = cfg, phase_dir

    def run(self, item, attempt: int) -> dict:
        d = shuffle_read(join(self.phase_dir, "counts", "out"), item.ordinal, DUPS)
        dh = d.column("hash").to_numpy()
        order = np.argsort(dh)
        dh = dh[order]
        first_doc, first_line = d.column("first_doc").to_numpy()[order], d.column("first_line").to_numpy()[order]
        ids, marks, row, removed = [], [], 0, 0
        for domain, t in read_shard(item, ["id", "text"], self.cfg.batch_rows):
            if not self.cfg.takes(domain):
                row += t.num_rows
                continue
            h, r, ln = line_table(t.column("text"), row)
            pos = np.clip(np.searchsorted(dh, h), 0, max(len(dh) - 1, 0))
            hit = dh[pos] == h if len(dh) else np.zeros(len(h), bool)
            if self.cfg.keep_first and len(dh):
                me = (np.int64(item.ordinal) << 32) | r
                hit &= ~((first_doc[pos] == me) & (first_line[pos] == ln))
            local = r[hit] - row
            ids.append(pc.take(t.column("id"), pa.array(local)))
            marks.append(ln[hit])
            removed += int(hit.sum())
            row += t.num_rows
        table = pa.table({"id": pa.chunked_array([i for c in ids for i in (c.chunks if hasattr(c, "chunks")
                                                                         else [c])], pa.string()),
                          "line": np.concatenate(marks) if marks else np.zeros(0, np.int32)}, schema=MARKS)
        write_table_atomic(join(self.phase_dir, "results", f"{item.key}.parquet"), table)
        return {"key": item.key, "rows_in": row, "lines_removed": removed, "peak_rss_mb": peak_rss_mb()}


def run_line_dedup(cfg: LineDedupConfig, ctx) -> dict:
    shards = shard_items(ctx)
    partitions = cfg.partitions or max(1, len(shards))
    q = ctx.run_on_actors("hashes", shards, functools.partial(HashWorker, cfg, ctx.phase_dir, partitions))
    if q:
        return {"quarantined": q}
    q = ctx.run_on_actors("counts", partition_items(partitions), functools.partial(CountWorker, ctx.phase_dir,
                                                                                   len(shards)))
    if q:
        return {"quarantined": q}
    q = ctx.run_on_actors("marks", shards, functools.partial(MarkWorker, cfg, ctx.phase_dir))
    h = ctx.committed("hashes").values()
    m = ctx.committed("marks").values()
    return {"quarantined": q, "partitions": partitions, "lines": sum(e["lines"] for e in h),
            "lines_removed": sum(e["lines_removed"] for e in m)}


KIND = PhaseKind(name="line_dedup", config=LineDedupConfig, run=run_line_dedup, reads=lambda cfg: ("id", "text"),
                 writes_for_stages=lambda cfg: ("text", "line_dedup_removed_v1", "line_dedup_empty_v1"))
