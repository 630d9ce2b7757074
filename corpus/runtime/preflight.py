"""Checks that need the file system but not Ray: input globs that match nothing and model files that
are not there. `refinery validate` and `refinery build` run them before a cluster starts, so such a
job fails in a second with one line per problem instead of inside an actor a minute later.
"""

from __future__ import annotations

import os

from corpus.io.files import expand_paths, filesystem
from corpus.runtime.spec import JobSpec
from corpus.sources import SOURCES
from corpus.stages import STAGES


def find_problems(job: JobSpec) -> list[str]:
    """One line per input that matches no file and per model file that does not exist."""
    problems = []
    for index, spec in enumerate(job.inputs):
        patterns = [p if "://" in p or os.path.isabs(p) else os.path.join(job.base_dir, p) for p in spec.paths]
        if not expand_paths(patterns, walk_folders=not SOURCES[spec.source].folder_shards):
            problems.append(f"inputs[{index}]: no file matches {list(spec.paths)} (read from {job.base_dir}). "
                            f"Fix: {input_fix(patterns)}")
    for pi, phase in enumerate(job.phases):
        for si, entry in enumerate(phase.stages):
            for path, fix in STAGES[entry.name].files(entry.config):
                if not _exists(path):
                    problems.append(f"job.phases[{pi}] ({phase.name}).stages[{si}] ({entry.name}): {path} does "
                                    f"not exist. Fix: {fix}")
    return problems


def input_fix(patterns: list[str]) -> str:
    """The sample corpus lives in a `samples` folder the job names: say the fetch that fills that one."""
    for pattern in patterns:
        parts = os.path.normpath(pattern).split(os.sep)
        if "samples" in parts and "://" not in pattern:
            folder = os.sep.join(parts[: parts.index("samples") + 1]) or os.sep
            return f"refinery samples fetch --dest {os.path.relpath(folder)}"
    return "check the paths (relative ones are read from the job file's folder)."


def _exists(path: str) -> bool:
    fs, p = filesystem(path if "://" in path else os.path.expanduser(path))
    return fs.exists(p)
