"""The `minhash_dedup` phase kind: MinHash signatures -> LSH buckets -> components -> per-shard results.

Steps (each through `ctx.run_on_actors`, so ledgered, retried and resumable):
1. signatures (per upstream shard): shingles, signatures and band hashes of every document; rows
   (bucket, node) shuffled by bucket hash to P partitions; the shard's (id, node) list.
2. buckets (per partition): documents sharing a band bucket become candidate pairs
   (corpus.dedup.buckets).
3. shingles, verify (default on, per upstream shard): candidate pairs are linked only when the exact
   Jaccard of their shingle sets reaches the threshold (corpus.dedup.verify). Bands and rows are then chosen for
   recall at the threshold (corpus.dedup.lsh.choose_candidate_bands): the check removes what they let
   through below it.
4. components of the links (corpus.dedup.components), then survivors without chaining
   (corpus.dedup.survivors): a document is removed only for a kept document it is linked to.
5. results (per upstream shard): (id, cluster, duplicate), cluster being the survivor's node key; the
   next map phase's `minhash_dedup` stage joins them and `select` drops the duplicates.
With `reference:` (the folder of this phase in an earlier job), the earlier corpus's buckets join in
with priority 0: its documents always survive, so the new corpus is deduplicated against it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import numpy as np
import pyarrow as pa

from corpus.config import ConfigError, setting
from corpus.dedup.buckets import BUCKETS, BucketWorker
from corpus.dedup.components import star_forest
from corpus.dedup.layout import (drilled, node_keys, partition_items, partition_of, peak_rss_mb, read_shard, shard_items,
                                 shuffle_write, write_table_atomic)
from corpus.dedup.lsh import band_hashes, choose_bands, choose_candidate_bands
from corpus.dedup.minhash import HASH_FAMILY, text_signatures
from corpus.dedup.results import NODES, ResultsWorker, nodes_path
from corpus.dedup.survivors import ComponentLinks, Survivors
from corpus.io.files import filesystem, join, read_json, write_json_atomic
from corpus.dedup.kind import PhaseKind

@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MinhashDedupConfig:
    threshold: float = setting(0.8, doc="Jaccard similarity of word n-gram sets at which a document is a "
                               "near-duplicate (sets bands x rows when they are 0)", gt=0, lt=1)
    num_perm: int = setting(128, doc="MinHash permutations per document", unit="hashes", ge=1, le=1024)
    bands: int = setting(0, doc="LSH bands (0: derived from threshold and num_perm: for recall at the "
                         "threshold with verify, else for the least error area)", ge=0)
    rows: int = setting(0, doc="rows per band (0: derived)", ge=0)
    ngram: int = setting(5, doc="shingle length", unit="words or bytes", ge=1, le=64)
    mode: Literal["word", "char"] = setting("word", doc="word n-grams, or byte n-grams of the normalized text")
    seed: int = setting(1, doc="seed of the permutations (indexes to compare must share it)", ge=0)
    partitions: int = setting(0, doc="shuffle partitions for buckets and components (0: one per upstream "
                              "shard); memory per worker scales with 1 / partitions", ge=0)
    priority: dict[str, int] | None = setting(None, doc="domain -> priority (lower survives; default 0 each)")
    reference: str | None = setting(None, doc="folder of this phase in an earlier job: deduplicate against "
                                    "that corpus (its documents are kept)")
    batch_rows: int = setting(4096, doc="documents per signature batch", unit="rows", ge=1)
    verify: bool = setting(True, doc="check the exact Jaccard of each candidate pair's shingle sets and "
                           "link only pairs at or above threshold (costs a read of the texts again); false: "
                           "every LSH candidate pair is a link (faster, removes pairs below the threshold)")
    drill_kill_step: str | None = setting(None, doc="recovery drill: kill the worker once in this step "
                                          "(signatures, buckets, verify, cc-000-large, links, survivors, results ...)")

    def __post_init__(self) -> None:
        if (self.bands == 0) != (self.rows == 0):
            raise ConfigError("bands and rows: set both, or neither (derived from threshold). Fix: bands: 0, rows: 0")
        if self.bands * self.rows > self.num_perm:
            raise ConfigError(f"bands x rows = {self.bands * self.rows} exceeds num_perm {self.num_perm}. "
                              f"Fix: raise num_perm or lower bands/rows.")
        for d, p in (self.priority or {}).items():
            if not 0 <= p <= 100:
                raise ConfigError(f"priority.{d}: {p} out of range. Fix: use 0..100 (lower survives)")


def lsh_params(cfg: MinhashDedupConfig) -> tuple[int, int]:
    if cfg.bands:
        return cfg.bands, cfg.rows
    return (choose_candidate_bands if cfg.verify else choose_bands)(cfg.threshold, cfg.num_perm)


def doc_priority(cfg, domain: str) -> int:
    return 1 + (cfg.priority or {}).get(domain, 0)  # 0 is the reference corpus's


class SignatureWorker:
    def __init__(self, cfg: MinhashDedupConfig, phase_dir: str, partitions: int):
        self.cfg, self.phase_dir, self.n = cfg, phase_dir, partitions
        self.bands, self.rows = lsh_params(cfg)

    def run(self, item, attempt: int) -> dict:
        cfg, row = self.cfg, 0
        buckets, bucket_nodes, id_chunks, node_chunks = [], [], [], []
        for domain, t in read_shard(item, ["id", "text"], cfg.batch_rows):
            n = t.num_rows
            nodes = node_keys(np.full(n, doc_priority(cfg, domain)), item.ordinal, np.arange(row, row + n))
            row += n
            sigs = text_signatures(t.column("text"), num_perm=cfg.num_perm, seed=cfg.seed, ngram=cfg.ngram,
                                   mode=cfg.mode)
            bh = band_hashes(sigs, self.bands, self.rows)  # (n, bands); 0 for documents without shingles
            has = bh[:, 0] != 0
            buckets.append(bh[has].reshape(-1))
            bucket_nodes.append(np.repeat(nodes[has], self.bands))
            id_chunks.extend(t.column("id").chunks)
            node_chunks.append(nodes)
        write_table_atomic(nodes_path(self.phase_dir, item.key), pa.table(
            {"id": pa.chunked_array(id_chunks, pa.string()),
             "node": np.concatenate(node_chunks) if node_chunks else np.zeros(0, np.int64)}, schema=NODES))
        b = np.concatenate(buckets) if buckets else np.zeros(0, np.uint64)
        nd = np.concatenate(bucket_nodes) if bucket_nodes else np.zeros(0, np.int64)
        shuffle_write(join(self.phase_dir, "signatures", "out"), item.key,
                      pa.table({"bucket": b, "node": nd}, schema=BUCKETS), partition_of(b, self.n), self.n)
        return {"key": item.key, "rows_in": row, "bucket_rows": len(b), "peak_rss_mb": peak_rss_mb()}


def _run_step(ctx, drill_step, step: str, items, factory):
    return ctx.run_on_actors(step, items, drilled(factory, step, drill_step, ctx.phase_dir))


def run_minhash_dedup(cfg: MinhashDedupConfig, ctx) -> dict:
    shards = shard_items(ctx)
    bands, rows = lsh_params(cfg)
    params = {"num_perm": cfg.num_perm, "bands": bands, "rows": rows, "ngram": cfg.ngram, "mode": cfg.mode,
              "seed": cfg.seed, "hash_family": HASH_FAMILY}
    partitions = cfg.partitions or max(1, len(shards))
    if cfg.reference:
        ref = read_json(join(cfg.reference, "params.json"))
        if ref.get("hash_family") != HASH_FAMILY:  # absent: built before the family was recorded (family 1)
            raise ConfigError(f"reference {cfg.reference}: its signatures use MinHash hash family "
                              f"{ref.get('hash_family', 1)}, this refinery computes family {HASH_FAMILY}, and "
                              f"signatures of different families never match. Fix: rebuild the reference's "
                              f"minhash_dedup phase with this version.")
        if {k: ref.get(k) for k in params} != params:
            raise ConfigError(f"reference {cfg.reference}: its index was built with {ref}, this phase uses "
                              f"{params}. Fix: use the same num_perm, bands, rows, ngram, mode and seed.")
        if cfg.partitions and cfg.partitions != ref["partitions"]:
            raise ConfigError(f"reference has {ref['partitions']} partitions. Fix: partitions: 0 or "
                              f"{ref['partitions']}")
        partitions = ref["partitions"]
    params_path = join(ctx.phase_dir, "params.json")
    fs, local = filesystem(params_path)
    if fs.exists(local):  # a resumed run: its earlier steps must have used the same parameters
        before = read_json(params_path)
        before.setdefault("hash_family", 1)  # written before families were recorded
        if {k: before.get(k) for k in params} != params:
            raise ConfigError(f"{ctx.phase_dir}: this phase was started with {before}, this run computes "
                              f"{params} (another refinery version?); its finished steps would not match "
                              f"the rest. Fix: delete that folder to rebuild the phase.")
    write_json_atomic(params_path, {**params, "partitions": partitions})
    summary: dict = {"bands": bands, "rows": rows, "num_perm": cfg.num_perm, "partitions": partitions}
    run = functools.partial(_run_step, ctx, cfg.drill_kill_step)
    q = run("signatures", shards, functools.partial(SignatureWorker, cfg, ctx.phase_dir, partitions))
    if q:
        return {**summary, "quarantined": q}
    parts = partition_items(partitions)
    q = run("buckets", parts, functools.partial(BucketWorker, ctx.phase_dir, partitions, cfg.reference,
                                                len(shards) if cfg.verify else 0))
    if q:
        return {**summary, "quarantined": q}
    entries = ctx.committed("buckets").values()
    summary["candidate_edges"] = sum(e["candidate_edges"] for e in entries)
    edges = join(ctx.phase_dir, "buckets", "out")
    if cfg.verify:
        from corpus.dedup.verify import ShingleSetWorker, VerifyWorker

        q = run("shingles", shards, functools.partial(ShingleSetWorker, cfg, ctx.phase_dir, len(shards)))
        if q:
            return {**summary, "quarantined": q}
        q = run("verify", shards, functools.partial(VerifyWorker, cfg, ctx.phase_dir, partitions))
        if q:
            return {**summary, "quarantined": q}
        summary["verified_edges"] = sum(e["verified_edges"] for e in ctx.committed("verify").values())
        edges = join(ctx.phase_dir, "verify", "out")
    cc, forest = star_forest(ctx, edges, partitions, drill_step=cfg.drill_kill_step)
    summary.update(cc)
    if cc["quarantined"]:
        return summary
    parts = partition_items(partitions)
    q = run("links", parts, functools.partial(ComponentLinks, forest, edges, join(ctx.phase_dir, "links", "out"),
                                               partitions))
    if q:
        return {**summary, "quarantined": q}
    q = run("survivors", parts, functools.partial(Survivors, join(ctx.phase_dir, "links", "out"),
                                                   join(ctx.phase_dir, "survivors", "out"), len(shards)))
    if q:
        return {**summary, "quarantined": q}
    summary["leaves"] = sum(e["leaves"] for e in ctx.committed("survivors").values())
    q = run("results", shards, functools.partial(ResultsWorker, ctx.phase_dir, join(ctx.phase_dir, "survivors", "out")))
    entries = ctx.committed("results").values()
    summary.update(quarantined=q, documents=sum(e["rows_in"] for e in entries),
                   duplicates=sum(e["duplicates"] for e in entries))
    return summary


KIND = PhaseKind(name="minhash_dedup", config=MinhashDedupConfig, run=run_minhash_dedup,
                 reads=lambda cfg: ("id", "text"),
                 writes_for_stages=lambda cfg: ("minhash_cluster_v2", "minhash_duplicate_v2"))
