"""End-to-end fuzzy dedup: refinery's job (read -> minhash_dedup phase -> removal) on Ray vs datatrove's
four-stage MinHash pipeline (signatures, buckets, clusters, filter) on LocalPipelineExecutor, on the same
documents with the same parameters in one run; wall time and F1 of both.

Documents: the labelled near-duplicate set (`refinery dedup labelled`: Wikipedia articles with edited
copies, Shakespeare editions) plus `--extra` unlabelled Wikipedia lead sections (es, fr) as bulk, split
into `--shards` JSONL files. F1 is scored on the labelled documents only (corpus.dedup.evaluate).
Parameters for both: word 5-grams, 9 bands x 13 rows (117 hashes; what refinery derives for threshold
0.8 from 128 permutations with `verify: false`), 64-bit hashes, `--workers` processes; refinery runs
with `verify: false` so that both link every LSH candidate pair (its defaults, 21 x 6 verified, are
compared by benchmarks/bench_dedup_quality.py). datatrove tokenizes English with spaCy (its default).
Wall time from start to clusters: Ray's start-up (local cluster and actors) is inside refinery's, the
process pools' inside datatrove's; both systems' modules are imported and the inputs read once before
either clock starts. Peers' versions: benchmarks/constraints-bench.txt.

    .venv/bin/python benchmarks/bench_fuzzy_dedup.py [--extra 20000] [--shards 8] [--workers 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import tempfile
import time

BANDS, ROWS, NGRAM = 9, 13, 5


def build_inputs(folder: str, extra: int, shards: int) -> list[dict]:
    from corpus.dedup.evaluate import read_labelled
    from corpus.dedup.labelled import build_labelled
    from corpus.samples import sample_path

    labelled_path = os.path.expanduser("~/.cache/refinery/dedup/labelled.jsonl")
    if not os.path.exists(labelled_path):
        build_labelled(labelled_path)
    records = read_labelled(labelled_path)
    bulk = []
    for lang in ("es-es", "fr-fr"):
        with open(os.path.join(sample_path("wiki-summaries"), "data", f"summaries_{lang}.json"), encoding="utf-8") as f:
            bulk += [{"id": f"extra/{lang}/{k}", "text": v["extract"]} for k, v in sorted(json.load(f).items())
                     if v.get("extract")]
    docs = [{"id": r["id"], "text": r["text"]} for r in records] + bulk[:extra]
    os.makedirs(folder, exist_ok=True)
    size = -(-len(docs) // shards)
    for i in range(shards):
        with open(os.path.join(folder, f"part-{i:03d}.jsonl"), "w", encoding="utf-8") as f:
            for d in docs[i * size:(i + 1) * size]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return records


def warm_up(inputs: str) -> None:
    """What neither system should be charged for: importing modules in this process and reading the
    input files from disk the first time (the system that ran second would find them cached)."""
    import datatrove.pipeline.dedup.minhash  # noqa: F401
    import datatrove.utils.word_tokenizers as tokenizers

    import corpus.runtime.executor  # noqa: F401

    tokenizers.load_word_tokenizer("en").word_tokenize("warm up")  # spaCy loads its English tokenizer lazily
    for path in glob.glob(os.path.join(inputs, "*.jsonl")):
        with open(path, "rb") as f:
            f.read()


def run_refinery(inputs: str, out: str, workers: int, seed: int) -> dict[str, int]:
    from corpus.io.parquet import read_documents
    from corpus.runtime.executor import run_job
    from corpus.runtime.spec import parse_job

    job = parse_job({
        "name": "bench", "output": out,
        "inputs": [{"source": "jsonl", "paths": [os.path.join(inputs, "*.jsonl")], "domain": "wikipedia",
                    "options": {"meta_fields": ["id"]}}],
        "runtime": {"workers": workers, "max_retries": 1, "batch_rows": 4096},
        "phases": [{"name": "read", "stages": ["length"]},
                   {"name": "fuzzy", "kind": "minhash_dedup",
                    "settings": {"num_perm": 128, "bands": BANDS, "rows": ROWS, "ngram": NGRAM, "seed": seed,
                                 "verify": False}},
                   {"name": "remove", "stages": [{"minhash_dedup": {"index_phase": "fuzzy"}}, {"select": {"rules": [
                       {"column": "minhash_duplicate_v2", "op": "==", "value": True, "reason": "near_duplicate"}]}}]}]},
        base_dir=inputs, output_override=True)
    result = run_job(job, progress=False)
    phase = {p.name: p for p in result.phases}["remove"]
    clusters = {}
    for kind in ("data", "rejected"):
        t = read_documents(os.path.join(phase.phase_dir, kind))
        ids = [json.loads(m)["id"] for m in t.column("meta").to_pylist()]
        clusters.update(zip(ids, t.column("minhash_cluster_v2").to_pylist()))
    return clusters


def run_datatrove(inputs: str, out: str, workers: int, tasks: int, seed: int) -> dict[str, int]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (HashConfig, MinhashConfig, MinhashDedupBuckets,
                                                  MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    cfg = MinhashConfig(n_grams=NGRAM, num_buckets=BANDS, hashes_per_bucket=ROWS, seed=seed,
                        hash_config=HashConfig(precision=64))
    s1 = LocalPipelineExecutor(pipeline=[JsonlReader(inputs, glob_pattern="*.jsonl"),
                                         MinhashDedupSignature(output_folder=f"{out}/sigs", config=cfg)],
                               tasks=tasks, workers=workers, logging_dir=f"{out}/logs/1")
    s2 = LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(input_folder=f"{out}/sigs", output_folder=f"{out}/buckets",
                                                             config=cfg)],
                               tasks=BANDS, workers=workers, logging_dir=f"{out}/logs/2", depends=s1)
    s3 = LocalPipelineExecutor(pipeline=[MinhashDedupCluster(input_folder=f"{out}/buckets", output_folder=f"{out}/remove",
                                                             config=cfg, save_cluster_id=True)],
                               tasks=1, logging_dir=f"{out}/logs/3", depends=s2)
    s4 = LocalPipelineExecutor(pipeline=[JsonlReader(inputs, glob_pattern="*.jsonl"),
                                         MinhashDedupFilter(input_folder=f"{out}/remove", load_cluster_ids=True,
                                                            exclusion_writer=JsonlWriter(f"{out}/removed")),
                                         JsonlWriter(f"{out}/kept")],
                               tasks=tasks, workers=workers, logging_dir=f"{out}/logs/4", depends=s3)
    s4.run()
    clusters = {}
    for path in glob.glob(f"{out}/kept/*.jsonl.gz") + glob.glob(f"{out}/removed/*.jsonl.gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                c = d["metadata"].get("minhash_cluster_id", -1)
                clusters[d["id"]] = c if c != -1 else ("single", d["id"])
    return clusters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--extra", type=int, default=20000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="permutation seed of both systems")
    args = ap.parse_args()
    from corpus.dedup.evaluate import pairwise_scores

    tmp = tempfile.mkdtemp(prefix="bench-fuzzy-")
    try:
        records = build_inputs(os.path.join(tmp, "in"), args.extra, args.shards)
        n_docs = sum(1 for p in glob.glob(os.path.join(tmp, "in", "*.jsonl")) for _ in open(p, encoding="utf-8"))
        truth = {r["id"]: r["cluster"] for r in records}
        print(f"{n_docs} documents ({len(records)} labelled) in {args.shards} shards, {args.workers} workers, "
              f"word {NGRAM}-grams, {BANDS} bands x {ROWS} rows, seed {args.seed}", flush=True)
        import ray

        warm_up(os.path.join(tmp, "in"))

        def refinery():
            # Starting Ray is part of refinery's end-to-end cost, as starting its process pool is of datatrove's.
            ray.init(address="local", num_cpus=args.workers, include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False)
            return run_refinery(os.path.join(tmp, "in"), os.path.join(tmp, "rf"), args.workers, args.seed)

        rows = {}
        for name, fn in (("datatrove", lambda: run_datatrove(os.path.join(tmp, "in"), os.path.join(tmp, "dt"),
                                                             args.workers, args.shards, args.seed)),
                         ("refinery", refinery)):
            t0 = time.perf_counter()
            clusters = fn()
            wall = time.perf_counter() - t0
            if ray.is_initialized():
                ray.shutdown()
            scores = pairwise_scores({i: clusters.get(i, ("single", i)) for i in truth}, truth)
            rows[name] = {"wall_s": round(wall, 2), **scores}
            print(f"  {name:10s} wall {wall:7.1f} s  precision {scores['precision']:.4f}  recall "
                  f"{scores['recall']:.4f}  F1 {scores['f1']:.4f}", flush=True)
        print(f"speed-up refinery vs datatrove: {rows['datatrove']['wall_s'] / rows['refinery']['wall_s']:.2f}x, "
              f"F1 {rows['refinery']['f1']:.4f} vs {rows['datatrove']['f1']:.4f}")
        print(json.dumps({"documents": n_docs, "seed": args.seed, **rows}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
