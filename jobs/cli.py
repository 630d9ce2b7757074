"""The `refinery` command line.

    refinery build JOB.yaml [--set key=value ...] [--address ADDR] [--output DIR]
    refinery validate JOB.yaml [--set key=value ...]
    refinery stats RUN_DIR

Exit status: 0 done; 2 the job spec is invalid; 3 done but some shards were quarantined (see the
phase's quarantine/ folder, then rerun); 4 the books did not balance (rows lost or duplicated).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

EXIT_INVALID = 2
EXIT_UNBALANCED = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refinery", description="Build LLM pretraining corpora on Ray.")
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
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    stats = sub.add_parser("stats", help="print the stats of a run folder (<output>/<job name>)")
    stats.add_argument("run_dir")
    stats.add_argument("--json", action="store_true", help="print the whole stats.json")

    from jobs.commands import register_all

    register_all(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {"build": _build, "validate": _validate, "stats": _stats}
    return handlers[args.command](args) if args.command in handlers else args.handler(args)


def _load(args, output=None):
    from corpus.config import ConfigError
    from corpus.runtime.plan import check_plan
    from corpus.runtime.spec import load_job

    try:
        job = load_job(args.job, args.overrides, output=output)
        check_plan(job)
        return job
    except FileNotFoundError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
    except ConfigError as exc:
        print(f"refinery: invalid job spec: {exc}", file=sys.stderr)
    return None


def _validate(args) -> int:
    job = _load(args)
    if job is None:
        return EXIT_INVALID
    stages = sum(len(p.stages) for p in job.phases)
    print(f"{args.job}: valid ({len(job.inputs)} inputs, {len(job.phases)} phases, {stages} stages)")
    return 0


def _build(args) -> int:
    from corpus.runtime.executor import run_job
    from corpus.runtime.stats import ConservationError

    job = _load(args, output=args.output)
    if job is None:
        return EXIT_INVALID
    address = args.address or os.environ.get("RAY_ADDRESS")
    try:
        result = run_job(job, address=address, progress=not args.no_progress)
    except FileNotFoundError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except ConservationError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return EXIT_UNBALANCED
    for p in result.phases:
        print(f"phase {p.name}: {p.shards} shards ({p.skipped} already done), rows in {p.totals['rows_in']}, "
              f"kept {p.totals['rows_kept']}, rejected {p.totals['rows_rejected']}"
              + (f", QUARANTINED {len(p.quarantined)}: see {p.phase_dir}/quarantine/" if p.quarantined else ""))
    print(f"output: {result.final_data or 'none (shards were quarantined)'}")
    print(f"stats:  {result.job_dir}/stats.json")
    return result.exit_code


def _stats(args) -> int:
    from corpus.runtime import layout

    try:
        stats = layout.read_stats(args.run_dir)
    except layout.RunFolderError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return EXIT_INVALID
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
                  f"  duckdb: select domain, count(*) from read_parquet('{final}/*/*.parquet', "
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
        print(f"refinery: {missing}", file=sys.stderr)
        return EXIT_INVALID
    return 0


if __name__ == "__main__":
    sys.exit(main())
