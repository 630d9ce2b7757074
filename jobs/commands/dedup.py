"""`refinery dedup labelled` and `refinery dedup eval`: build the labelled near-duplicate set from real
text, and score duplicate detection on it (pairwise precision, recall, F1; recall per edit kind).

    refinery dedup labelled --out ~/.cache/refinery/dedup/labelled.jsonl
    refinery dedup eval --labelled ~/.cache/refinery/dedup/labelled.jsonl [--set threshold=0.7 ...]
    refinery dedup eval --labelled FILE --clusters predicted.parquet   # score another system's (id, cluster)

`eval` without `--clusters` runs the `minhash_dedup` phase kind in this process with its default
settings (changed by `--set key=value`, as in a job file's `settings:`), and prints a JSON report.
"""

from __future__ import annotations

import json
import os

DEFAULT_LABELLED = os.path.join("~", ".cache", "refinery", "dedup", "labelled.jsonl")


def register(subparsers) -> None:
    dedup = subparsers.add_parser("dedup", help="deduplication tools: labelled set, evaluation")
    actions = dedup.add_subparsers(dest="dedup_command", required=True)
    build = actions.add_parser("labelled", help="build the labelled near-duplicate set (Wikipedia edits, "
                               "Shakespeare editions)")
    build.add_argument("--out", default=DEFAULT_LABELLED, help=f"JSONL to write (default {DEFAULT_LABELLED})")
    build.add_argument("--pairs", type=int, default=700, help="Wikipedia articles given an edited copy")
    build.add_argument("--negatives", type=int, default=1400, help="Wikipedia articles left alone")
    build.set_defaults(handler=_labelled)
    ev = actions.add_parser("eval", help="precision / recall / F1 of duplicate detection on a labelled set")
    ev.add_argument("--labelled", default=DEFAULT_LABELLED,
                    help="JSONL with id, text, cluster (and optional source, edit); built if missing at the default path")
    ev.add_argument("--clusters", default=None, help="score this Parquet/JSONL of (id, cluster) instead of running MinHash")
    ev.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a minhash_dedup setting, e.g. threshold=0.7 (repeatable)")
    ev.add_argument("--shards", type=int, default=4, help="shards the labelled set is split into")
    ev.set_defaults(handler=_eval)


def _labelled(args) -> int:
    from corpus.dedup.labelled import build_labelled

    print(json.dumps(build_labelled(os.path.expanduser(args.out), args.pairs, args.negatives), indent=2))
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
    from corpus.dedup.evaluate import evaluate, minhash_clusters, read_labelled
    from corpus.dedup.fuzzy import MinhashDedupConfig

    path = os.path.expanduser(args.labelled)
    if not os.path.exists(path):
        if args.labelled != DEFAULT_LABELLED:
            print(f"no labelled set at {path}. Fix: refinery dedup labelled --out {args.labelled}")
            return 2
        from corpus.dedup.labelled import build_labelled
        build_labelled(path)
    records = read_labelled(path)
    report = {"labelled": path, "documents": len(records)}
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
        predicted = minhash_clusters(records, cfg, shards=args.shards)
        report["minhash"] = predicted.pop("__summary__")
    report.update(evaluate(records, predicted))
    print(json.dumps(report, indent=2, default=str))
    return 0
