"""`refinery mix ...`: choose a data mixture.

    refinery mix doremi CONFIG.yaml [--set key=value] [--address ADDR] [--no-progress]
    refinery mix baseline natural|uniform|llama1 --export DIR --out FILE
    refinery mix compare --config PRETRAIN.yaml --mixture NAME=FILE|natural|uniform|llama1 ... [--seeds 3] --out DIR

Exit status: 0 done; 2 the config, a mixture or a run folder is unusable (the message names it and the
fix); 1 training failed on a worker (its traceback is printed above by Ray).
"""

from __future__ import annotations

import os
import sys

from jobs.commands._configs import CONFIG_LOADERS
from jobs.commands._training import add_run_options, exit_on_error, quiet_megatron, ray_address

# `mix` keeps its shorter help texts
ADDRESS_HELP = "Ray cluster to join; default: RAY_ADDRESS, else local"


def register(subparsers) -> None:
    mix = subparsers.add_parser("mix", help="choose a data mixture: DoReMi, baselines, comparison")
    actions = mix.add_subparsers(dest="mix_command", required=True)
    doremi = actions.add_parser("doremi", help="DoReMi: reference + proxy runs that learn domain weights")
    doremi.add_argument("config", help="DoReMi config YAML, e.g. jobs/doremi_tiny.yaml")
    add_run_options(doremi, example="doremi.eta=0.5", address_help=ADDRESS_HELP, progress_help="no progress bars")
    doremi.set_defaults(handler=_doremi)

    base = actions.add_parser("baseline", help="write a baseline mixture-weights file")
    base.add_argument("name", choices=("natural", "uniform", "llama1"),
                      help="natural = token share of the export; uniform; llama1 = LLaMA-1 Table 1")
    base.add_argument("--export", required=True, help="folder of `refinery export megatron` (its manifest.json)")
    base.add_argument("--out", required=True, help="mixture-weights JSON to write")
    base.set_defaults(handler=_baseline)

    cmp = actions.add_parser("compare", help="equal-token models per mixture and seed; held-out perplexity")
    cmp.add_argument("--config", required=True, help="pretraining config every model uses, e.g. jobs/pretrain_tiny.yaml")
    cmp.add_argument("--mixture", dest="mixtures", action="append", required=True, metavar="NAME[=FILE]",
                     help="natural, uniform, llama1, or NAME=weights.json (repeatable; the first is the one judged "
                          "against the others)")
    cmp.add_argument("--seeds", type=int, default=3, help="seeds per mixture (schedule.seed + 0, 1, ...)")
    cmp.add_argument("--out", required=True, help="folder for the runs, report.json, report.md and compare.png")
    cmp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a value of the pretraining config (repeatable)")
    cmp.add_argument("--address", default=None, help="Ray cluster to join; default: RAY_ADDRESS, else local")
    cmp.add_argument("--no-progress", action="store_true", help="no progress bars")
    cmp.set_defaults(handler=_compare)


def _training_errors(run) -> int:
    """Run `run()`, mapping the errors a user can fix to exit 2 and a worker's failure to exit 1."""
    from schemas.mixture import MixtureWeightsError
    from training.loop.launch import LaunchError

    status, error_status = exit_on_error(run, fixable=(FileNotFoundError, LaunchError, MixtureWeightsError),
                                         invalid_config="config")
    return status if error_status is None else error_status


def _doremi(args) -> int:
    from training.mixture.search import run_doremi

    quiet_megatron()

    def run():
        cfg = CONFIG_LOADERS["mix", "doremi"].load(args.config, args.overrides)
        summary = run_doremi(cfg, address=ray_address(args), progress=not args.no_progress)
        for r in summary["rounds"]:
            print(f"round {r['round']}: largest weight change {r['max_change']:.4g}")
        print(("converged" if summary["converged"] else "not converged")
              + f" after {len(summary['rounds'])} round(s) (tolerance {cfg.doremi.tolerance})")
        print(f"{'domain':<14}{'reference':>11}{'doremi':>10}")
        first = summary["rounds"][0]["reference_weights"]
        for d in sorted(summary["weights"]):
            print(f"{d:<14}{first.get(d, 0.0):>11.4f}{summary['weights'][d]:>10.4f}")
        f = summary["flops"]
        print(f"search FLOPs {f['total']:.4g} (per round: reference {f['reference']:.3g}, proxy {f['proxy']:.3g}, "
              f"reference forward on the proxy's batches {f['reference_forward']:.3g})")
        if "target" in summary:
            t = summary["target"]
            print(f"target run {t['config']}: {t['total']:.4g} FLOPs; search / target = {t['search_over_target']:.3f}")
        print(f"weights: {os.path.join(cfg.output.dir, 'weights.json')} (trajectory.jsonl, trajectory.png beside it)")
        return 0

    return _training_errors(run)


def _baseline(args) -> int:
    import json

    from schemas.mixture import write_mixture_weights
    from training.mixture_weights import baseline_weights

    path = os.path.join(args.export, "manifest.json")
    if not os.path.exists(path):
        print(f"refinery: {path} does not exist. Fix: run `refinery export megatron` first", file=sys.stderr)
        return 2
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    try:
        weights = baseline_weights(args.name, manifest, os.path.abspath(path))
    except ValueError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_mixture_weights(args.out, weights)
    for d, w in sorted(weights.weights.items()):
        print(f"  {d:<14}{w:.4f}")
    print(f"written: {args.out}")
    return 0


def _compare(args) -> int:
    from training.mixture.compare import compare_mixtures, format_compare

    quiet_megatron()

    def run():
        report = compare_mixtures(args.config, args.mixtures, seeds=args.seeds, out=args.out,
                                  overrides=args.overrides, address=ray_address(args),
                                  progress=not args.no_progress)
        print(format_compare(report))
        print(f"written: {os.path.join(args.out, 'report.json')}, report.md, compare.png")
        return 0

    return _training_errors(run)
