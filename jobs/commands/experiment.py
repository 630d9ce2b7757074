"""`refinery experiment cleaning [--job JOB.yaml] [--clean-run RUN_DIR] [--tokenizer DIR] [--clean-export DIR]
[--config CONFIG.yaml] [--seeds 3] [--steps 200] [--eval-samples 64] [--mixture natural|same] [--out DIR]
[--json]`: tiny GPTs with the
same token budget on the documents as read vs the cleaned corpus, evaluated on the same held-out clean
documents per domain (jobs/experiments/cleaning.py). Writes OUT/cleaning.json and .png (OUT/cleaning-same.*
with --mixture same) and prints the table (Markdown). Run it again to resume.
"""

from __future__ import annotations

import json
import os
import sys


def register(subparsers) -> None:
    experiment = subparsers.add_parser("experiment", help="experiments that train models on refinery corpora")
    actions = experiment.add_subparsers(dest="experiment_command", required=True)
    cleaning = actions.add_parser("cleaning", help="raw vs cleaned corpus: held-out loss per domain, several seeds")
    cleaning.add_argument("--job", default="jobs/demo.yaml", help="the job file that built --clean-run "
                                                                  "(its inputs are read again, uncleaned)")
    cleaning.add_argument("--clean-run", default="runs/demo", help="the cleaned corpus run (default runs/demo)")
    cleaning.add_argument("--tokenizer", default=None, help="tokenizer for both arms (default CLEAN_RUN/tokenizer)")
    cleaning.add_argument("--clean-export", default=None,
                          help="the clean run's Megatron export with that tokenizer "
                               "(default CLEAN_RUN/export-megatron)")
    cleaning.add_argument("--config", default="jobs/pretrain_tiny.yaml",
                          help="training config both arms start from (model, batch, split, optimizer)")
    cleaning.add_argument("--seeds", type=int, default=3, help="runs per arm (seeds 1..N; default 3)")
    cleaning.add_argument("--steps", type=int, default=200, help="training steps per run (default 200)")
    cleaning.add_argument("--eval-samples", type=int, default=64, help="held-out samples per domain (default 64)")
    cleaning.add_argument("--mixture", choices=("natural", "same"), default="natural",
                          help="natural: each arm samples its own corpus by token share (default); same: both "
                               "use the clean corpus's token shares")
    cleaning.add_argument("--out", default="runs/experiment-cleaning", help="output folder")
    cleaning.add_argument("--json", action="store_true", help="print the result as JSON instead of the table")
    cleaning.set_defaults(handler=_cleaning)


def _cleaning(args) -> int:
    import logging

    from jobs.experiments.cleaning import format_table, run_cleaning_experiment
    from schemas.config import ConfigError
    from training.loop.launch import LaunchError

    logging.getLogger("megatron").setLevel(logging.WARNING)
    if args.seeds < 2 or args.steps < 1:
        print("refinery: --seeds must be at least 2 (a spread needs two runs) and --steps at least 1", file=sys.stderr)
        return 2
    try:
        result = run_cleaning_experiment(
            job=args.job, clean_run=args.clean_run, config=args.config, out=args.out, seeds=args.seeds,
            steps=args.steps, eval_samples=args.eval_samples, mixture=args.mixture,
            tokenizer=args.tokenizer or os.path.join(args.clean_run, "tokenizer"),
            clean_export=args.clean_export or os.path.join(args.clean_run, "export-megatron"),
            log=lambda line: print(line, file=sys.stderr))
    except (FileNotFoundError, ValueError, ConfigError, LaunchError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    stem = os.path.join(args.out, "cleaning" + ("" if args.mixture == "natural" else f"-{args.mixture}"))
    print(f"written: {stem}.json, {stem}.png", file=sys.stderr)
    return 0
