"""The runtime's side of a cross-shard phase: `CrossShardContext` implements corpus.dedup.kind's
PhaseContext with the job's actor pool and a ledger per step (the executor builds one per phase, runs
the kind, and marks the phase done with `_DONE.json`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from corpus.dedup.kind import StepWorker, WorkItem
from corpus.io.files import join
from corpus.runtime import layout, ledger
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
        return {k: [join(self.upstream_dir, layout.DATA, f["path"]) for f in e["files"]["data"]]
                for k, e in sorted(self.upstream_entries.items()) if e["files"]["data"]}

    def run_on_actors(self, step: str, items: Sequence[WorkItem], factory: Callable[[], StepWorker]) -> list[str]:
        """Run items through the actor pool with a ledger in `<phase_dir>/<step>/`; skips committed items.
        Returns quarantined keys."""
        step_dir = join(self.phase_dir, step)
        done = ledger.committed(step_dir)
        todo = [i for i in items if i.key not in done]
        return run_on_actors(phase_dir=step_dir, items=todo, factory=factory, workers=self.workers,
                             max_retries=self.max_retries, desc=f"phase {self.phase}/{step}",
                             progress=self.progress, total=len(items), pool=self.pool)

    def committed(self, step: str) -> dict[str, dict[str, Any]]:
        return ledger.committed(join(self.phase_dir, step))
