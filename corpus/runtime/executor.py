"""The driver: runs a job's phases over shards on a pool of Ray actors, resumably.

Per phase: list the shards, skip those the ledger has, hand the rest to actors (each builds its
stages once), retry failures, quarantine shards that keep failing, check that the books balance,
and write merged stats. A killed actor is replaced and its shard retried; a killed driver is resumed
by running the same job again.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import time
from typing import Any, Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from corpus.io.files import expand_paths, filesystem, is_local, join, remove_temp_files, write_json_atomic
from corpus.runtime import ledger
from corpus.runtime.plan import PhasePlan, check_plan
from corpus.runtime.shard import PhaseTask, ShardRunner
from corpus.runtime.spec import JobSpec
from corpus.runtime.stats import check_conservation, merge_entries, stats_table
from corpus.sources import SOURCES
from corpus.sources.base import Shard

EXIT_OK = 0
EXIT_QUARANTINED = 3


@dataclasses.dataclass(kw_only=True)
class PhaseResult:
    name: str
    phase_dir: str
    shards: int
    skipped: int
    """Shards already in the ledger before this run."""
    quarantined: list[str]
    totals: dict[str, Any]


@dataclasses.dataclass(kw_only=True)
class JobResult:
    job_dir: str
    phases: list[PhaseResult]

    @property
    def exit_code(self) -> int:
        return EXIT_QUARANTINED if any(p.quarantined for p in self.phases) else EXIT_OK

    @property
    def final_data(self) -> str:
        return join(self.phases[-1].phase_dir, "data")


def job_dir(job: JobSpec) -> str:
    return join(job.output, job.name)


def run_job(job: JobSpec, *, address: str | None = None, progress: bool = True,
            on_phase: Callable[[PhaseResult], None] | None = None) -> JobResult:
    """Run every phase of `job`; returns what happened. Raises ConservationError if books don't balance."""
    import ray

    plans = check_plan(job)
    root = job_dir(job)
    fs, root_path = filesystem(root)
    fs.makedirs(root_path, exist_ok=True)
    with fsspec.open(join(root, "job.resolved.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(job.raw, f, sort_keys=False)
    if not ray.is_initialized():
        # No address: an embedded local cluster. The dashboard stays off (nothing listens on a port);
        # `ray start --head` on a real cluster configures its own.
        ray.init(address=address, include_dashboard=False, logging_level="WARNING",
                 **({} if address else {"num_cpus": max(job.runtime.workers, os.cpu_count() or 1)}))
    results: list[PhaseResult] = []
    upstream: tuple[str, dict[str, dict]] | None = None  # (phase dir, its ledger)
    for plan in plans:
        result = _run_phase(job, plan, root, upstream, progress)
        results.append(result)
        if on_phase:
            on_phase(result)
        upstream = (result.phase_dir, ledger.committed(result.phase_dir))
    job_result = JobResult(job_dir=root, phases=results)
    write_json_atomic(join(root, "stats.json"), {
        "job": job.name, "exit_code": job_result.exit_code, "final_data": job_result.final_data,
        "finished_at": time.time(),
        "phases": [{"name": p.name, "dir": p.phase_dir, "shards": p.shards, "skipped": p.skipped,
                    "quarantined": p.quarantined, **p.totals} for p in results]})
    return job_result


def phase_dir_name(job: JobSpec, plan: PhasePlan, upstream_id: str) -> str:
    """`NN-name-hash`: the hash covers the phase's stages and settings and what it reads, so a changed
    setting anywhere upstream writes to a new folder instead of mixing with old output."""
    phase_raw = job.raw["phases"][plan.index]
    digest = hashlib.sha256(json.dumps({"phase": phase_raw, "upstream": upstream_id,
                                        "runtime": {"row_group_bytes": job.runtime.row_group_bytes}},
                                       sort_keys=True, default=str).encode()).hexdigest()
    return f"{plan.index:02d}-{plan.name}-{digest[:10]}"


def list_source_shards(job: JobSpec) -> list[Shard]:
    shards: list[Shard] = []
    n = 0
    for index, spec in enumerate(job.inputs):
        patterns = [p if "://" in p or os.path.isabs(p) else os.path.join(job.base_dir, p) for p in spec.paths]
        paths = expand_paths(patterns)
        if not paths:
            raise FileNotFoundError(f"inputs[{index}]: no file matches {list(spec.paths)} (read from "
                                    f"{job.base_dir}). Fix: check the paths, or run `refinery samples fetch`.")
        source = SOURCES[spec.source]
        cfg = None
        if source.split:
            from corpus.config import config_from_dict
            cfg = config_from_dict(source.config, spec.options or {}, f"inputs[{index}].options")
        for path in paths:
            fs, p = filesystem(path)
            rel = os.path.relpath(p, job.base_dir) if is_local(fs) else path
            shard = Shard(key=f"{n:05d}", source=spec.source, path=path, relpath=rel.replace(os.sep, "/"),
                          domain=spec.domain, size=fs.size(p), input_index=index)
            shards += source.split(shard, cfg) if source.split else [shard]
            n += 1
    return shards


def _upstream_shards(upstream_dir: str, entries: dict[str, dict]) -> list[Shard]:
    shards = []
    for key, e in sorted(entries.items()):
        parts = tuple(join(upstream_dir, "data", f["path"]) for f in e["files"]["data"])
        if parts:
            shards.append(Shard(key=key, source="phase", path=upstream_dir, relpath=key, domain="",
                                size=sum(f["rows"] for f in e["files"]["data"]), parts=parts))
    return shards


def _run_phase(job: JobSpec, plan: PhasePlan, root: str, upstream, progress: bool) -> PhaseResult:
    phase = job.phases[plan.index]
    if upstream is None:
        shards = list_source_shards(job)
        upstream_id = json.dumps({"inputs": job.raw["inputs"],
                                  "files": [(s.relpath, s.size, s.row_groups) for s in shards]}, default=str)
        input_schema = None
        upstream_kept = None
    else:
        upstream_dir, upstream_entries = upstream
        shards = _upstream_shards(upstream_dir, upstream_entries)
        upstream_id = os.path.basename(upstream_dir.rstrip("/"))
        input_schema = _input_schema(shards)
        upstream_kept = {k: e["rows_kept"] for k, e in upstream_entries.items() if e["rows_kept"]}
    pdir = join(root, phase_dir_name(job, plan, upstream_id))
    remove_temp_files(pdir)
    done = ledger.committed(pdir)
    todo = [s for s in shards if s.key not in done]
    task = PhaseTask(phase=phase.name, phase_dir=pdir, stages=phase.stages, origin_before=plan.origin_before,
                     runtime=job.runtime, inputs=job.inputs, input_schema=input_schema)
    fs, p = filesystem(pdir)
    fs.makedirs(p, exist_ok=True)
    quarantined: list[str] = []
    if todo:
        quarantined = _run_pool(task, todo, len(shards), len(shards) - len(todo), job.runtime, progress)
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
    write_json_atomic(join(pdir, "stats.json"), {"phase": phase.name, "quarantined": quarantined, **totals})
    table = stats_table(phase.name, [entries[k] for k in sorted(entries)])
    with fsspec.open(join(pdir, "stats.parquet"), "wb") as f:
        pq.write_table(table, f)
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


def _run_pool(task: PhaseTask, todo: list[Shard], total: int, already: int, runtime, progress: bool) -> list[str]:
    """Run shards on `runtime.workers` actors; returns the keys quarantined."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
    from tqdm import tqdm

    actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_ShardActor)

    def new_actor():
        actor = actor_cls.options(scheduling_strategy="SPREAD").remote(task)
        try:
            ray.get(actor.ready.remote())
        except RayActorError as exc:
            raise RuntimeError(f"phase {task.phase}: a worker could not build its stages: {exc}") from exc
        return actor

    idle = [new_actor() for _ in range(min(runtime.workers, len(todo)))]
    pending = collections.deque(todo)
    attempts: collections.Counter[str] = collections.Counter()
    inflight: dict[Any, tuple[Any, Shard, float]] = {}
    quarantined: list[str] = []
    rows_done, started = 0, time.monotonic()
    bar = tqdm(total=total, initial=already, desc=f"phase {task.phase}", unit="shard", disable=not progress,
               dynamic_ncols=True)

    def failed(shard: Shard, error: BaseException) -> None:
        if attempts[shard.key] <= runtime.max_retries:
            pending.append(shard)
        else:
            quarantined.append(shard.key)
            ledger.quarantine(task.phase_dir, shard.key, [shard.path, *shard.parts], attempts[shard.key], error)
            bar.set_postfix_str(f"quarantined {len(quarantined)}", refresh=True)

    try:
        while pending or inflight:
            while idle and pending:
                actor, shard = idle.pop(), pending.popleft()
                attempts[shard.key] += 1
                inflight[actor.run.remote(shard, attempts[shard.key])] = (actor, shard, time.monotonic())
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            if runtime.shard_timeout_s:
                now = time.monotonic()
                for ref, (actor, shard, t0) in list(inflight.items()):
                    if now - t0 > runtime.shard_timeout_s and ref not in ready:
                        ray.kill(actor)  # its ref now fails with RayActorError and is retried below
            for ref in ready:
                actor, shard, _ = inflight.pop(ref)
                try:
                    entry = ray.get(ref)
                except RayActorError as exc:  # the worker process or its node died
                    idle.append(new_actor())
                    failed(shard, exc)
                    continue
                except (RayTaskError, GetTimeoutError) as exc:
                    idle.append(actor)
                    failed(shard, getattr(exc, "cause", None) or exc)
                    continue
                idle.append(actor)
                ledger.clear_quarantine(task.phase_dir, shard.key)
                rows_done += entry["rows_in"]
                bar.update(1)
                bar.set_postfix_str(f"{rows_done / max(time.monotonic() - started, 1e-9):,.0f} docs/s", refresh=False)
    finally:
        bar.close()
        for actor in idle + [a for a, _, _ in inflight.values()]:
            ray.kill(actor)
    return quarantined


class _ShardActor:
    """A Ray actor wrapping ShardRunner: stages (and their models) are built once, in the constructor."""

    def __init__(self, task: PhaseTask):
        self.runner = ShardRunner(task)

    def ready(self) -> bool:
        return True

    def run(self, shard: Shard, attempt: int) -> dict[str, Any]:
        return self.runner.run(shard, attempt)


__all__ = ["run_job", "JobResult", "PhaseResult", "EXIT_OK", "EXIT_QUARANTINED"]
