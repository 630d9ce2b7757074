"""The driver: runs a job's phases over shards on a pool of Ray actors, resumably.

Per phase: list the shards, skip those the ledger has, hand the rest to actors (each builds its
stages once), retry failures, quarantine shards that keep failing, check that the books balance,
and write merged stats. A killed actor is replaced and its shard retried; a killed driver is resumed
by running the same job again. When every shard committed, the last map phase's part files are
published as the run's corpus, `<run>/final/` (corpus.runtime.layout), before stats.json names it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from typing import Any, Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from corpus.io.files import (expand_paths, filesystem, is_local, join, publish_folder, remove_temp_files, write_atomic,
                             write_json_atomic)
from corpus.dedup.kinds import PHASE_KINDS
from corpus.io.parquet import PARTITION_KEY
from corpus.runtime import layout, ledger
from corpus.runtime.cross_shard import CrossShardContext
from corpus.runtime.plan import PhasePlan, check_plan
from corpus.runtime.pool import ActorPool, run_on_actors
from corpus.runtime.shard import PhaseTask, ShardRunner
from corpus.runtime.spec import JobSpec, PhaseSpec
from corpus.runtime.stats import check_conservation, merge_entries, stats_table
from corpus.sources import SOURCES
from corpus.sources.base import Shard
from schemas.local_ray import start_ray

EXIT_OK = 0
EXIT_QUARANTINED = 3


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C during a phase, with how far it got: committed shards are kept and a rerun resumes.
    A KeyboardInterrupt still, so that code which lets Ctrl-C through keeps doing so."""


@dataclasses.dataclass(kw_only=True)
class PhaseResult:
    name: str
    phase_dir: str
    shards: int
    skipped: int
    """Shards already in the ledger before this run."""
    quarantined: list[str]
    totals: dict[str, Any]
    kind: str = "map"


@dataclasses.dataclass(kw_only=True)
class JobResult:
    job_dir: str
    phases: list[PhaseResult]

    @property
    def exit_code(self) -> int:
        return EXIT_QUARANTINED if any(p.quarantined for p in self.phases) else EXIT_OK

    @property
    def final_data(self) -> str | None:
        """The published final corpus (`<run>/final`); None when shards were quarantined."""
        return layout.final_dir(self.job_dir) if self.exit_code == EXIT_OK else None


def job_dir(job: JobSpec) -> str:
    return layout.run_dir(job.output, job.name)


def run_job(job: JobSpec, *, address: str | None = None, progress: bool = True,
            on_phase: Callable[[PhaseResult], None] | None = None) -> JobResult:
    """Run every phase of `job`; returns what happened. Raises ConservationError if books don't balance."""
    import ray

    plans = check_plan(job)
    root = job_dir(job)
    fs, root_path = filesystem(root)
    if is_local(fs):  # the actors' working folder need not be the driver's: they get the driver's meaning
        root = root_path
    write_atomic(join(root, layout.RESOLVED_JOB), yaml.safe_dump(job.raw, sort_keys=False))
    if not ray.is_initialized():
        # No address: the embedded local cluster (token authentication, no dashboard, a watchdog);
        # `ray start --head` configures a real cluster.
        start_ray(address, num_cpus=max(job.runtime.workers, os.cpu_count() or 1))
    results: list[PhaseResult] = []
    upstream: tuple[str, dict[str, dict]] | None = None  # the last map phase: (dir, its ledger)
    chain_id = ""  # the previous phase's folder name: every phase's hash includes it
    phase_dirs: dict[str, str] = {}
    pool = ActorPool()  # one set of actor processes for every phase and step of the job
    try:
        for plan in plans:
            if job.phases[plan.index].kind == "map":
                result = _run_phase(job, plan, root, upstream, chain_id, phase_dirs, progress, pool)
                upstream = (result.phase_dir, ledger.committed(result.phase_dir))
            else:
                result = _run_cross_phase(job, plan, root, upstream, chain_id, phase_dirs, progress, pool)
            results.append(result)
            phase_dirs[result.name] = result.phase_dir
            chain_id = os.path.basename(result.phase_dir.rstrip("/"))
            if on_phase:
                on_phase(result)
    finally:
        pool.close()
    job_result = JobResult(job_dir=root, phases=results)
    last_map = [p for p in results if p.kind == "map"][-1]
    if job_result.exit_code == EXIT_OK:
        files = (_final_files(last_map.phase_dir)
                 or _empty_part(join(last_map.phase_dir, layout.DATA), job.inputs[0].domain))
        publish_folder(files, layout.final_dir(root))
    else:  # a final/ of an earlier build would pass for this one's
        fs, final_path = filesystem(layout.final_dir(root))
        if fs.exists(final_path):
            fs.rm(final_path, recursive=True)
    # Written last: its final_data names final/ only once final/ is complete. Paths are relative to the
    # run folder (corpus.runtime.layout), so the folder can be copied or moved and still read itself.
    write_json_atomic(join(root, layout.STATS), {
        "job": job.name, "exit_code": job_result.exit_code,
        "final_data": layout.FINAL if job_result.exit_code == EXIT_OK else None,
        "final_phase": last_map.name, "finished_at": time.time(),
        "phases": [{"name": p.name, "dir": layout.relative_to(root, p.phase_dir), "shards": p.shards,
                    "skipped": p.skipped, "quarantined": p.quarantined, **p.totals} for p in results]})
    return job_result


def _final_files(phase_dir: str) -> dict[str, str]:
    """`domain=X/part-N.parquet` -> the committed part file of the phase (what the ledger names; a stray
    file in data/ is not part of the corpus)."""
    return {f["path"]: join(phase_dir, layout.DATA, f["path"])
            for e in ledger.committed(phase_dir).values() for f in e["files"]["data"]}


EMPTY_PART = "part-empty.parquet"


def _empty_part(data_dir: str, domain: str) -> dict[str, str]:
    """A job that kept nothing still ends with a dataset: one Parquet file of zero rows, so that
    `read_parquet('<run>/final/*/*.parquet')` and the commands after build read it and see 0 documents
    instead of failing on a folder without files. Returns it as `_final_files` does."""
    from schemas.arrow import DOCUMENT_FILE_V1

    rel = f"{PARTITION_KEY}={domain}/{EMPTY_PART}"
    sink = pa.BufferOutputStream()
    pq.write_table(DOCUMENT_FILE_V1.empty_table(), sink)
    write_atomic(join(data_dir, rel), sink.getvalue().to_pybytes())
    return {rel: join(data_dir, rel)}


def phase_dir_name(job: JobSpec, plan: PhasePlan, upstream_id: str) -> str:
    """`NN-name-hash`: the hash covers what the phase computes and what it reads, so a change anywhere
    upstream writes to a new folder instead of mixing with old output. What it computes is more than its
    YAML: each stage's versioned output columns (lang_v1 -> lang_v2 is a new algorithm) and the digests
    of the model files it loads (a retrained model under the same path is a new model)."""
    phase_raw = job.raw["phases"][plan.index]  # includes `kind` and `settings` for cross-shard phases
    digest = hashlib.sha256(json.dumps({"phase": phase_raw, "computes": _phase_identity(job.phases[plan.index]),
                                        "upstream": upstream_id,
                                        "runtime": {"row_group_bytes": job.runtime.row_group_bytes}},
                                       sort_keys=True, default=str).encode()).hexdigest()
    return f"{plan.index:02d}-{plan.name}-{digest[:10]}"


def _phase_identity(phase: PhaseSpec) -> list[dict[str, Any]]:
    from corpus.stages import STAGES

    if phase.kind != "map":
        kind = PHASE_KINDS[phase.kind]
        return [{"kind": phase.kind, "writes": list(kind.writes_for_stages(phase.settings))}]
    return [{"stage": e.name, "writes": list(STAGES[e.name].writes(e.config)),
             "fingerprint": STAGES[e.name].fingerprint(e.config)} for e in phase.stages]


def source_id(job: JobSpec, shards: list[Shard]) -> str:
    """What the first phase reads: its folder's hash covers it, so changed input files get a new folder."""
    return json.dumps({"inputs": job.raw["inputs"], "files": [(s.relpath, s.size, s.row_groups) for s in shards]},
                      default=str)


def planned_phase_dirs(job: JobSpec) -> list[str]:
    """The folder each phase of `job` reads and writes, named as run_job names them (lists the inputs)."""
    chain = source_id(job, list_source_shards(job))
    dirs = []
    for plan in check_plan(job):
        dirs.append(join(job_dir(job), phase_dir_name(job, plan, chain)))
        chain = os.path.basename(dirs[-1].rstrip("/"))
    return dirs


def list_source_shards(job: JobSpec) -> list[Shard]:
    shards: list[Shard] = []
    n = 0
    for index, spec in enumerate(job.inputs):
        patterns = [p if "://" in p or os.path.isabs(p) else os.path.join(job.base_dir, p) for p in spec.paths]
        source = SOURCES[spec.source]
        paths = expand_paths(patterns, walk_folders=not source.folder_shards)
        if not paths:
            raise FileNotFoundError(f"inputs[{index}]: no file matches {list(spec.paths)} (read from "
                                    f"{job.base_dir}). Fix: check the paths, or run `refinery samples fetch`.")
        cfg = None
        if source.split:
            from corpus.config import config_from_dict
            cfg = config_from_dict(source.config, spec.options or {}, f"inputs[{index}].options")
        for path in paths:
            fs, p = filesystem(path)
            rel = os.path.relpath(p, job.base_dir) if is_local(fs) else path
            size = sum(fs.sizes(fs.find(p))) if fs.isdir(p) else fs.size(p)
            shard = Shard(key=f"{n:05d}", source=spec.source, path=path, relpath=rel.replace(os.sep, "/"),
                          domain=spec.domain, size=size, input_index=index)
            shards += source.split(shard, cfg) if source.split else [shard]
            n += 1
    return shards


def _upstream_shards(upstream_dir: str, entries: dict[str, dict]) -> list[Shard]:
    shards = []
    for key, e in sorted(entries.items()):
        parts = tuple(join(upstream_dir, layout.DATA, f["path"]) for f in e["files"]["data"])
        if parts:
            shards.append(Shard.of_phase(upstream_dir, key, parts, size=sum(f.get("bytes", 0) for f in e["files"]["data"])))
    return shards


def _run_cross_phase(job: JobSpec, plan: PhasePlan, root: str, upstream, chain_id: str,
                     phase_dirs: dict[str, str], progress: bool, pool: ActorPool) -> PhaseResult:
    from corpus.io.files import read_json

    phase = job.phases[plan.index]
    upstream_dir, upstream_entries = upstream
    pdir = join(root, phase_dir_name(job, plan, chain_id))
    remove_temp_files(pdir)
    done_marker = join(pdir, layout.DONE)
    fs, p = filesystem(done_marker)
    skipped = fs.exists(p)
    if skipped:
        summary = read_json(done_marker)
    else:
        ctx = CrossShardContext(phase=phase.name, phase_dir=pdir, upstream_dir=upstream_dir,
                                upstream_entries=upstream_entries, phase_dirs=dict(phase_dirs),
                                workers=job.runtime.workers, max_retries=job.runtime.max_retries, progress=progress,
                                pool=pool)
        try:
            summary = PHASE_KINDS[phase.kind].run(phase.settings, ctx)
        except KeyboardInterrupt:
            raise JobInterrupted(f"interrupted in phase {phase.name}; run the same command again to resume "
                                 f"(the phases before it are kept)") from None
        if not summary.get("quarantined"):
            write_json_atomic(done_marker, summary)
    rows = sum(e["rows_kept"] for e in upstream_entries.values())
    totals = {"rows_in": rows, "rows_kept": rows, "rows_rejected": 0, "dropped": {}, "counters": {},
              "summary": summary}
    write_json_atomic(join(pdir, layout.PHASE_STATS), {"phase": phase.name, "kind": phase.kind, **totals})
    n = len(upstream_entries)
    return PhaseResult(name=phase.name, phase_dir=pdir, shards=n, skipped=n if skipped else 0,
                       quarantined=list(summary.get("quarantined", [])), totals=totals, kind=phase.kind)


def _run_phase(job: JobSpec, plan: PhasePlan, root: str, upstream, chain_id: str, phase_dirs: dict[str, str],
               progress: bool, pool: ActorPool) -> PhaseResult:
    phase = job.phases[plan.index]
    if upstream is None:
        shards = list_source_shards(job)
        upstream_id = source_id(job, shards)
        input_schema = None
        upstream_kept = None
    else:
        upstream_dir, upstream_entries = upstream
        shards = _upstream_shards(upstream_dir, upstream_entries)
        upstream_id = chain_id
        input_schema = _input_schema(shards)
        upstream_kept = {k: e["rows_kept"] for k, e in upstream_entries.items() if e["rows_kept"]}
    pdir = join(root, phase_dir_name(job, plan, upstream_id))
    remove_temp_files(pdir)
    done = ledger.committed(pdir, verify=True)
    todo = [s for s in shards if s.key not in done]
    task = PhaseTask(phase=phase.name, phase_dir=pdir, stages=phase.stages, origin_before=plan.origin_before,
                     runtime=job.runtime, inputs=job.inputs, input_schema=input_schema,
                     phase_dirs=dict(phase_dirs))
    fs, p = filesystem(pdir)
    fs.makedirs(p, exist_ok=True)
    quarantined: list[str] = []
    if todo:
        try:
            quarantined = run_on_actors(phase_dir=pdir, items=todo, factory=functools.partial(ShardRunner, task),
                                        workers=job.runtime.workers, max_retries=job.runtime.max_retries,
                                        timeout_s=job.runtime.shard_timeout_s, desc=f"phase {phase.name}",
                                        progress=progress, total=len(shards), pool=pool)
        except KeyboardInterrupt:
            wanted = {s.key for s in shards}
            committed = sum(k in wanted for k in ledger.committed(pdir))
            raise JobInterrupted(f"interrupted: {committed}/{len(shards)} shards of phase {phase.name} committed; "
                                 f"run the same command again to resume") from None
    remove_temp_files(pdir)
    entries = ledger.committed(pdir)
    wanted = {s.key for s in shards}
    entries = {k: e for k, e in entries.items() if k in wanted}
    missing = wanted - set(entries) - set(quarantined)
    check_conservation(pdir, entries, upstream_kept)
    if missing:
        from corpus.runtime.stats import ConservationError
        raise ConservationError(f"{pdir}: shards neither committed nor quarantined: {sorted(missing)[:10]}")
    totals = merge_entries(list(entries.values()))
    write_json_atomic(join(pdir, layout.PHASE_STATS), {"phase": phase.name, "quarantined": quarantined, **totals})
    table = stats_table(phase.name, [entries[k] for k in sorted(entries)])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(join(pdir, layout.PHASE_STATS_TABLE), sink.getvalue().to_pybytes())
    return PhaseResult(name=phase.name, phase_dir=pdir, shards=len(shards), skipped=len(shards) - len(todo),
                       quarantined=quarantined, totals=totals)


def _input_schema(shards: list[Shard]) -> pa.Schema | None:
    if not shards:
        return None
    with fsspec.open(shards[0].parts[0], "rb") as f:
        schema = pq.ParquetFile(f).schema_arrow
    fields = list(schema)
    fields.insert(1, pa.field("domain", pa.string(), nullable=False))
    return pa.schema(fields)


__all__ = ["run_job", "JobResult", "JobInterrupted", "PhaseResult", "EXIT_OK", "EXIT_QUARANTINED"]
