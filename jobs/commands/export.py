"""`refinery export megatron RUN_DIR --tokenizer DIR [--out DIR] [--workers N]` and
`refinery export check EXPORT_DIR --weights FILE`: export a run to Megatron indexed datasets, and check
that megatron-core opens them and blends them in the proportions of a mixture-weights file.
"""

from __future__ import annotations

import json
import os
import sys


def register(subparsers) -> None:
    export = subparsers.add_parser("export", help="export a run's final data for training")
    actions = export.add_subparsers(dest="export_command", required=True)
    meg = actions.add_parser("megatron", help="tokenize into Megatron indexed datasets per domain (resumable)")
    meg.add_argument("run_dir", help="run folder (<output>/<job name>) with stats.json")
    meg.add_argument("--tokenizer", required=True, help="folder written by `refinery tokenizer train`")
    meg.add_argument("--out", default=None, help="output folder (default RUN_DIR/export-megatron-<tokenizer sha>)")
    meg.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    meg.add_argument("--max-retries", type=int, default=2, help="retries per shard before quarantine (default 2)")
    meg.add_argument("--batch-rows", type=int, default=10_000, help="documents per tokenizer call (default 10000)")
    meg.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else local)")
    meg.add_argument("--no-progress", action="store_true")
    meg.set_defaults(handler=_megatron)
    check = actions.add_parser("check", help="open the datasets with megatron-core and check a blend's proportions")
    check.add_argument("export_dir", help="folder with manifest.json")
    check.add_argument("--weights", default=None, help="mixture-weights JSON (default: token share of the manifest)")
    check.add_argument("--samples", type=int, default=20000, help="blend samples to draw (default 20000)")
    check.add_argument("--seq-length", type=int, default=128, help="tokens per sample (default 128)")
    check.add_argument("--tolerance", type=float, default=0.01, help="max |realized - weight| (default 0.01)")
    check.set_defaults(handler=_check)


def _megatron(args) -> int:
    from jobs.export_megatron import default_out, export_megatron

    import logging

    import ray

    # megatron-core logs every index it opens at INFO: keep the CLI output to our own summary.
    logging.getLogger("megatron").setLevel(logging.WARNING)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if address and not ray.is_initialized():
        ray.init(address=address, logging_level="WARNING")
    try:
        manifest = export_megatron(args.run_dir, args.tokenizer, out=args.out, workers=args.workers,
                                   max_retries=args.max_retries, batch_rows=args.batch_rows,
                                   progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 3
    for d, v in manifest["domains"].items():
        print(f"{d:<14} {v['documents']:>10} docs {v['tokens']:>14} tokens  {len(v['shards'])} shards  -> {v['prefix']}")
    print(f"total {manifest['total_documents']} docs, {manifest['total_tokens']} tokens ({manifest['dtype']})")
    if manifest["total_documents"] == 0:
        print(f"refinery: the run kept 0 documents, so the export is empty: training on it would fail. Fix: see "
              f"which stage dropped them with `refinery stats {args.run_dir}`", file=sys.stderr)
    out = args.out or default_out(args.run_dir, manifest["tokenizer_sha256"])
    print(f"export: {out} (next: refinery export check {out})")
    return 0


def _check(args) -> int:
    import logging

    logging.getLogger("megatron").setLevel(logging.WARNING)
    from corpus.io.files import join, read_json
    from schemas.mixture import MixtureWeightsError, load_mixture_weights
    from training.blend_check import check_blend
    from training.mixture_weights import natural_weights

    manifest_path = join(args.export_dir, "manifest.json")
    manifest = read_json(manifest_path)
    try:
        mixture = load_mixture_weights(args.weights) if args.weights else natural_weights(manifest, manifest_path)
    except MixtureWeightsError as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    report = check_blend(args.export_dir, manifest, mixture.weights, num_samples=args.samples,
                         seq_length=args.seq_length, tolerance=args.tolerance)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1
