"""Where things are inside a run folder (`<output>/<job name>/`), for every tool that reads one.

A run folder is self-contained and relocatable: every path a file inside it records is relative to the
run folder, and is resolved against the folder the reader was given, never against the working
directory of the process that wrote it. So a copied or moved run folder reads its own data, and a
recorded path that does not exist there is refused instead of read from somewhere else.

    job.resolved.yaml      the spec with every default filled in
    stats.json             per-phase totals; `final_data` and each phase's `dir` relative to the run
    NN-<phase>-<hash>/     one folder per phase:
      data/, rejected/       kept and dropped documents, `domain=X/part-<key>.parquet`
      ledger/<key>.json      a committed shard (the commit point); quarantine/<key>.json a failed one
      stats.json, stats.parquet   the phase's merged counters; _DONE.json: a finished cross-shard phase
    final/                 the corpus: the last map phase's kept documents, Hive-partitioned by domain
    export-megatron-<tokenizer sha>/, export_stats.json   what `refinery export megatron` writes

Every tool that reads or writes these names takes them from here.
"""

from __future__ import annotations

import os
from typing import Any

from corpus.io.files import expand_paths, filesystem, join, read_json

STATS = "stats.json"
RESOLVED_JOB = "job.resolved.yaml"
FINAL = "final"
"""The final corpus, published when a job ends without quarantined shards."""
PARQUET_GLOB = "*/*.parquet"
"""Part files under a Hive-partitioned data folder: `domain=X/part-N.parquet`."""
EXPORT_STATS = "export_stats.json"
"""Tokens per domain of the run's Megatron export, next to the run's stats.json."""

# Inside a phase folder
DATA = "data"
REJECTED = "rejected"
LEDGER = "ledger"
QUARANTINE = "quarantine"
PHASE_STATS = "stats.json"
"""A phase's merged counters (it has `phase` where the run's stats.json has `job`)."""
PHASE_STATS_TABLE = "stats.parquet"
DONE = "_DONE.json"
"""A cross-shard phase that finished: the executor skips it on a rerun."""


class RunFolderError(FileNotFoundError):
    """A run folder, or a path recorded in it, that is not there."""


def run_dir(output: str, job_name: str) -> str:
    return join(output, job_name)


def final_dir(run: str) -> str:
    return join(run, FINAL)


def export_dir(run: str, tokenizer_sha256: str) -> str:
    """The default folder of the run's Megatron export: one per tokenizer."""
    return join(run, f"export-megatron-{tokenizer_sha256[:10]}")


def ledger_entry(phase_dir: str, key: str) -> str:
    return join(phase_dir, LEDGER, f"{key}.json")


def quarantine_entry(phase_dir: str, key: str) -> str:
    return join(phase_dir, QUARANTINE, f"{key}.json")


def relative_to(base: str, path: str) -> str:
    """`path` as recorded in a file of the folder `base`: relative, with `/` separators. Both must be on
    the same filesystem (both local, or both under the same URI scheme)."""
    if "://" in base or "://" in path:
        prefix = base.rstrip("/") + "/"
        if not path.startswith(prefix):
            raise ValueError(f"{path} is not inside {base}")
        return path[len(prefix):]
    return os.path.relpath(os.path.abspath(path), os.path.abspath(base)).replace(os.sep, "/")


def record_path(base: str, path: str) -> str:
    """How a file in the folder `base` records `path`: relative to `base` when both are on the same
    filesystem (so they move together), else the URI or absolute path as is (another filesystem does not
    move with the folder)."""
    scheme = lambda p: p.split("://", 1)[0] if "://" in p else "file"  # noqa: E731
    if scheme(base) != scheme(path) or ("://" in path and not path.startswith(base.rstrip("/") + "/")):
        return path
    return relative_to(base, path)


def resolve(base: str, recorded: str, what: str) -> str:
    """A path recorded relative to `base`, resolved there; RunFolderError (naming `what` and the fix)
    when it is absolute or missing."""
    if "://" in recorded or os.path.isabs(recorded):
        raise RunFolderError(f"{base}: {what} is recorded as {recorded!r}, outside the folder (written by an "
                             f"older refinery). Fix: run the same `refinery build` again: it skips every "
                             f"done shard and rewrites the paths relative to the run folder.")
    path = join(base, recorded) if recorded not in ("", ".") else base
    fs, p = filesystem(path)
    if not fs.exists(p):
        raise RunFolderError(f"{base}: {what} {recorded!r} does not exist there ({path}). Fix: copy the "
                             f"whole run folder, or run the same `refinery build` again.")
    return path


def read_stats(run: str) -> dict[str, Any]:
    """The run's stats.json; RunFolderError when the folder holds no finished build."""
    path = join(run, STATS)
    fs, p = filesystem(path)
    if not fs.exists(p):
        raise RunFolderError(f"no {STATS} in {run}: is it <output>/<job name> of a finished `refinery build`? "
                             f"(a build writes it when its last phase ends)")
    return read_json(path)


def final_data(run: str) -> str:
    """The folder of the run's final corpus, checked to exist."""
    stats = read_stats(run)
    recorded = stats.get("final_data")
    if not recorded:
        raise RunFolderError(f"{run}: the build ended with quarantined shards (exit code {stats.get('exit_code')}), "
                             f"so no final corpus was published. Fix: see <phase dir>/quarantine/, fix the cause, "
                             f"and run the same `refinery build` again.")
    return resolve(run, recorded, "final_data")


def final_parquet_files(run: str) -> list[str]:
    """The part files of the final corpus, sorted."""
    folder = final_data(run)
    files = expand_paths([join(folder, PARQUET_GLOB)])
    if not files:
        raise RunFolderError(f"{folder}: no domain=*/part-*.parquet files (the job kept no document)")
    return files


def phase_dirs(run: str) -> list[tuple[str, str]]:
    """(phase name, folder) of each phase the last build ran, in order."""
    return [(p["name"], resolve(run, p["dir"], f"phase {p['name']!r} folder")) for p in read_stats(run)["phases"]]


def phase_data_files(run: str, phase: str | None = None) -> list[str]:
    """Kept-document part files of one map phase of the run (default: its first map phase)."""
    candidates = [(name, folder) for name, folder in phase_dirs(run)
                  if _exists(join(folder, DATA)) and (phase is None or name == phase)]
    if not candidates:
        raise RunFolderError(f"{run}: no map phase" + (f" named {phase!r}" if phase else "")
                             + f" with a data/ folder. Fix: name one of {[n for n, _ in phase_dirs(run)]}")
    data = join(candidates[0][1], DATA)
    files = expand_paths([join(data, PARQUET_GLOB)])
    if not files:
        raise RunFolderError(f"{data}: no Parquet files")
    return files


def _exists(path: str) -> bool:
    fs, p = filesystem(path)
    return fs.exists(p)
