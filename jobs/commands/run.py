"""`refinery run PIPELINE.yaml [--set KEY=VALUE ...] [--address ADDR] [--until STEP]`: run a pipeline file.

Each step is one or more refinery commands run in a child process; a step whose commands, config files,
inputs and upstream steps are unchanged since it last finished is skipped, and a step that was
interrupted resumes (jobs/pipeline/runner.py). Each command's output is shown and also appended to
`<run>/steps/<step>.log`; on Ctrl-C the running command stops as it would when run by hand, and the
step is marked interrupted (jobs/pipeline/child.py). `jobs/llama_mini.yaml` is the whole LLaMA-1 recipe at tiny size; `make
demo` runs it.
"""

from __future__ import annotations

import os
import signal
import sys

from jobs.commands._training import ADDRESS_HELP


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "run", help="run a pipeline file: every step, skipping those already done",
        description="Run a pipeline file's steps in order: a finished step whose commands, files and upstream "
                    "steps are unchanged is skipped, an interrupted one resumes. Each step's output is shown and "
                    "also appended to <output>/<name>/steps/<step>.log; Ctrl-C stops the running command as it "
                    "would by hand, and the same command resumes.")
    run.add_argument("pipeline", help="pipeline file, e.g. jobs/llama_mini.yaml")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a value of the pipeline file, e.g. steps.7.set.schedule\\.train_steps=50 "
                          "(repeatable)")
    run.add_argument("--address", default=None, help=ADDRESS_HELP + "; every step joins it")
    run.add_argument("--until", default=None, metavar="STEP", help="stop after this step")
    run.set_defaults(handler=_run)


def _run(args) -> int:
    from jobs.errors import EXIT_INTERRUPTED, EXIT_INVALID, CommandError
    from jobs.pipeline.check import check_pipeline
    from jobs.pipeline.runner import PipelineBusy, StepFailed, StepInterrupted, run_pipeline
    from jobs.pipeline.spec import load_pipeline

    if os.path.isdir(args.pipeline):
        raise CommandError(f"{args.pipeline} is a folder; `refinery run` takes a pipeline file (a YAML file with "
                           f"`steps:`), e.g. jobs/llama_mini.yaml", EXIT_INVALID)
    if not os.path.isfile(args.pipeline):
        raise CommandError(f"{args.pipeline}: no such pipeline file", EXIT_INVALID)
    if _is_job_file(args.pipeline):
        raise CommandError(f"{args.pipeline} is a job file (it has `phases:`), not a pipeline file (`steps:`). "
                           f"Fix: refinery build {args.pipeline}", EXIT_INVALID)
    spec = load_pipeline(args.pipeline, args.overrides)  # ConfigError: exit 2 through the error handler
    check_pipeline(spec)  # every command and config, as `refinery validate` does: a typo fails now, not at the end
    if args.until and args.until not in {s.name for s in spec.steps}:
        raise CommandError(f"--until {args.until}: no such step. Steps: {', '.join(s.name for s in spec.steps)}",
                           EXIT_INVALID)
    address = args.address or os.environ.get("RAY_ADDRESS")
    try:
        outcome = run_pipeline(spec, address=address, until=args.until)
    except PipelineBusy as exc:
        raise CommandError(str(exc)) from None
    except StepInterrupted as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED if exc.signum == signal.SIGINT else 128 + exc.signum
    except StepFailed as exc:
        if exc.code == EXIT_INTERRUPTED:  # the command stopped itself as interrupted (its own Ctrl-C)
            print(f"refinery: interrupted in step {exc.step!r} (its output is in {exc.log}); run the same command "
                  f"again to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"refinery: {exc}. Fix the cause and run the same command again: finished steps are skipped, "
              f"this one resumes.", file=sys.stderr)
        return 1
    ran = [k for k, v in outcome.items() if v == "ran"]
    print(f"pipeline {spec.name}: {len(ran)} step(s) ran, {len(outcome) - len(ran)} unchanged; "
          f"run folder {spec.run_dir} (each step's output: {os.path.join(spec.run_dir, 'steps', '<step>.log')})")
    report = os.path.join(spec.run_dir, "report.html")
    if os.path.exists(report):
        print(f"report: {report}")
    return 0


def _is_job_file(path: str) -> bool:
    """A YAML mapping with `phases:` and no `steps:`: what `refinery build` takes."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # load_pipeline says what is wrong with it
    return isinstance(data, dict) and "phases" in data and "steps" not in data
