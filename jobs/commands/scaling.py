"""`refinery scaling fit RUN_DIR RUN_DIR RUN_DIR RUN_DIR ... [--holdout RUN_DIR] [--params non_embedding|total]
[--plot FILE] [--json]`: fit L(C) = a C^b + c to the final validation losses of pretraining runs
(training/eval/scaling.py) and, with --holdout, predict a larger run's loss and report the error.
"""

from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    scaling = subparsers.add_parser("scaling", help="scaling laws fitted to pretraining runs")
    actions = scaling.add_subparsers(dest="scaling_command", required=True)
    fit = actions.add_parser("fit", help="fit L(C) = a * C^b + c to runs' final validation losses")
    fit.add_argument("runs", nargs="+", help="run folders of `refinery train pretrain` (at least 4)")
    fit.add_argument("--holdout", default=None, help="a larger run to predict (not used in the fit)")
    fit.add_argument("--params", choices=("non_embedding", "total"), default="non_embedding",
                     help="parameter count N in C = 6 N D (default non_embedding, as Kaplan et al. 2020)")
    fit.add_argument("--plot", default=None, help="write the fit as a PNG here")
    fit.add_argument("--json", action="store_true", help="print the report as JSON")
    fit.set_defaults(handler=_fit)


def _fit(args) -> int:
    from training.eval.scaling import fit_runs, format_fit, plot_fit, read_point

    try:
        points = [read_point(r, params=args.params) for r in args.runs]
        holdout = read_point(args.holdout, params=args.params) if args.holdout else None
        report = fit_runs(points, holdout)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:  # RuntimeError: curve_fit did not converge
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        plot_fit(report, args.plot)
    print(json.dumps(report, indent=2) if args.json else format_fit(report))
    return 0
