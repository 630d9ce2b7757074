"""Fuzzy dedup at its default settings, scored against measured Jaccard: refinery's `minhash_dedup` phase
(this tree, and optionally an older tree: `--before DIR`) vs datasketch's MinHashLSH, on the same
documents, with wall and CPU seconds of each run.

Documents: the Jaccard-labelled set (`refinery dedup labelled --truth jaccard`: Python docs pages and
Shakespeare pieces of 300-6,000 words, 1-3 copies by controlled word edits, truth = measured Jaccard
of word 5-grams) plus `--bulk` unlabelled Wikipedia lead sections (es, fr), in `--shards` shards.
Scores (corpus.dedup.evaluate.jaccard_scores, threshold 0.8) on the labelled documents only. With
`--truth provenance` the documents are those of benchmarks/bench_fuzzy_dedup.py instead (the provenance
set of `refinery dedup labelled --truth provenance`, Wikipedia leads and Shakespeare editions), scored
pairwise against its clusters (corpus.dedup.evaluate.pairwise_scores).

- refinery: the phase kind run in process (corpus.dedup.local: every step, one worker), default
  `MinhashDedupConfig()` of the tree it runs from; survivors read from its results.
- datasketch (`pip install -c benchmarks/constraints-bench.txt datasketch`): MinHashLSH(threshold=0.8,
  num_perm=128), which derives 9 x 13,
  fed the very shingles refinery uses (each 64-bit shingle hash as 8 bytes, so both see equal sets),
  used as a streaming dedup: in input order, a document with an LSH candidate among the kept ones is
  removed for the first of them, else inserted and kept.
Each run is a child process (`--child`) that runs its system once untimed (lazy imports such as the
pandas that pyarrow loads on first use, first calls) and then once timed, as a working actor would
(`--cold`: the first run is timed); runs alternate between the systems, `--repeat` rounds, so the load of
this shared machine hits all alike. CPU seconds are the child's process time.

    .venv/bin/python benchmarks/bench_dedup_quality.py [--repeat 3] [--bulk 10000] [--before /tmp/old-tree]
                                                       [--set-seed 17] [--truth jaccard|provenance] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THRESHOLD, NUM_PERM = 0.8, 128


def build_inputs(folder: str, bulk: int, shards: int, truth: str, set_seed: int) -> list[dict]:
    import pyarrow as pa

    from corpus.dedup.evaluate import read_labelled
    from corpus.dedup.labelled import build_labelled
    from corpus.dedup.labelled_jaccard import build_labelled_jaccard
    from corpus.dedup.local import write_shards
    from corpus.samples import sample_path

    name = "labelled" if truth == "provenance" else "labelled-jaccard" + (f"-seed{set_seed}" if set_seed != 17 else "")
    path = os.path.expanduser(f"~/.cache/refinery/dedup/{name}.jsonl")
    if not os.path.exists(path):
        build_labelled(path) if truth == "provenance" else build_labelled_jaccard(path, seed=set_seed)
    records = read_labelled(path)
    extra = []
    for lang in ("es-es", "fr-fr"):
        with open(os.path.join(sample_path("wiki-summaries"), "data", f"summaries_{lang}.json"), encoding="utf-8") as f:
            extra += [(f"extra/{lang}/{k}", v["extract"]) for k, v in sorted(json.load(f).items()) if v.get("extract")]
    extra = extra[:bulk]
    table = pa.table({"id": [r["id"] for r in records] + [i for i, _ in extra],
                      "text": [r["text"] for r in records] + [t for _, t in extra]})
    parts = write_shards(table, os.path.join(folder, "upstream"), shards)
    with open(os.path.join(folder, "parts.json"), "w") as f:
        json.dump(parts, f)
    return records


def child_refinery(folder: str, out: str, warm: bool) -> dict:
    from corpus.dedup import fuzzy
    from corpus.dedup.layout import read_table
    from corpus.dedup.local import run_kind

    with open(os.path.join(folder, "parts.json")) as f:
        parts = json.load(f)
    if warm:  # once untimed: lazy imports (pyarrow pulls in pandas) and first calls, as in a working actor
        warm_dir = tempfile.mkdtemp(dir=folder, prefix="warm-")
        run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(), warm_dir, parts)
        shutil.rmtree(warm_dir)
    phase_dir = tempfile.mkdtemp(dir=folder, prefix="phase-")
    cpu0, t0 = time.process_time(), time.perf_counter()
    summary = run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(), phase_dir, parts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    clusters, removed = {}, []
    for key in parts:
        t = read_table(os.path.join(phase_dir, "results", f"{key}.parquet"))
        ids = t.column("id").to_pylist()
        clusters.update(zip(ids, t.column("cluster").to_pylist()))
        removed += [i for i, d in zip(ids, t.column("duplicate").to_pylist()) if d]
    shutil.rmtree(phase_dir)
    return {"wall_s": wall, "cpu_s": cpu, "clusters": clusters, "removed": removed,
            "settings": {k: summary.get(k) for k in ("bands", "rows", "num_perm")}}


def child_datasketch(folder: str, out: str, warm: bool) -> dict:
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    from corpus.dedup.layout import read_table
    from corpus.dedup.minhash import shingle

    with open(os.path.join(folder, "parts.json")) as f:
        parts = json.load(f)

    def streaming_dedup() -> tuple[MinHashLSH, dict, list]:
        lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        clusters, removed = {}, []
        for key in sorted(parts):
            for path in parts[key]:
                t = read_table(path)
                sh = shingle(t.column("text").combine_chunks(), ngram=5, mode="word")
                for k, doc_id in enumerate(t.column("id").to_pylist()):
                    hashes = np.unique(sh.hashes[sh.offsets[k]:sh.offsets[k + 1]])
                    m = MinHash(num_perm=NUM_PERM)
                    m.update_batch([h.tobytes() for h in hashes])
                    found = lsh.query(m)
                    if found:
                        clusters[doc_id] = clusters[min(found)]
                        removed.append(doc_id)
                    else:
                        lsh.insert(doc_id, m)
                        clusters[doc_id] = doc_id
        return lsh, clusters, removed

    if warm:
        streaming_dedup()
    cpu0, t0 = time.process_time(), time.perf_counter()
    lsh, clusters, removed = streaming_dedup()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "clusters": clusters, "removed": removed,
            "settings": {"bands": lsh.b, "rows": lsh.r, "num_perm": NUM_PERM}}


def run_child(system: str, tree: str, folder: str, cold: bool) -> dict:
    out = os.path.join(folder, f"{system}.json")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, os.path.abspath(__file__), "--child", system, "--folder", folder, "--out", out,
                    *(["--cold"] if cold else [])], check=True, env=env, cwd=tree)
    with open(out) as f:
        return json.load(f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bulk", type=int, default=10000, help="unlabelled Wikipedia leads added (timing load)")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--truth", choices=("jaccard", "provenance"), default="jaccard", help="labelled documents")
    ap.add_argument("--set-seed", type=int, default=17, help="seed of the Jaccard-labelled set (17: the one of "
                    "`refinery dedup labelled`)")
    ap.add_argument("--before", default=None, help="an older refinery tree to run as `before` (e.g. git archive main)")
    ap.add_argument("--no-peer", action="store_true", help="skip datasketch")
    ap.add_argument("--cold", action="store_true", help="time each system's first run in its process (default: "
                    "a second run, after an untimed one)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child = {"refinery": child_refinery, "datasketch": child_datasketch}[args.child]
        result = child(args.folder, args.out, warm=not args.cold)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return
    sys.path.insert(0, REPO)
    from corpus.dedup.evaluate import (best_clustering_f1, cluster_pair_jaccards, family_pairs, jaccard_scores,
                                       pairwise_scores, recall_by_jaccard)

    systems = [("refinery", "refinery", REPO)]
    if args.before:
        systems.insert(0, ("refinery-before", "refinery", os.path.abspath(args.before)))
    if not args.no_peer:
        systems.append(("datasketch", "datasketch", REPO))
    tmp = tempfile.mkdtemp(prefix="bench-dedup-quality-")
    try:
        records = build_inputs(tmp, args.bulk, args.shards, args.truth, args.set_seed)
        truth = {r["id"]: r["cluster"] for r in records}
        pairs = family_pairs(records) if args.truth == "jaccard" else cluster_pair_jaccards(records)
        by_bin: dict[str, dict] = {}
        labelled = {r["id"] for r in records}
        print(f"{len(records)} labelled documents + {args.bulk} bulk in {args.shards} shards; threshold {THRESHOLD}",
              flush=True)
        if args.truth == "jaccard":
            best = best_clustering_f1(records, THRESHOLD)
            print(f"best pairwise F1 of any clustering, knowing the truth: {best['f1']:.4f} ({best['correct_pairs']} "
                  f"of {best['true_pairs']} true pairs in {best['predicted_pairs']} predicted)", flush=True)
        runs: dict[str, list] = {name: [] for name, _, _ in systems}
        for rnd in range(args.repeat):
            for name, system, tree in (systems if rnd % 2 == 0 else systems[::-1]):
                r = run_child(system, tree, tmp, args.cold)
                predicted = {i: c for i, c in r["clusters"].items() if i in labelled}
                if args.truth == "jaccard":
                    scores = jaccard_scores(records, predicted, {i for i in r["removed"] if i in labelled}, THRESHOLD)
                else:  # no Jaccard truth: removal is not scored
                    scores = {**pairwise_scores(predicted, truth), "removal_precision": float("nan"),
                              "document_recall": float("nan")}
                runs[name].append({"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], **scores, **r["settings"]})
                by_bin[name] = recall_by_jaccard(predicted, pairs)
                print(f"  round {rnd + 1} {name:16s} wall {r['wall_s']:6.2f} s  cpu {r['cpu_s']:6.2f} s  "
                      f"F1 {scores['f1']:.4f}  removal precision {scores['removal_precision']:.4f}  "
                      f"document recall {scores['document_recall']:.4f}", flush=True)
        print("\n| system | bands x rows | wall s (median) | CPU s (median) | pair P | pair R | pair F1 | "
              "removal precision | document recall |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, rs in runs.items():
            s = rs[0]
            print(f"| {name} | {s['bands']} x {s['rows']} | {statistics.median(r['wall_s'] for r in rs):.2f} | "
                  f"{statistics.median(r['cpu_s'] for r in rs):.2f} | {s['precision']:.4f} | {s['recall']:.4f} | "
                  f"{s['f1']:.4f} | {s['removal_precision']:.4f} | {s['document_recall']:.4f} |")
        bins = sorted({b for v in by_bin.values() for b in v})
        print("\nlabelled pairs put in one cluster, per bin of measured Jaccard (found / pairs):")
        print("| system | " + " | ".join(bins) + " |")
        print("|---|" + "---:|" * len(bins))
        for name, v in by_bin.items():
            print(f"| {name} | " + " | ".join(f"{v[b]['rate']:.2f} ({v[b]['found']}/{v[b]['total']})" if b in v
                                             else "-" for b in bins) + " |")
        for name in runs:
            if name != "refinery":
                for what in ("wall_s", "cpu_s"):
                    ratio = statistics.median(r[what] for r in runs["refinery"]) / statistics.median(r[what] for r in runs[name])
                    print(f"{what}: refinery / {name} = {ratio:.2f} (median of rounds)")
        print(json.dumps({name: rs for name, rs in runs.items()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
