"""MinHash signature throughput: refinery vs datasketch (per document, and bulk + LeanMinHash) vs
datatrove's MinhashDedupSignature, on the same documents with the same parameters, in one run.

Documents (`--docs`, benchmarks/real_documents.py): `leads`, English Wikipedia lead sections (sample
`wiki-summaries`, ~10,000 articles, ~90 words each; `--join 10` joins every 10 into one document, ~780
words, web-page length); `pydoc`, the Python docs pages as visible text, and `books`, the Gutenberg
Shakespeare plays, both cut into pieces of 500-6,000 words. The list is repeated `--repeat` times.
Parameters for all: word 5-gram shingles, 128 permutations.
Every system starts from the raw text and ends with a signature per document (shingling included).
- datasketch: MinHash(num_perm).update_batch(shingle bytes) per document; MinHash.bulk(...) and
  LeanMinHash for the bulk path.
- datatrove: MinhashDedupSignature.get_shingles + get_signature per document (16 buckets x 8 hashes,
  64-bit), with its default English word tokenizer (spaCy's rule-based tokenizer) and, like for like,
  with a whitespace word tokenizer (`str.split` after its own text normalization); one untimed run
  on 200 documents first (spaCy loads lazily). Peers' versions: benchmarks/constraints-bench.txt.
- refinery: corpus.dedup.minhash.text_signatures on Arrow batches of 4096 documents (the minhash_dedup
  phase's default batch_rows; it works through them in slices of ~2 MiB of text).

    .venv/bin/python benchmarks/bench_minhash.py [--docs leads] [--repeat 2] [--limit 0] [--rounds 5] [--block 3]
                                                 [--join 1] [--no-datatrove]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import pyarrow as pa

NUM_PERM = 128
NGRAM = 5


def load_texts(docs: str, repeat: int, limit: int) -> list[str]:
    from real_documents import documents

    texts = documents(docs)
    texts = texts[:limit] if limit else texts
    return texts * repeat


def words_5grams(text: str) -> list[bytes]:
    w = text.lower().split()
    return [" ".join(w[i:i + NGRAM]).encode() for i in range(max(len(w) - NGRAM + 1, 1))]


def cpu_seconds(fn) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def bench_interleaved(systems: dict, n_docs: int, rounds: int, block: int, warmup: int) -> tuple[dict, dict]:
    """Docs per CPU second of each system per round, and per round the ratio refinery / each peer.

    Rounds interleave the systems (refinery, peer 1, peer 2, refinery, ...), so a ratio compares runs
    seconds apart: on this shared machine the load drifts over minutes, which moved separately timed
    figures by +-20%. Within a round each system runs `block` times back to back and its best run
    counts: steady state, as in a worker that runs one of them all day. (Right after another system's
    runs, the first run of a block is slower for every system, refinery by 10-25%: glibc hands back
    and re-faults the memory of big arrays until repeated allocations raise its mmap threshold.)
    `warmup` untimed runs of each first. By CPU seconds of this process: every system here is
    single-threaded."""
    for fn in systems.values():
        for _ in range(warmup):
            fn()
    rates = {k: [] for k in systems}
    for _ in range(rounds):
        for k, fn in systems.items():
            rates[k].append(n_docs / min(cpu_seconds(fn) for _ in range(block)))
    ratios = {k: [r / p for r, p in zip(rates["refinery"], rates[k])] for k in systems if k != "refinery"}
    return rates, ratios


def run_datatrove(texts: list[str], refinery_rate: float) -> tuple[dict, dict]:
    """datatrove's signature step with its default (spaCy) words and with whitespace words (like for like),
    each warmed up on 200 documents first."""
    from datatrove.pipeline.dedup.minhash import HashConfig, MinhashConfig, MinhashDedupSignature

    from bench_quality_stages import whitespace_words

    n = len(texts)
    rates, ratios = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MinhashConfig(n_grams=NGRAM, num_buckets=16, hashes_per_bucket=8, hash_config=HashConfig(precision=64))
        for name, language in (("datatrove", "en"), ("datatrove whitespace", whitespace_words())):
            step = MinhashDedupSignature(output_folder=tmp, config=cfg, language=language)

            def datatrove(docs=texts, step=step):
                for t in docs:
                    step.get_signature(step.get_shingles(t))

            datatrove(texts[:200])  # warm-up
            dt = n / cpu_seconds(datatrove)  # one run: 10-60 s, and the ratio is over 100x
            rates[name], ratios[name] = [dt], [refinery_rate / dt]
    return rates, ratios


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", choices=("leads", "pydoc", "books"), default="leads", help="document set")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="articles used (0: all)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    ap.add_argument("--block", type=int, default=3, help="runs of each system per round (its best counts)")
    ap.add_argument("--join", type=int, default=1, help="documents joined into one (leads x 10: ~780 words each)")
    ap.add_argument("--no-datatrove", action="store_true", help="skip datatrove (minutes on long documents)")
    args = ap.parse_args()
    texts = load_texts(args.docs, args.repeat, args.limit)
    texts = [" ".join(texts[i:i + args.join]) for i in range(0, len(texts), args.join)]
    n = len(texts)
    n_words = sorted(len(t.split()) for t in texts)
    print(f"{args.docs}: {n} documents, {sum(len(t) for t in texts) / 1e6:.1f} MB of text, words per document "
          f"min {n_words[0]:,} median {n_words[n // 2]:,} max {n_words[-1]:,}; word {NGRAM}-grams, "
          f"{NUM_PERM} permutations")
    from datasketch import LeanMinHash, MinHash

    from corpus.dedup.minhash import text_signatures

    def refinery():
        for i in range(0, n, 4096):
            text_signatures(pa.array(texts[i:i + 4096]), num_perm=NUM_PERM, seed=1, ngram=NGRAM, mode="word")

    def ds_per_doc():
        for t in texts:
            m = MinHash(num_perm=NUM_PERM)
            m.update_batch(words_5grams(t))

    def ds_bulk():
        for i in range(0, n, 4096):
            [LeanMinHash(m) for m in MinHash.bulk([words_5grams(t) for t in texts[i:i + 4096]], num_perm=NUM_PERM)]

    rates, ratios = bench_interleaved({"refinery": refinery, "datasketch per doc": ds_per_doc,
                                       "datasketch bulk": ds_bulk}, n, args.rounds, args.block, warmup=2)

    if not args.no_datatrove:
        rates_dt, ratios_dt = run_datatrove(texts, statistics.median(rates["refinery"]))
        rates.update(rates_dt)
        ratios.update(ratios_dt)

    for k, r in rates.items():
        print(f"  {k:22s} docs / CPU s: best {max(r):9,.0f}  median {statistics.median(r):9,.0f}  ({len(r)} runs)")
    print("refinery / peer, per interleaved round:")
    for k, r in ratios.items():
        print(f"  vs {k:22s} median {statistics.median(r):6.1f}x  min {min(r):6.1f}x  max {max(r):6.1f}x")
    print(json.dumps({"docs": args.docs, "documents": n, "rounds": args.rounds,
                      "docs_per_cpu_s_best": {k: round(max(v)) for k, v in rates.items()},
                      "ratio_median": {k: round(statistics.median(v), 1) for k, v in ratios.items()},
                      "ratio_min": {k: round(min(v), 1) for k, v in ratios.items()}}))


if __name__ == "__main__":
    main()
