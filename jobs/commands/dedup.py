"""`refinery dedup labelled` and `refinery dedup eval`: build the labelled near-duplicate set from real
text, and score duplicate detection on it (pairwise precision, recall, F1; recall per edit kind).

    refinery dedup labelled [--truth jaccard|provenance] [--out FILE]
    refinery dedup eval [--truth jaccard|provenance] [--labelled FILE] [--set threshold=0.7 ...]
    refinery dedup eval --labelled FILE --clusters predicted.parquet   # score another system's (id, cluster)

Two sets: `jaccard` (default; corpus.dedup.labelled_jaccard: long documents with controlled edits, truth
= measured Jaccard of word 5-grams) and `provenance` (corpus.dedup.labelled: an edited copy is a
duplicate of its original however far the edit went). `eval` without `--clusters` runs the
`minhash_dedup` phase kind in this process with its default settings (changed by `--set key=value`, as
in a job file's `settings:`), and prints a JSON report.
"""

from __future__ import annotations

import json
import os

DEFAULT_LABELLED = {"provenance": os.path.join("~", ".cache", "refinery", "dedup", "labelled.jsonl"),
                    "jaccard": os.path.join("~", ".cache", "refinery", "dedup", "labelled-jaccard.jsonl")}
TRUTHS = ("jaccard", "provenance")


def _build(truth: str, path: str, args=None) -> dict:
    if truth == "jaccard":
        from corpus.dedup.labelled_jaccard import build_labelled_jaccard
        return build_labelled_jaccard(path, **({"families": args.families} if args else {}))
    from corpus.dedup.labelled import build_labelled
    return build_labelled(path, *((args.pairs, args.negatives) if args else ()))


def register(subparsers) -> None:
    dedup = subparsers.add_parser("dedup", help="deduplication tools: labelled set, evaluation")
    actions = dedup.add_subparsers(dest="dedup_command", required=True)
    build = actions.add_parser("labelled", help="build a labelled near-duplicate set: jaccard (Python docs and "
                               "Shakespeare with controlled edits) or provenance (Wikipedia edits, Shakespeare editions)")
    build.add_argument("--truth", choices=TRUTHS, default="jaccard", help="which set (default jaccard)")
    build.add_argument("--out", default=None, help=f"JSONL to write (default {DEFAULT_LABELLED})")
    build.add_argument("--families", type=int, default=300, help="jaccard: originals given 1-3 edited copies")
    build.add_argument("--pairs", type=int, default=700, help="provenance: Wikipedia articles given an edited copy")
    build.add_argument("--negatives", type=int, default=1400, help="provenance: Wikipedia articles left alone")
    build.set_defaults(handler=_labelled)
    ev = actions.add_parser("eval", help="precision / recall / F1 of duplicate detection on a labelled set")
    ev.add_argument("--truth", choices=TRUTHS, default="jaccard", help="which set, at its default path "
                    "(built if missing); ignored with --labelled")
    ev.add_argument("--labelled", default=None,
                    help="JSONL with id, text, cluster (and optional source, edit, jaccard)")
    ev.add_argument("--clusters", default=None, help="score this Parquet/JSONL of (id, cluster) instead of running MinHash")
    ev.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a minhash_dedup setting, e.g. threshold=0.7 (repeatable)")
    ev.add_argument("--shards", type=int, default=4, help="shards the labelled set is split into")
    ev.set_defaults(handler=_eval)


def _labelled(args) -> int:
    print(json.dumps(_build(args.truth, os.path.expanduser(args.out or DEFAULT_LABELLED[args.truth]), args), indent=2))
    return 0


def _read_clusters(path: str) -> dict:
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq
        t = pq.read_table(path, columns=["id", "cluster"])
        return dict(zip(t.column("id").to_pylist(), t.column("cluster").to_pylist()))
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {r["id"]: r["cluster"] for r in rows}


def _eval(args) -> int:
    import yaml

    from corpus.config import config_from_dict
    from corpus.dedup.evaluate import evaluate, minhash_results, read_labelled
    from corpus.dedup.fuzzy import MinhashDedupConfig

    path = os.path.expanduser(args.labelled or DEFAULT_LABELLED[args.truth])
    if not os.path.exists(path):
        if args.labelled:
            print(f"no labelled set at {path}. Fix: refinery dedup labelled --out {args.labelled}")
            return 2
        _build(args.truth, path)
    records = read_labelled(path)
    report = {"labelled": path, "documents": len(records)}
    removed, threshold = None, MinhashDedupConfig().threshold
    if args.clusters:
        predicted = _read_clusters(args.clusters)
        report["predicted_from"] = args.clusters
    else:
        settings = {}
        for item in args.overrides:
            key, sep, raw = item.partition("=")
            if not sep:
                print(f"--set {item!r}: expected key=value")
                return 2
            settings[key] = yaml.safe_load(raw)
        cfg = config_from_dict(MinhashDedupConfig, settings, "dedup eval --set")
        predicted, removed, report["minhash"] = minhash_results(records, cfg, shards=args.shards)
        threshold = cfg.threshold
    report.update(evaluate(records, predicted, removed, threshold))
    print(json.dumps(report, indent=2, default=str))
    return 0
