"""A run folder's phase folders: which ones the current spec uses, how far each got, and which are
left over from earlier settings.

Phase folders are keyed by a hash of their settings and everything upstream, so a changed threshold
writes next to the old folder instead of mixing with it; the old one stays until someone removes it.
"""

from __future__ import annotations

import dataclasses
import os
import re

from corpus.io.files import filesystem, join
from corpus.runtime import layout, ledger
from corpus.runtime.executor import planned_phase_dirs
from corpus.runtime.spec import JobSpec

# `NN-name-hash`, as corpus.runtime.executor.phase_dir_name writes them.
PHASE_FOLDER = re.compile(r"^\d{2}-[a-z0-9][a-z0-9_\-]*-[0-9a-f]{10}$")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PhaseFolder:
    name: str
    path: str
    status: str
    """`done`, `done, N quarantined`, `partial: N shards committed`, or `not run`."""


def phase_status(job: JobSpec) -> list[PhaseFolder]:
    """Each phase of `job` with the folder it writes and what a build would find there."""
    out = []
    for phase, path in zip(job.phases, planned_phase_dirs(job)):
        out.append(PhaseFolder(name=phase.name, path=path, status=_status(path, phase.kind)))
    return out


def _status(path: str, kind: str) -> str:
    fs, p = filesystem(path)
    if kind != "map":
        return "done" if fs.exists(join(p, layout.DONE)) else "not run"
    quarantined = len(ledger.quarantined(path))
    if fs.exists(join(p, layout.PHASE_STATS)):  # written when the phase ended
        return f"done, {quarantined} quarantined" if quarantined else "done"
    committed = len(ledger.committed(path))
    return f"partial: {committed} shards committed" if committed else "not run"


def unused_phase_folders(run_dir: str, used: list[str]) -> list[str]:
    """Phase folders in `run_dir` other than `used` (folders or folder names): left by older settings."""
    fs, p = filesystem(run_dir)
    if not fs.exists(p):
        return []
    keep = {os.path.basename(d.rstrip("/")) for d in used}
    names = sorted(os.path.basename(x.rstrip("/")) for x in fs.ls(p, detail=False) if fs.isdir(x))
    return [join(run_dir, n) for n in names if PHASE_FOLDER.match(n) and n not in keep]
