"""Fault injection for recovery drills: kill the worker process, or raise, in the middle of a shard.

Operators use it to prove on their own cluster that a killed worker loses nothing (the runtime's
contract tests use it the same way). It passes batches through unchanged until it fires. With
`once: true` it leaves a marker file in the phase folder before firing, so the retry or the rerun
goes through: the drill is "die once, then recover".
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Literal

import pyarrow as pa

from corpus.config import setting
from corpus.sources.base import Shard
from corpus.stages.base import BuildContext, StageSpec


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ChaosConfig:
    shard_source_contains: str = setting(doc="fire on shards whose input path contains this text")
    after_batches: int = setting(1, doc="batches of the shard to pass through before firing", unit="batches", ge=0)
    action: Literal["exit", "raise", "sleep"] = setting(
        "exit", doc="exit: os._exit(1) kills the actor; raise: an exception; sleep: slow every later batch down")
    sleep_s: float = setting(1.0, doc="with action sleep: pause per batch", unit="seconds", ge=0, le=600)
    once: bool = setting(True, doc="fire once per phase folder (a marker file remembers), then pass through")


class ChaosScorer:
    """Counts batches per shard; the runtime tells it the current shard through `start_shard`."""

    def __init__(self, cfg: ChaosConfig, ctx: BuildContext):
        self.cfg = cfg
        self.marker = os.path.join(ctx.work_dir, f"_chaos_fired_{ctx.stage}")
        self.armed = False
        self.seen = 0

    def start_shard(self, shard: Shard) -> None:
        self.armed = any(self.cfg.shard_source_contains in where for where in shard.locations())
        self.seen = 0

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self.armed:
            return batch
        if self.cfg.action == "sleep":  # a slow shard, for drills that kill nodes or the driver meanwhile
            if self.seen >= self.cfg.after_batches:
                time.sleep(self.cfg.sleep_s)
            self.seen += 1
            return batch
        if self.seen >= self.cfg.after_batches and not (self.cfg.once and os.path.exists(self.marker)):
            if self.cfg.once:
                with open(self.marker, "w") as f:
                    f.write("fired\n")
            if self.cfg.action == "exit":
                os._exit(1)
            raise RuntimeError(f"chaos: injected failure in {self.cfg.shard_source_contains}")
        self.seen += 1
        return batch


SPEC = StageSpec(
    name="chaos",
    config=ChaosConfig,
    kind="transform",
    build=lambda cfg, ctx: ChaosScorer(cfg, ctx),
    reads=lambda cfg: (),
    writes=lambda cfg: (),
)
