"""`refinery align data --out DIR [--wheel FILE] [--cache DIR] [--sft-examples N] [--preference-prompts N]`:
the SFT file (LIMA-style selection, ~1,000 examples) and the preference file (K = 4..9 ranked answers per
prompt) built from the chat-format eval sets of the pinned, sha256-checked `evals==3.0.1.post1` wheel
(training/align/evals_data.py). Writes DIR/sft.jsonl, DIR/preferences.jsonl, DIR/align_data.json.

Exit status: 0 done; 1 the wheel could not be fetched or failed its sha256 check.
"""

from __future__ import annotations

import os
import sys


def register(subparsers) -> None:
    align = subparsers.add_parser("align", help="alignment data (SFT and preferences) from pinned registry packages")
    actions = align.add_subparsers(dest="align_command", required=True)
    data = actions.add_parser("data", help="build sft.jsonl and preferences.jsonl from the evals wheel")
    data.add_argument("--out", required=True, help="output folder, e.g. runs/align-data")
    data.add_argument("--wheel", default=None, help="a local evals-3.0.1.post1 wheel (sha256-checked) instead of pip")
    data.add_argument("--cache", default=os.path.join("~", ".cache", "refinery", "align"),
                      help="where the downloaded wheel is kept (default ~/.cache/refinery/align)")
    data.add_argument("--sft-examples", type=int, default=1000, help="SFT rows (LIMA: ~1,000)")
    data.add_argument("--preference-prompts", type=int, default=1000, help="preference rows (prompts)")
    data.add_argument("--seed", type=int, default=0)
    data.set_defaults(handler=_data)


def _data(args) -> int:
    from training.align.evals_data import AlignDataBuildConfig, EvalsDataError, build_align_data, fetch_evals_wheel

    try:
        wheel = fetch_evals_wheel(os.path.expanduser(args.cache), args.wheel)
    except EvalsDataError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 1
    cfg = AlignDataBuildConfig(sft_examples=args.sft_examples, preference_prompts=args.preference_prompts,
                               seed=args.seed)
    report = build_align_data(wheel, args.out, cfg)
    p = report["preferences"]
    print(f"{report['eligible_rows']} eligible rows in {os.path.basename(wheel)} (sha256 checked)")
    print(f"  sft.jsonl          {report['sft']['rows']} examples from {len(report['sft']['per_eval_set'])} eval sets")
    print(f"  preferences.jsonl  {p['rows']} prompts, {p['answers']} ranked answers (K: "
          + ", ".join(f"{k}: {n}" for k, n in sorted(p["k"].items())) + ")")
    print(f"  align_data.json    provenance, selection rules, counts -> {args.out}")
    return 0
