"""Cross-shard phases: work that needs every shard of the phase before it (line-hash counts, MinHash
buckets, connected components). A barrier separates them from the map phases around them.

A cross-shard phase reads the previous map phase's committed output and writes its results (an
index, cluster assignments) into its own phase folder. It passes the documents through untouched:
the next map phase reads the same data the cross-shard phase read, and its stages find the results
through `BuildContext.phase_dirs[<phase name>]`. A kind implements `run(cfg, ctx)`; it is resumable
by writing its sub-steps through `ctx.run_on_actors` (ledger per item) or its own done markers. The
executor marks the whole phase done with `_DONE.json` and skips it on a rerun.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from corpus.io.files import join
from corpus.runtime.pool import ActorPool, run_on_actors


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class CrossShardContext:
    phase: str
    """Name of this phase in the job."""
    phase_dir: str
    """This phase's folder: write results here (sub-folders per step)."""
    upstream_dir: str
    """The map phase whose output this phase reads (its `data/` and `ledger/`)."""
    upstream_entries: dict[str, dict]
    """Ledger entries of the upstream phase: key -> entry; entry['files']['data'] lists part files."""
    phase_dirs: dict[str, str]
    """Folders of every earlier phase by name (to read another cross-shard phase's results)."""
    workers: int
    max_retries: int
    progress: bool
    pool: ActorPool | None = None
    """Actors kept between steps (None: each step starts and ends its own)."""

    def upstream_parts(self) -> dict[str, list[str]]:
        """key -> the upstream part files of that shard (one per domain)."""
        return {k: [join(self.upstream_dir, "data", f["path"]) for f in e["files"]["data"]]
                for k, e in sorted(self.upstream_entries.items()) if e["files"]["data"]}

    def run_on_actors(self, step: str, items: Sequence[Any], factory: Callable[[], Any]) -> list[str]:
        """Run items through the actor pool with a ledger in `<phase_dir>/<step>/`; skips committed items.
        Returns quarantined keys."""
        from corpus.runtime import ledger

        step_dir = join(self.phase_dir, step)
        done = ledger.committed(step_dir)
        todo = [i for i in items if i.key not in done]
        return run_on_actors(phase_dir=step_dir, items=todo, factory=factory, workers=self.workers,
                             max_retries=self.max_retries, desc=f"phase {self.phase}/{step}",
                             progress=self.progress, total=len(items), pool=self.pool)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PhaseKind:
    name: str
    """Value of `kind:` in a job file."""
    config: type
    """Frozen XConfig of the phase's `settings:`."""
    run: Callable[[Any, CrossShardContext], dict[str, Any]]
    """Does the work; returns summary stats (written to the phase's stats.json)."""
    reads: Callable[[Any], tuple[str, ...]] = lambda cfg: ("id", "text")
    """Columns it needs in the upstream data."""
    writes_for_stages: Callable[[Any], tuple[str, ...]] = lambda cfg: ()
    """Informational: what its results let later stages add."""
