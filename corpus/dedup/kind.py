"""The contract between the runtime and a cross-shard phase kind (`kind:` in a job file).

A kind is work that needs every shard of the map phase before it (line-hash counts, MinHash buckets,
connected components); a barrier separates it from the map phases around it. It reads the upstream
phase's committed part files and writes its results (an index, cluster assignments) into its own phase
folder; the documents pass through untouched, and a later map phase's stages find the results through
`BuildContext.phase_dirs[<phase name>]`.

The kinds live in corpus/dedup and see the runtime only through `PhaseContext`, which the runtime
implements with Ray actors and a ledger per step (corpus.runtime.cross_shard) and corpus.dedup.local in
one process. So dedup never imports the runtime, and the runtime imports the kinds (corpus.dedup.kinds)
like any other library. A kind is resumable by running its sub-steps through `run_on_actors`, which
skips items already committed; the runtime marks the whole phase done and skips it on a rerun.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, Sequence


class WorkItem(Protocol):
    key: str
    """Names the item's ledger entry in its step: committed keys are skipped on a rerun."""


class StepWorker(Protocol):
    def run(self, item: Any, attempt: int) -> dict[str, Any]:
        """Does one item and returns its ledger entry (`key` included)."""


class PhaseContext(Protocol):
    """What a kind may ask of the runtime that runs it."""

    phase: str
    """Name of this phase in the job."""
    phase_dir: str
    """This phase's folder: results go here (a sub-folder per step)."""
    upstream_dir: str
    """The map phase whose committed output this phase reads."""

    def upstream_parts(self) -> dict[str, list[str]]:
        """Upstream shard key -> its part files (one per domain), in key order."""

    def run_on_actors(self, step: str, items: Sequence[WorkItem],
                      factory: Callable[[], StepWorker]) -> list[str]:
        """Runs the items not yet committed in `<phase_dir>/<step>/` on workers built by `factory` (once
        per worker), each entry committed to that step's ledger. Returns the keys quarantined."""

    def committed(self, step: str) -> dict[str, dict[str, Any]]:
        """Key -> ledger entry of every item of `step` committed so far (to sum a step's counters)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PhaseKind:
    name: str
    """Value of `kind:` in a job file."""
    config: type
    """Frozen XConfig of the phase's `settings:`."""
    run: Callable[[Any, PhaseContext], dict[str, Any]]
    """Does the work; returns summary stats (written to the phase's stats.json). A non-empty
    `quarantined` list in it leaves the phase unfinished, to be resumed."""
    reads: Callable[[Any], tuple[str, ...]] = lambda cfg: ("id", "text")
    """Columns it needs in the upstream data."""
    writes_for_stages: Callable[[Any], tuple[str, ...]] = lambda cfg: ()
    """What its results let later stages add (part of the phase's folder identity)."""
