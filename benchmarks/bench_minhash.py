"""MinHash signature throughput: refinery vs datasketch (per document, and bulk + LeanMinHash) vs
datatrove's MinhashDedupSignature, on the same documents with the same parameters, in one run.

Documents: English Wikipedia lead sections (sample `wiki-summaries`, ~10,000 articles, ~90 words
each) repeated `--repeat` times. Parameters for all: word 5-gram shingles, 128 permutations.
Every system starts from the raw text and ends with a signature per document (shingling included).
- datasketch: MinHash(num_perm).update_batch(shingle bytes) per document; MinHash.bulk(...) and
  LeanMinHash for the bulk path.
- datatrove: MinhashDedupSignature.get_shingles + get_signature per document (16 buckets x 8 hashes,
  64-bit), with its default English word tokenizer (spaCy's rule-based tokenizer).
- refinery: corpus.dedup.minhash.signatures(word_shingles(batch)) on Arrow batches of 4096 documents.

    .venv/bin/python benchmarks/bench_minhash.py [--repeat 2] [--limit 0]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import pyarrow as pa

NUM_PERM = 128
NGRAM = 5


def load_texts(repeat: int, limit: int) -> list[str]:
    from corpus.sources.samples import sample_path

    with open(os.path.join(sample_path("wiki-summaries"), "data", "summaries_en-us.json"), encoding="utf-8") as f:
        texts = [v["extract"] for _, v in sorted(json.load(f).items()) if v.get("extract")]
    texts = texts[:limit] if limit else texts
    return texts * repeat


def words_5grams(text: str) -> list[bytes]:
    w = text.lower().split()
    return [" ".join(w[i:i + NGRAM]).encode() for i in range(max(len(w) - NGRAM + 1, 1))]


def bench(name, fn, n_docs, runs=1, warmup=0):
    """Best of `runs` after `warmup` untimed runs (5 after 2 for every system but datatrove, whose one run
    takes 10-20 s). Warm means steady state, as in a worker that has processed a few batches: glibc's
    malloc maps a fresh big block per allocation, page faults included, until frees have raised its
    mmap threshold (a few calls); cold, refinery's first 3-4 batches ran 30-40% slower.
    Rate by CPU seconds of this process (steadier than wall time on a shared machine: every system
    here is single-threaded), wall time printed too."""
    for _ in range(warmup):
        fn()
    best_cpu, best_wall = float("inf"), float("inf")
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - t0)
    print(f"  {name:38s} cpu {best_cpu:8.2f} s  wall {best_wall:8.2f} s  {n_docs / best_cpu:10,.0f} docs/cpu-s",
          flush=True)
    return n_docs / best_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="articles used (0: all)")
    args = ap.parse_args()
    texts = load_texts(args.repeat, args.limit)
    n = len(texts)
    print(f"{n} documents, {sum(len(t) for t in texts) / 1e6:.1f} MB of text, word {NGRAM}-grams, "
          f"{NUM_PERM} permutations")
    rates = {}

    from corpus.dedup.minhash import signatures, word_shingles

    def refinery():
        for i in range(0, n, 4096):
            signatures(word_shingles(pa.array(texts[i:i + 4096]), NGRAM), NUM_PERM)

    rates["refinery"] = bench("refinery (numpy, whole batches)", refinery, n, runs=5, warmup=2)

    from datasketch import LeanMinHash, MinHash

    def ds_per_doc():
        for t in texts:
            m = MinHash(num_perm=NUM_PERM)
            m.update_batch(words_5grams(t))

    def ds_bulk():
        for i in range(0, n, 4096):
            [LeanMinHash(m) for m in MinHash.bulk([words_5grams(t) for t in texts[i:i + 4096]], num_perm=NUM_PERM)]

    rates["datasketch per doc"] = bench("datasketch MinHash per doc", ds_per_doc, n, runs=5, warmup=2)
    rates["datasketch bulk"] = bench("datasketch MinHash.bulk + LeanMinHash", ds_bulk, n, runs=5, warmup=2)

    from datatrove.pipeline.dedup.minhash import HashConfig, MinhashConfig, MinhashDedupSignature

    with tempfile.TemporaryDirectory() as tmp:
        cfg = MinhashConfig(n_grams=NGRAM, num_buckets=16, hashes_per_bucket=8, hash_config=HashConfig(precision=64))
        step = MinhashDedupSignature(output_folder=tmp, config=cfg)

        def datatrove():
            for t in texts:
                step.get_signature(step.get_shingles(t))

        rates["datatrove"] = bench("datatrove MinhashDedupSignature", datatrove, n)

    r = rates["refinery"]
    print("ratios (refinery / peer):")
    for k in ("datasketch per doc", "datasketch bulk", "datatrove"):
        print(f"  vs {k:22s} {r / rates[k]:6.1f}x")
    print(json.dumps({"documents": n, "docs_per_s": {k: round(v) for k, v in rates.items()}}))


if __name__ == "__main__":
    main()
