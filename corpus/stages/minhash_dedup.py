"""Marks near-duplicates found by a `minhash_dedup` phase: adds `minhash_cluster_v2` (the cluster's
survivor node key) and `minhash_duplicate_v2` (true for every member but the survivor). Dropping is the
job's `select` step: `{column: minhash_duplicate_v2, op: "==", value: true, reason: near_duplicate}`.
v2 (2026-11-30): clusters no longer chain. The survivor is the kept document a member was verified against
(corpus/dedup/survivors.py); v1 marked whole connected components, so A~B~C removed C for resembling B.

It must run in a map phase that reads the same upstream phase as the dedup phase (results are joined on
`id`, one shard's results at a time).
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from corpus.config import ConfigError, setting
from corpus.dedup.results import ShardResults
from corpus.sources.base import Shard
from corpus.stages.base import BuildContext, StageSpec, fixed


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class MinhashMarkConfig:
    index_phase: str = setting(doc="name of the minhash_dedup phase of this job whose results to join")


class ResultsMarker:
    """Shared by the exact and MinHash marking stages: joins per-shard results on `id`."""

    def __init__(self, index_phase: str, ctx: BuildContext, cluster_col: str, dup_col: str):
        if index_phase not in ctx.phase_dirs:
            raise ConfigError(f"{ctx.stage}.index_phase: no earlier phase named '{index_phase}' (earlier: "
                              f"{', '.join(ctx.phase_dirs) or 'none'}). Fix: name the dedup phase.")
        self.results = ShardResults(ctx.phase_dirs[index_phase], ctx.stage)
        self.cluster_col, self.dup_col = cluster_col, dup_col

    def start_shard(self, shard: Shard) -> None:
        self.results.start_shard(shard)

    def __call__(self, batch: pa.Table) -> pa.Table:
        cluster, dup = self.results.lookup(batch.column("id"))
        return batch.append_column(pa.field(self.cluster_col, pa.int64()), cluster).append_column(
            pa.field(self.dup_col, pa.bool_()), dup)


def marker_spec(name: str, config: type, cluster_col: str, dup_col: str) -> StageSpec:
    """The stage that joins a dedup phase's results (`config` has `index_phase`) onto the documents."""
    return StageSpec(
        name=name,
        config=config,
        kind="score",
        build=lambda cfg, ctx: ResultsMarker(cfg.index_phase, ctx, cluster_col, dup_col),
        reads=fixed("id"),
        writes=fixed(cluster_col, dup_col),
        types=lambda _cfg: {cluster_col: pa.int64(), dup_col: pa.bool_()},
    )


SPEC = marker_spec("minhash_dedup", MinhashMarkConfig, "minhash_cluster_v2", "minhash_duplicate_v2")
