"""The check of candidate pairs (corpus.dedup.verify): links are exactly the candidate pairs at or above the
threshold, and each upstream shard's texts are read once however many shards its pairs span."""

import collections
import json
import os
import random

import numpy as np
import pyarrow as pa

from corpus.dedup import fuzzy, verify
from corpus.dedup.components import EDGES, unique_pairs
from corpus.dedup.labelled_jaccard import edit_words, jaccard, shingle_sets
from corpus.dedup.layout import ROW_MASK, ordinal_of, read_table, shuffle_read
from corpus.dedup.local import run_kind, write_shards
from tests.conftest import DEMO_CORPUS


def families(n: int, copies: int, rate: float, seed: int) -> tuple[list[str], list[str]]:
    """Real scenes, each with `copies` edited copies (a share `rate` of words edited), interleaved so that
    every family spans the shards."""
    with open(os.path.join(DEMO_CORPUS, "shakespeare-00.jsonl"), encoding="utf-8") as f:
        scenes = [t for t in (json.loads(line)["text"] for line in f) if len(t.split()) >= 300][:n]
    rng = random.Random(seed)
    vocab = [w for t in scenes for w in t.split()[:100]]
    rows = [[(f"s{i}-0", t)] + [(f"s{i}-{c}", " ".join(edit_words(t.split(" "), rate * c, rng, vocab)))
                                for c in range(1, copies + 1)] for i, t in enumerate(scenes)]
    flat = [r for k in range(copies + 1) for fam in rows for r in fam[k:k + 1]]
    return [i for i, _ in flat], [t for _, t in flat]


def test_links_are_the_candidate_pairs_at_the_threshold_and_each_shard_is_read_once(tmp_path, monkeypatch):
    ids, texts = families(6, copies=4, rate=0.012, seed=3)  # copy c edits 1.2% x c: Jaccard 0.45-0.95
    parts = write_shards(pa.table({"id": ids, "text": texts}), str(tmp_path / "up"), 4)
    reads = collections.Counter()
    read_shard = verify.read_shard

    def counted(item, *args, **kw):
        reads[item.key] += 1
        return read_shard(item, *args, **kw)

    monkeypatch.setattr(verify, "read_shard", counted)
    phase = str(tmp_path / "fz")
    run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(), phase, parts)
    assert reads and max(reads.values()) == 1, reads

    doc_of = {}  # node -> document index in `ids`
    for o, key in enumerate(sorted(parts)):
        for r in read_table(os.path.join(phase, "nodes", f"{key}.parquet")).to_pylist():
            doc_of[r["node"]] = ids.index(r["id"])
    cand = [shuffle_read(os.path.join(phase, "buckets", "candidates"), o, EDGES) for o in range(len(parts))]
    cu, cv = unique_pairs(np.concatenate([t.column("u").to_numpy() for t in cand]),
                          np.concatenate([t.column("v").to_numpy() for t in cand]))
    assert len(cu) and (ordinal_of(cu) != ordinal_of(cv)).any(), "the fixture must have pairs across shards"
    sets = shingle_sets(texts)
    expected = {(int(a), int(b)) for a, b in zip(cu, cv) if jaccard(sets[doc_of[a]], sets[doc_of[b]]) >= 0.8}
    below = len(cu) - len(expected)
    assert expected and below, "the fixture must have candidates on both sides of the threshold"
    links = [shuffle_read(os.path.join(phase, "verify", "out"), o, EDGES) for o in range(len(parts))]
    lu, lv = unique_pairs(np.concatenate([t.column("u").to_numpy() for t in links]),
                          np.concatenate([t.column("v").to_numpy() for t in links]))
    assert {(int(a), int(b)) for a, b in zip(lu, lv) if a < b} == expected
    assert all(int(n) & ROW_MASK < len(ids) for n in cu)


def test_sets_are_sorted_without_repeats_and_their_jaccard_is_exact():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 50, 80).astype(np.uint64)
    b = rng.integers(20, 70, 60).astype(np.uint64)
    sa, sb = verify.sorted_set(a), verify.sorted_set(b)
    assert sa.tolist() == sorted(set(a.tolist())) and sb.tolist() == sorted(set(b.tolist()))
    truth = len(set(a.tolist()) & set(b.tolist())) / len(set(a.tolist()) | set(b.tolist()))
    assert verify.jaccard_of_sets(sa, sb) == truth == verify.jaccard_of_sets(sb, sa)
