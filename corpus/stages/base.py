"""What the runtime needs to know about a per-document stage, and the one registry of them.

A stage module holds `XConfig` (frozen settings) and either a pure `x(batch, cfg) -> batch` function or
an `XScorer(cfg)` class whose constructor loads its model once per actor. The module also exports
`SPEC`, a StageSpec, that names the stage for job files and declares which columns it reads and writes,
so a job's plan is checked before Ray starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, Protocol, runtime_checkable

import pyarrow as pa

from corpus.sources.base import Shard

BatchFn = Callable[[pa.Table], pa.Table]


@runtime_checkable
class StartsShards(Protocol):
    """A built stage that must know which shard its next batches come from (a dedup marker loads that
    shard's results; the chaos stage fires on one input). The runtime calls `start_shard` before the
    shard's first batch, with the shard itself: `shard.key` is the upstream shard's key, the name its
    part files, ledger entries and a dedup phase's per-shard results share; `shard.parts` its part files
    (empty in the first phase, which reads `shard.path`)."""

    def start_shard(self, shard: Shard) -> None: ...


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class BuildContext:
    """What a stage may learn about its place in the job when the actor builds it."""

    phase: str
    """Name of the phase the stage runs in."""
    stage: str
    """Name the stage has in the job file."""
    column_origin: dict[str, str]
    """Column name -> name of the stage that wrote it ('source' for the reader's columns)."""
    work_dir: str
    """The phase's output folder: the only place a stage may write side files (markers, caches)."""
    phase_dirs: dict[str, str] = dataclasses.field(default_factory=dict)
    """Folders of the earlier phases by name: a stage reads a cross-shard phase's results from there."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class StageSpec:
    name: str
    """Key that names the stage in a job file."""
    config: type
    """The frozen XConfig dataclass."""
    kind: Literal["transform", "score", "select"]
    """transform rewrites columns it reads, score only adds versioned columns, select routes rows."""
    build: Callable[[Any, BuildContext], BatchFn]
    """Makes the batch callable once per actor. A select callable returns the batch with a `drop_reason`
    column (null = keep) and a `drop_stage` column; the runtime splits it."""
    reads: Callable[[Any], tuple[str, ...]]
    """Columns the stage needs, given its config."""
    writes: Callable[[Any], tuple[str, ...]]
    """Columns the stage adds or rewrites, given its config."""
    types: Callable[[Any], dict[str, pa.DataType]] = lambda _cfg: {}
    """Arrow type of the columns it adds, given its config: the plan check tries each select rule
    against them, so `value: 5O` on a number column fails before Ray starts, naming the rule."""
    files: Callable[[Any], tuple[tuple[str, str], ...]] = lambda _cfg: ()
    """(path, fix) of every file the stage will load, given its config: checked before Ray starts, so
    a missing model is one line that names the command which makes it."""
    fingerprint: Callable[[Any], dict[str, Any]] = lambda _cfg: {}
    """What the stage computes with beyond its settings: the sha256 of each model or data file it will
    load (read from the file's own metadata, not from the job file). The phase folder is keyed by it, so
    a retrained model writes a new folder instead of resuming into output of the old one."""


def fixed(*columns: str) -> Callable[[Any], tuple[str, ...]]:
    """A reads/writes declaration that does not depend on the config."""
    return lambda _cfg: tuple(columns)
