"""The `refinery` command line.

    refinery [--debug] [--verbose] build JOB.yaml [--set key=value ...] [--address ADDR] [--output DIR]
    refinery validate JOB.yaml [--set key=value ...] [--output DIR] [--spec-only]
    refinery stats RUN_DIR
    refinery COMMAND ...   (jobs/commands/: clean, samples, tokenizer, export, ...)

Exit status (jobs/errors.py): 0 done; 1 failed (the message says why and the fix); 2 the job spec or
an argument is invalid; 3 done but some shards were quarantined (see the phase's quarantine/ folder,
then rerun); 4 the books did not balance (rows lost or duplicated); 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from jobs.console import configure_output
from jobs.errors import EXIT_INVALID, CommandError, run_guarded

# Accepted anywhere on the line (`refinery build job.yaml --debug` as well as `refinery --debug build ...`):
# they change how a command reports, not what it does.
GLOBAL_FLAGS = ("--debug", "--verbose")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = _pop_global_flags(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_output(verbose=flags["--verbose"])
    handlers = {"build": _build, "validate": _validate, "stats": _stats}
    handler = handlers.get(args.command, getattr(args, "handler", None))
    return run_guarded(lambda: handler(args), debug=flags["--debug"])


def _pop_global_flags(argv: list[str]) -> dict[str, bool]:
    end = argv.index("--") if "--" in argv else len(argv)
    found = {flag: flag in argv[:end] for flag in GLOBAL_FLAGS}
    argv[:end] = [a for a in argv[:end] if a not in GLOBAL_FLAGS]
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refinery", description="Build LLM pretraining corpora on Ray.",
                                     epilog="Exit status: 0 done, 1 failed, 2 invalid input, 3 shards "
                                            "quarantined, 4 books did not balance, 130 interrupted.")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure (any position)")
    parser.add_argument("--verbose", action="store_true",
                        help="show library logs and warnings (Ray, megatron-core) too (any position)")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="run a job (resumes from the ledger if it ran before)")
    build.add_argument("job", help="job spec, e.g. jobs/demo.yaml")
    build.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec value, e.g. runtime.workers=4 (repeatable)")
    build.add_argument("--address", default=None,
                       help="Ray cluster to join ('auto', or host:port); default: RAY_ADDRESS, else a local cluster")
    build.add_argument("--output", default=None, help="output root (overrides the spec's `output`)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")

    validate = sub.add_parser("validate", help="check a job spec and its plan without running it")
    validate.add_argument("job")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="as for build")
    validate.add_argument("--output", default=None, help="output root, as for build")
    validate.add_argument("--spec-only", action="store_true",
                          help="check the spec and its plan only: input files and models may not exist yet "
                               "(an image build, a job for another machine)")

    stats = sub.add_parser("stats", help="print the stats of a run folder (<output>/<job name>)")
    stats.add_argument("run_dir")
    stats.add_argument("--json", action="store_true", help="print the whole stats.json")

    from jobs.commands import register_all

    register_all(sub)
    return parser


def _load(args, output=None, files=True):
    """The job, checked: spec, plan (columns and select values) and, with `files`, that its inputs and
    models exist. Every problem found before Ray starts is a CommandError, exit 2."""
    from corpus.config import ConfigError
    from corpus.runtime.plan import check_plan
    from corpus.runtime.preflight import find_problems
    from corpus.runtime.spec import load_job

    try:
        job = load_job(args.job, args.overrides, output=output)
        check_plan(job)
        problems = find_problems(job) if files else []
    except FileNotFoundError:
        raise CommandError(f"{args.job}: no such job file", EXIT_INVALID) from None
    except ConfigError as exc:
        raise CommandError(f"invalid job spec: {exc}", EXIT_INVALID) from None
    if len(problems) == 1:
        raise CommandError(problems[0], EXIT_INVALID)
    if problems:
        raise CommandError("\n  ".join([f"{len(problems)} problems found before starting:"] + problems), EXIT_INVALID)
    return job


def _validate(args) -> int:
    from corpus.runtime.executor import job_dir
    from corpus.runtime.folders import phase_status, unused_phase_folders
    from jobs.pipeline.spec import is_pipeline_file

    if is_pipeline_file(args.job):
        return _validate_pipeline(args)
    job = _load(args, output=args.output, files=not args.spec_only)
    stages = sum(len(p.stages) for p in job.phases)
    print(f"{args.job}: valid ({len(job.inputs)} inputs, {len(job.phases)} phases, {stages} stages)"
          + (" as a spec; inputs and models not checked" if args.spec_only else ""))
    root = job_dir(job)
    print(f"output: {os.path.abspath(root) if '://' not in root else root}")
    if args.spec_only:
        return 0
    phases = phase_status(job)
    for p in phases:
        print(f"  phase {p.name:<12} {p.status:<28} {os.path.basename(p.path)}")
    old = unused_phase_folders(root, [p.path for p in phases])
    if old:
        print(f"  {len(old)} phase folder(s) from earlier settings: `refinery clean {root}` lists and removes them")
    return 0


def _validate_pipeline(args) -> int:
    """A pipeline file (`refinery run`): its steps, their commands and every config they load, before any runs."""
    from jobs.pipeline.check import check_pipeline
    from jobs.pipeline.runner import step_status
    from jobs.pipeline.spec import load_pipeline

    if args.output:
        raise CommandError("--output is for job files; a pipeline file names its run folder with `output:` and "
                           "`name:` (use --set output=DIR)", EXIT_INVALID)
    spec = load_pipeline(args.job, args.overrides)
    lines = check_pipeline(spec)
    print(f"{args.job}: valid pipeline ({len(spec.steps)} steps; every command parses and every job file and "
          f"training config it names loads)")
    print(f"output: {os.path.abspath(spec.run_dir)}")
    print("\n".join(lines))
    print("what `refinery run` would do now:")
    for name, status in step_status(spec).items():
        print(f"  {name:<14} {status}")
    return 0


def _build(args) -> int:
    from corpus.io.files import join
    from corpus.runtime import layout
    from corpus.runtime.executor import run_job

    job = _load(args, output=args.output)
    address = args.address or os.environ.get("RAY_ADDRESS")
    result = run_job(job, address=address, progress=not args.no_progress)
    for p in result.phases:
        print(f"phase {p.name}: {p.shards} shards ({p.skipped} already done), rows in {p.totals['rows_in']}, "
              f"kept {p.totals['rows_kept']}, rejected {p.totals['rows_rejected']}"
              + (f", QUARANTINED {len(p.quarantined)}: see {p.phase_dir}/quarantine/" if p.quarantined else ""))
    final = [p for p in result.phases if p.kind == "map"][-1]
    if final.totals["rows_kept"] == 0:
        print(_nothing_kept(result.phases))
    print(f"output: {result.final_data or 'none (shards were quarantined)'}")
    print(f"stats:  {join(result.job_dir, layout.STATS)}")
    return result.exit_code


def _nothing_kept(phases) -> str:
    """Say that the result is empty, and who emptied it: the largest drops of every phase."""
    drops = sorted(((n, f"{p.name}/{stage}/{reason}") for p in phases
                    for stage, reasons in p.totals.get("dropped", {}).items() for reason, n in reasons.items()),
                   reverse=True)
    rows_in = phases[0].totals["rows_in"]
    head = ", ".join(f"{where} {n}" for n, where in drops[:5]) + (", ..." if len(drops) > 5 else "")
    return (f"the job kept 0 of {rows_in} documents (dropped by {head or 'no stage: the input is empty'}). "
            f"The output is an empty dataset; `refinery stats` shows every stage.")


def _pipeline_hint(run_dir: str) -> str | None:
    """For the run folder of a `refinery run` pipeline: the build run folders inside its steps."""
    import glob

    from corpus.runtime.layout import STATS
    from jobs.pipeline.runner import PIPELINE_FILE

    if not os.path.isfile(os.path.join(run_dir, PIPELINE_FILE)):
        return None
    builds = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(glob.escape(run_dir), "*", "*", STATS)))
    return (f"{run_dir} is the run folder of a pipeline (`refinery run`), not of a build; "
            + (f"its builds: {', '.join(builds)}. Fix: refinery stats {builds[0]}" if builds else
               "no build in it has finished yet") + " (`refinery report` reads the whole pipeline)")


def _stats(args) -> int:
    from corpus.runtime import layout

    if os.path.isfile(args.run_dir):
        raise CommandError(f"{args.run_dir} is a file; stats reads a run folder (<output>/<job name>)", EXIT_INVALID)
    try:
        stats = layout.read_stats(args.run_dir)
    except layout.RunFolderError as exc:
        raise CommandError(_pipeline_hint(args.run_dir) or str(exc), EXIT_INVALID) from None
    if "job" not in stats:  # a phase folder's stats.json has `phase` instead
        parent = os.path.dirname(args.run_dir.rstrip("/")) or "."
        what = f"the folder of phase {stats['phase']!r}" if "phase" in stats else "not a run folder"
        raise CommandError(f"{args.run_dir} is {what}. Fix: refinery stats {parent}", EXIT_INVALID)
    print(f"job {stats['job']} (exit code {stats['exit_code']})")
    missing = None
    if stats.get("final_data"):
        from corpus.io.files import expand_paths, join
        from corpus.io.parquet import count_rows

        try:
            final = layout.final_data(args.run_dir)
            documents = sum(count_rows(p) for p in expand_paths([join(final, layout.PARQUET_GLOB)]))
        except layout.RunFolderError as exc:
            missing = exc
        else:
            print(f"final corpus: {final}/ ({documents} documents, Hive-partitioned by domain)\n"
                  f"  duckdb: select domain, count(*) from read_parquet('{join(final, layout.PARQUET_GLOB)}', "
                  f"hive_partitioning=true) group by 1")
    else:
        print("final corpus: none (shards were quarantined: fix them and run the same build again)")
    for p in stats["phases"]:
        print(f"\nphase {p['name']}  shards {p['shards']}  in {p['rows_in']}  kept {p['rows_kept']}  "
              f"rejected {p['rows_rejected']}" + (f"  quarantined {p['quarantined']}" if p["quarantined"] else ""))
        for stage, c in p["counters"].items():
            rate = f"{c['rows_per_s']:>12,.0f} rows/s" if "rows_per_s" in c else ""
            print(f"  {stage:<14} in {int(c.get('rows_in', 0)):>9}  out {int(c.get('rows_out', 0)):>9}  {rate}")
        for stage, reasons in p["dropped"].items():
            for reason, n in reasons.items():
                print(f"  dropped {stage}/{reason}: {n}")
    if args.json:
        print(json.dumps(stats, indent=2))
    if missing:
        raise CommandError(str(missing), EXIT_INVALID)
    return 0


if __name__ == "__main__":
    sys.exit(main())
