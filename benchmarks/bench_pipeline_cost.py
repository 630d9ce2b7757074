"""Whole-pipeline cost: `refinery build` over the bulk corpus, clean phase and clean + MinHash dedup.

    .venv/bin/python benchmarks/bench_pipeline_cost.py [--shards K] [--workers 1,2] [--jobs clean,dedup]
                                                        [--repeat R] [--profile]

Input: the shards of benchmarks/bulk_corpus.py (>= 1 GB of real text from pinned registry packages, C4
layout JSONL.gz); `--shards K` takes the first K (each ~32 MB and a mix of every source). Each run is the
real command line, `python -m jobs.cli build JOB --output FRESH_DIR`, in a child process: Ray's start-up
and shut-down are inside the timer. Two job files (written next to the runs, printed with --show-jobs):

- clean: one map phase with the stages of jobs/demo.yaml's normalize, clean and filter phases (normalize,
  length, langid, Gopher quality and repetition, C4 rules, select; read from the demo file at run time),
  the web-text rules applying to every document (the input is declared `commoncrawl`). The demo's CCNet
  line dedup and exact dedup are left out: the issue's clean phase and MinHash dedup are measured.
- dedup: the same, then jobs/demo.yaml's MinHash block (threshold 0.8, 128 permutations, word 5-grams:
  signatures, LSH buckets, connected components, marking and removal).

How CPU and memory are measured: this process makes itself the child subreaper (Linux prctl), so every
process the run starts (Ray's GCS, raylet, agents, the worker actors) stays its descendant even when its
parent exits first. A sampler thread reads the whole tree every 0.2 s from /proc: each process's user +
system CPU seconds (the last value seen counts, so a process loses at most its last 0.2 s: about 3 s
for the ~15 processes of a run) and its VmHWM and RSS. `getrusage(RUSAGE_CHILDREN)` cannot be used: the
raylet does not pass its workers' CPU up (measured: 6.0 s by rusage against 13.6 s sampled on one run).
Memory: each process's largest VmHWM or RSS seen;
"peak RSS per worker" is the largest of the processes Ray titles `ray::...` that ran shards (the pool's
actors; the pool resets VmHWM when it reuses an actor, so the sampled maximum is kept), "tree peak"
the largest sum of RSS over all processes at one sample. Rates: GB = UTF-8 text bytes read (the bulk
corpus manifest), GB per core-hour = GB / (wall hours x workers), GB per CPU-hour = GB / (CPU s / 3600).
Configurations are run interleaved (round robin over repeats), so a change in machine load hits all.

`--profile` runs the clean stages in this process on the first shard under cProfile (the actor's code
path, corpus.runtime.shard.ShardRunner, without Ray) and prints the functions with the most own time.
`--in-process` (with `--shards K`, `--repeat R`) runs the same code path without a profiler and prints CPU
seconds per shard and per stage (process time around each stage's call), then exits: the figure for
changes to per-document code, free of Ray's processes and of cProfile's per-call overhead.
"""

from __future__ import annotations

import argparse
import ctypes
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import yaml  # noqa: E402

from benchmarks.bulk_corpus import DEFAULT_DEST, build  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_S = 0.2
_PR_SET_CHILD_SUBREAPER = 36
_TICKS = os.sysconf("SC_CLK_TCK")
ACTOR_TITLE = "ray::_LedgerActor"
"""How Ray titles the pool's actor processes (corpus/runtime/pool.py): the workers that run shards."""

DEMO_JOB = os.path.join(REPO, "jobs", "demo.yaml")
CLEAN_PHASES = ("normalize", "clean", "filter")
"""The demo's map phases whose stages make up the clean phase here (fused into one, as one would on a
big corpus: one read and one write of the data instead of three)."""


def demo_clean_stages_and_minhash() -> tuple[list, dict]:
    """The stages of jobs/demo.yaml's normalize, clean and filter phases, and its MinHash dedup block, so
    this benchmark follows the demo as stage versions and select rules change."""
    with open(DEMO_JOB) as f:
        phases = yaml.safe_load(f)["phases"]
    by_name = {p["name"]: p for p in phases if "name" in p and "stages" in p}
    missing = [n for n in CLEAN_PHASES if n not in by_name]
    minhash = [p for p in phases if p.get("dedup", {}).get("method") == "minhash"]
    if missing or len(minhash) != 1:
        raise SystemExit(f"{DEMO_JOB}: expected map phases {CLEAN_PHASES} and one MinHash dedup block "
                         f"(missing phases: {missing}, MinHash blocks: {len(minhash)}): update this benchmark")
    return [stage for name in CLEAN_PHASES for stage in by_name[name]["stages"]], minhash[0]


JOBS = ("clean", "dedup")


def job_spec(kind: str, shards: list[str], workers: int, batch_rows: int) -> dict:
    stages, minhash = demo_clean_stages_and_minhash()
    phases = [{"name": "clean", "stages": stages}]
    if kind == "dedup":
        phases.append(minhash)
    return {"name": f"cost-{kind}-w{workers}", "output": "runs",
            "inputs": [{"source": "jsonl", "paths": shards, "domain": "commoncrawl"}],
            "runtime": {"workers": workers, "max_retries": 0, "batch_rows": batch_rows},
            "phases": phases}


class TreeSampler(threading.Thread):
    """Memory of every descendant of this process (read from /proc), sampled until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_by_pid: dict[int, int] = {}
        self.titles_by_pid: dict[int, set[str]] = {}
        self.cpu_by_pid: dict[int, float] = {}
        self.tree_peak = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for pid, cpu in descendants(os.getpid()).items():
                self.cpu_by_pid[pid] = cpu
                try:
                    status = _proc_status(pid)
                    # Ray retitles a worker as it runs an actor's methods and again as it shuts down: keep all
                    self.titles_by_pid.setdefault(pid, set()).add(_proc_title(pid))
                except OSError:
                    continue  # exited meanwhile
                rss = status.get("VmRSS", 0)
                total += rss
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), rss, status.get("VmHWM", 0))
            self.tree_peak = max(self.tree_peak, total)
            self.samples += 1
            self.stop.wait(SAMPLE_S)

    def worker_peak(self) -> tuple[int, int]:
        """(largest peak of a shard-running Ray actor, how many such actors)."""
        actors = [p for pid, p in self.peak_by_pid.items() if self._is_actor(pid)]
        return (max(actors), len(actors)) if actors else (0, 0)

    def actor_cpu(self) -> float:
        """CPU seconds of the shard-running actors alone (the rest is Ray's own processes and the driver)."""
        return sum(c for pid, c in self.cpu_by_pid.items() if self._is_actor(pid))

    def _is_actor(self, pid: int) -> bool:
        return any(ACTOR_TITLE in title for title in self.titles_by_pid.get(pid, ()))

    def driver_peak(self, driver_pid: int) -> int:
        return self.peak_by_pid.get(driver_pid, 0)


def descendants(root: int) -> dict[int, float]:
    """{pid: CPU seconds so far (user + system)} of every descendant of `root`."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # the command name may hold spaces and parentheses: fields start after the last ')'
            fields = stat[stat.rindex(b")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (proc(5) 14, 15)
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = cpu[child]
            todo.append(child)
    return found


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    values = {}
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith((b"VmRSS:", b"VmHWM:")):
                key, number = line.split()[:2]
                values[key[:-1].decode()] = int(number) * 1024
    return values


def _proc_title(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read(200).split(b"\0")[0].decode(errors="replace")


def _reap_all() -> None:
    """Wait for every descendant (the subreaper inherits Ray's orphans): the next run starts on a quiet tree."""
    deadline = time.monotonic() + 120
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes still running 120 s after the build: {sorted(descendants(os.getpid()))}")
            time.sleep(0.1)


def run_once(kind: str, shards: list[str], workers: int, text_bytes: int, work: str, batch_rows: int) -> dict:
    job_path = os.path.join(work, f"{kind}-w{workers}.yaml")
    with open(job_path, "w") as f:
        yaml.safe_dump(job_spec(kind, shards, workers, batch_rows), f, sort_keys=False)
    out = tempfile.mkdtemp(prefix=f"run-{kind}-w{workers}-", dir=work)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    sampler = TreeSampler()
    load_before = os.getloadavg()[0]
    sampler.start()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "build", job_path, "--output", out, "--no-progress"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = proc.communicate()
    wall = time.perf_counter() - t0
    _reap_all()
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"refinery build {job_path} exited {proc.returncode}:\n{output[-3000:]}")
    cpu = sum(sampler.cpu_by_pid.values())
    worker_peak, actors = sampler.worker_peak()
    with open(os.path.join(out, f"cost-{kind}-w{workers}", "stats.json")) as f:
        stats = json.load(f)
    shutil.rmtree(out, ignore_errors=True)
    gb = text_bytes / 1e9
    return {"job": kind, "workers": workers, "gb": gb, "wall_s": wall, "cpu_s": cpu,
            "gb_per_core_hour": gb / (wall / 3600 * workers), "gb_per_cpu_hour": gb / (cpu / 3600),
            "worker_peak_rss": worker_peak, "actors": actors, "driver_peak_rss": sampler.driver_peak(proc.pid),
            "tree_peak_rss": sampler.tree_peak,  "processes": len(sampler.cpu_by_pid),
            "actor_cpu_s": sampler.actor_cpu(),
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "stage_seconds": _stage_seconds(stats), "rows": _rows(stats)}


def run_with_retry(*args) -> dict:
    """run_once, run again once when Ray itself failed to start: on a machine shared by many jobs its
    raylet can miss the start-up deadline, which says nothing about the job (the retry is reported)."""
    try:
        return run_once(*args)
    except RuntimeError as exc:
        if "timed out during startup" not in str(exc):
            raise
        print(f"Ray did not start in time (load average {os.getloadavg()[0]:.1f}); running it again", flush=True)
        return run_once(*args)


def _stage_seconds(stats: dict) -> dict[str, float]:
    """In-actor seconds per stage of the clean phase (wall inside the actors, summed over shards)."""
    counters = stats["phases"][0].get("counters", {})
    return {name: c.get("seconds", 0.0) for name, c in counters.items()}


def _rows(stats: dict) -> dict[str, int]:
    first, last = stats["phases"][0], stats["phases"][-1]
    return {"in": int(first.get("rows_in", 0)), "kept": int(last.get("rows_kept", 0))}


def _clean_runner(shard: str, work: str):
    """The actor's code path for the clean phase (corpus.runtime.shard.ShardRunner, no Ray) on one input file."""
    from corpus.runtime.spec import parse_job
    from corpus.runtime.executor import list_source_shards
    from corpus.runtime.plan import check_plan
    from corpus.runtime.shard import PhaseTask, ShardRunner

    job = parse_job(job_spec("clean", [shard], 1, 1000), work)
    plan = check_plan(job)[0]
    task = PhaseTask(phase="clean", phase_dir=os.path.join(work, "clean"), stages=job.phases[0].stages,
                     origin_before=plan.origin_before, runtime=job.runtime, inputs=job.inputs)
    return ShardRunner(task), list_source_shards(job)[0]


def profile_clean(shard: str, top: int) -> None:
    work = tempfile.mkdtemp(prefix="profile-")
    try:
        runner, source_shard = _clean_runner(shard, work)
        profiler = cProfile.Profile(time.process_time)  # CPU time: on a shared machine wall time is mostly waiting
        t0 = time.process_time()
        profiler.enable()
        entry = runner.run(source_shard)
        profiler.disable()
        cpu = time.process_time() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ncProfile of the clean stages on {os.path.basename(shard)} in one process: {cpu:.1f} CPU s "
          f"(with the profiler's overhead), {entry['rows_in']:,} rows")
    staged = sum(c.get("seconds", 0) for c in entry["counters"].values()) or 1.0
    print("stage shares of the runner's own timers (wall inside the process, so shares, not seconds, matter):")
    for name, c in sorted(entry["counters"].items(), key=lambda kv: -kv[1].get("seconds", 0)):
        print(f"  stage {name:18} {100 * c.get('seconds', 0) / staged:5.1f}%")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)


def cpu_clean(shard: str) -> dict:
    """CPU seconds of the clean phase on one shard in this process, without a profiler: in all, and per stage
    (the reader included) from process-time timers around each stage's call; "other" is the runner's own
    work (Parquet writes, counters, the select step's split). cProfile's per-call overhead inflates the
    many small Python calls (the reader's most), so its shares are not these."""
    work = tempfile.mkdtemp(prefix="cpu-clean-")
    cpu: dict[str, float] = {}

    def timed(name, fn):
        def run(batch):
            t0 = time.process_time()
            try:
                return fn(batch)
            finally:
                cpu[name] = cpu.get(name, 0.0) + time.process_time() - t0
        return run

    def timed_read(read):
        def run(*args):
            batches = read(*args)
            while True:
                t0 = time.process_time()
                batch = next(batches, None)
                cpu["read"] = cpu.get("read", 0.0) + time.process_time() - t0
                if batch is None:
                    return
                yield batch
        return run

    try:
        runner, source_shard = _clean_runner(shard, work)
        runner.stages = [(name, kind, timed(name, fn)) for name, kind, fn in runner.stages]
        runner._read = timed_read(runner._read)
        t0 = time.process_time()
        entry = runner.run(source_shard)
        total = time.process_time() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu["other"] = total - sum(cpu.values())
    return {"shard": os.path.basename(shard), "cpu_s": total, "stage_cpu_s": cpu, "rows_in": entry["rows_in"],
            "rows_kept": entry["rows_kept"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=None, help="a bulk_corpus.py folder (default: build/find it)")
    parser.add_argument("--dest", default=DEFAULT_DEST, help="bulk_corpus.py's --dest")
    parser.add_argument("--shards", type=int, default=0, help="use the first K shards (default: all)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--jobs", default="clean,dedup", help=f"comma-separated, of {JOBS}")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile the clean stages on the first shard")
    parser.add_argument("--top", type=int, default=25, help="functions to print with --profile")
    parser.add_argument("--in-process", action="store_true",
                        help="only time the clean stages in this process, shard by shard, without Ray or a "
                             "profiler: CPU seconds in all and per stage (use --shards K)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--show-jobs", action="store_true", help="print the two job files and exit")
    args = parser.parse_args(argv)
    jobs = [j for j in args.jobs.split(",") if j]
    if any(j not in JOBS for j in jobs):
        parser.error(f"--jobs: each of {JOBS}")
    workers = [int(w) for w in args.workers.split(",") if w]
    if not workers or min(workers) < 1 or args.repeat < 1 or args.shards < 0:
        parser.error("--workers, --repeat must be >= 1, --shards >= 0")

    folder = args.corpus or build(os.path.expanduser(args.dest), target_bytes=int(1.05e9), shard_bytes=int(32e6))
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    names = sorted(manifest["shards"])[:args.shards or None]
    shards = [os.path.join(folder, "shards", n) for n in names]
    text_bytes = sum(manifest["shards"][n]["text_bytes"] for n in names)
    docs = sum(manifest["shards"][n]["documents"] for n in names)
    if args.show_jobs:
        for kind in jobs:
            print(yaml.safe_dump(job_spec(kind, ["<shards>"], workers[0], args.batch_rows), sort_keys=False))
        return 0
    print(f"input: {len(shards)} shards of {folder}: {docs:,} documents, {text_bytes / 1e9:.3f} GB of text; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.profile:
        profile_clean(shards[0], args.top)
    if args.in_process:
        return _print_in_process(shards, manifest, args.repeat)

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed: CPU of Ray's processes could not be counted")
    work = tempfile.mkdtemp(prefix="runs-", dir=os.path.expanduser(args.dest))
    results = []
    try:
        for rep in range(args.repeat):
            for kind in jobs:
                for w in workers:
                    r = run_with_retry(kind, shards, w, text_bytes, work, args.batch_rows)
                    r["repeat"] = rep + 1
                    results.append(r)
                    print(_row(r), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| job | workers | GB | wall s | CPU s (all processes) | of which actors | GB / core-hour | GB / CPU-hour | "
          "peak RSS per worker | driver peak | tree peak | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['job']} | {r['workers']} | {r['gb']:.3f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
              f"{r['actor_cpu_s']:.0f} | "
              f"{r['gb_per_core_hour']:.2f} | {r['gb_per_cpu_hour']:.2f} | {r['worker_peak_rss'] / 2**20:.0f} MiB | "
              f"{r['driver_peak_rss'] / 2**20:.0f} MiB | {r['tree_peak_rss'] / 2**20:.0f} MiB | "
              f"{r['load_before']:.0f}-{r['load_after']:.0f} |")
    for r in results:
        total = sum(r["stage_seconds"].values()) or 1.0
        shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in
                           sorted(r["stage_seconds"].items(), key=lambda kv: -kv[1]))
        print(f"{r['job']} w{r['workers']} rows in {r['rows']['in']:,} kept {r['rows']['kept']:,}; "
              f"clean-phase time in actors: {shares}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shards": names, "text_bytes": text_bytes, "documents": docs, "results": results}, f,
                      indent=2)
    return 0


def _print_in_process(shards: list[str], manifest: dict, repeat: int) -> int:
    rows = []
    for rep in range(repeat):
        for shard in shards:
            r = cpu_clean(shard)
            r["text_bytes"] = manifest["shards"][os.path.basename(shard)]["text_bytes"]
            rows.append(r)
            print(f"{r['shard']} rep {rep + 1}: {r['cpu_s']:.2f} CPU s, "
                  f"{r['text_bytes'] / 1e9 / (r['cpu_s'] / 3600):.2f} GB per CPU-hour; " +
                  ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["stage_cpu_s"].items(), key=lambda kv: -kv[1])),
                  flush=True)
    cpu_s = sum(r["cpu_s"] for r in rows)
    gb = sum(r["text_bytes"] for r in rows) / 1e9
    print(f"in process, {len(rows)} shard runs: {cpu_s:.1f} CPU s, {gb / (cpu_s / 3600):.2f} GB per CPU-hour; "
          "stage shares: " + ", ".join(
              f"{k} {100 * v / cpu_s:.0f}%" for k, v in sorted(
                  ((k, sum(r["stage_cpu_s"].get(k, 0.0) for r in rows)) for k in rows[0]["stage_cpu_s"]),
                  key=lambda kv: -kv[1])))
    return 0


def _row(r: dict) -> str:
    return (f"{r['job']:5} w{r['workers']} rep {r.get('repeat', 1)}: wall {r['wall_s']:.1f} s, "
            f"CPU {r['cpu_s']:.1f} s ({r['processes']} processes; "
            f"actors {r['actor_cpu_s']:.1f} s), "
            f"{r['gb_per_core_hour']:.2f} GB/core-h, {r['gb_per_cpu_hour']:.2f} GB/CPU-h, worker peak "
            f"{r['worker_peak_rss'] / 2**20:.0f} MiB ({r['actors']} actors), load {r['load_before']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
