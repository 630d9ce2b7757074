"""Why refinery and datatrove find different numbers of true pairs at 9 bands x 13 rows: shingling, or
the draw of the permutations? On the labelled set (`refinery dedup labelled`), for every true pair:
- its true Jaccard on refinery's shingles (CCNet-normalized word 5-grams) and on datatrove's
  (MinhashDedupSignature.get_shingles: simplify_text, then its spaCy word tokenizer), and the number of
  pairs LSH should find, sum of P(J) = 1 - (1 - J^13)^9 over pairs, for each;
- the pairs refinery's signatures + band hashes actually find, for permutation seeds 1..--seeds
  (seed 1 is the default, the one bench_fuzzy_dedup.py runs).
If refinery's mean over seeds matches its expectation, its MinHash is unbiased and a gap at one seed is
the sampling noise of that seed's permutations; the two expectations differ only by shingling.

    .venv/bin/python benchmarks/bench_fuzzy_seeds.py [--seeds 50]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile

import numpy as np
import pyarrow as pa

BANDS, ROWS, NGRAM, NUM_PERM = 9, 13, 5, 128


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=50)
    args = ap.parse_args()
    from datatrove.pipeline.dedup.minhash import HashConfig, MinhashConfig, MinhashDedupSignature

    from corpus.dedup.evaluate import read_labelled
    from corpus.dedup.labelled import build_labelled
    from corpus.dedup.lsh import band_hashes, detection_probability
    from corpus.dedup.minhash import signatures, word_shingles

    path = os.path.expanduser("~/.cache/refinery/dedup/labelled.jsonl")
    if not os.path.exists(path):
        build_labelled(path)
    recs = read_labelled(path)
    by_cluster = collections.defaultdict(list)
    for i, r in enumerate(recs):
        by_cluster[r["cluster"]].append(i)
    pairs = np.array([(v[a], v[b]) for v in by_cluster.values() for a in range(len(v)) for b in range(a + 1, len(v))])
    sh = word_shingles(pa.array([r["text"] for r in recs]), NGRAM)
    docs = [set(sh.hashes[sh.offsets[i]:sh.offsets[i + 1]].tolist()) for i in range(len(recs))]
    with tempfile.TemporaryDirectory() as tmp:
        dt = MinhashDedupSignature(output_folder=tmp, config=MinhashConfig(
            n_grams=NGRAM, num_buckets=BANDS, hashes_per_bucket=ROWS, hash_config=HashConfig(precision=64)))
        needed = sorted(set(pairs.ravel().tolist()))
        dt_docs = {i: set(dt.get_shingles(recs[i]["text"]).ravel().tolist()) for i in needed}

    def jaccard(a, b):
        return len(a & b) / max(1, len(a | b))

    j_rf = np.array([jaccard(docs[i], docs[j]) for i, j in pairs])
    j_dt = np.array([jaccard(dt_docs[i], dt_docs[j]) for i, j in pairs])
    p_rf, p_dt = detection_probability(j_rf, BANDS, ROWS), detection_probability(j_dt, BANDS, ROWS)
    found = []
    for seed in range(1, args.seeds + 1):
        bh = band_hashes(signatures(sh, NUM_PERM, seed=seed), BANDS, ROWS)
        found.append(int((bh[pairs[:, 0]] == bh[pairs[:, 1]]).any(axis=1).sum()))
    found = np.array(found)
    print(f"{len(pairs)} true pairs, {BANDS} bands x {ROWS} rows")
    print(f"  mean true Jaccard: refinery shingles {j_rf.mean():.4f}, datatrove shingles {j_dt.mean():.4f}")
    print(f"  pairs LSH should find: refinery {p_rf.sum():.1f} (sd {np.sqrt((p_rf * (1 - p_rf)).sum()):.1f}), "
          f"datatrove {p_dt.sum():.1f} (sd {np.sqrt((p_dt * (1 - p_dt)).sum()):.1f})")
    print(f"  refinery found: seed 1 {found[0]}, seeds 1..{args.seeds} mean {found.mean():.1f} "
          f"(+- {found.std() / np.sqrt(len(found)):.1f}), min {found.min()}, max {found.max()}")
    print(json.dumps({"pairs": len(pairs), "expected_refinery": round(float(p_rf.sum()), 1),
                      "expected_datatrove": round(float(p_dt.sum()), 1), "found_seed1": int(found[0]),
                      "found_mean": round(float(found.mean()), 1)}))


if __name__ == "__main__":
    main()
