"""Survivors without chaining (corpus.dedup.survivors), candidate pairs of buckets, candidate bands, and
the minhash_dedup phase's removals checked against exact Jaccard on real text."""

import json
import os
import random

import numpy as np
import pyarrow as pa
import pytest

from corpus.dedup import fuzzy
from corpus.dedup.buckets import ALL_PAIRS_BUCKET, bucket_pairs
from corpus.dedup.labelled_jaccard import edit_words, jaccard, shingle_sets
from corpus.dedup.layout import node_keys, read_table
from corpus.dedup.local import run_kind, write_shards
from corpus.dedup.lsh import CANDIDATE_RECALL, choose_candidate_bands, detection_probability
from corpus.dedup.survivors import greedy_survivors
from tests.conftest import DEMO_CORPUS

P1 = np.int64(1) << 56  # priority 1: an ordinary document


def sequential_greedy(links: list[tuple[int, int]], reference: set[int]) -> dict[int, int]:
    """The definition, one node after another: removed node -> survivor."""
    nodes = sorted({n for link in links for n in link})
    neighbours = {n: set() for n in nodes}
    for a, b in links:
        neighbours[a].add(b)
        neighbours[b].add(a)
    kept, out = set(), {}
    for n in nodes:
        smaller_kept = sorted(m for m in neighbours[n] if m < n and m in kept)
        if n in reference or not smaller_kept:
            kept.add(n)
        else:
            out[n] = smaller_kept[0]
    return out


@pytest.mark.parametrize("seed", range(30))
def test_greedy_survivors_equal_the_sequential_definition(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 60)
    keys = [int(P1) + rng.randrange(1 << 40) for _ in range(n)]
    reference = set(rng.sample(keys, rng.randint(0, 2)))
    keys = [k - int(P1) if k in reference else k for k in keys]  # priority 0: a reference corpus
    reference = {k - int(P1) for k in reference}
    links = [tuple(sorted(rng.sample(keys, 2))) for _ in range(rng.randint(1, 3 * n))]
    links += links[: len(links) // 3]  # repeats are allowed
    u = np.array([a for a, _ in links], np.int64)
    v = np.array([b for _, b in links], np.int64)
    removed, survivor = greedy_survivors(u, v)
    got = dict(zip(removed.tolist(), survivor.tolist()))
    assert got == sequential_greedy(links, reference)
    linked = set(links)
    for r, s in got.items():
        assert (s, r) in linked and s not in got  # removed for a linked document that is kept


def test_a_chain_removes_only_the_document_linked_to_a_kept_one():
    a, b, c, d = (P1 + i for i in range(4))
    removed, survivor = greedy_survivors(np.array([a, b, c]), np.array([b, c, d]))  # a~b~c~d
    assert dict(zip(removed.tolist(), survivor.tolist())) == {int(b): int(a), int(d): int(c)}


def test_bucket_pairs_all_pairs_of_small_buckets_star_and_predecessor_in_big_ones():
    small = ALL_PAIRS_BUCKET
    bucket = np.array([1] * 3 + [2] + [3] * (small + 4), np.uint64)
    node = np.arange(len(bucket), dtype=np.int64)
    u, v = bucket_pairs(bucket, node)
    pairs = set(zip(u.tolist(), v.tolist()))
    assert {(0, 1), (0, 2), (1, 2)} <= pairs  # a bucket of 3: its 3 pairs
    big = list(range(4, 4 + small + 4))
    expected_big = {(big[0], x) for x in big[1:]} | {(x, y) for x, y in zip(big, big[1:])}
    assert pairs == {(0, 1), (0, 2), (1, 2)} | expected_big
    assert (np.diff(u) >= 0).all() and (u < v).all()


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
def test_candidate_bands_find_pairs_at_the_threshold_with_the_fewest_below(threshold):
    bands, rows = choose_candidate_bands(threshold, 128)
    assert bands * rows <= 128
    assert detection_probability(threshold, bands, rows) >= CANDIDATE_RECALL
    more_rows = 128 // (rows + 1), rows + 1  # the next stricter choice misses too many at the threshold
    assert detection_probability(threshold, *more_rows) < CANDIDATE_RECALL
    assert fuzzy.lsh_params(fuzzy.MinhashDedupConfig(threshold=threshold)) == (bands, rows)


def test_default_bands_are_21_by_6_and_9_by_13_without_verify():
    assert fuzzy.lsh_params(fuzzy.MinhashDedupConfig()) == (21, 6)
    assert fuzzy.lsh_params(fuzzy.MinhashDedupConfig(verify=False)) == (9, 13)


def scenes(k: int, min_words: int = 400) -> list[str]:
    with open(os.path.join(DEMO_CORPUS, "shakespeare-00.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    return [t for t in texts if len(t.split()) >= min_words][:k]


def phase_results(table: pa.Table, tmp_path, shards: int, **settings) -> dict[str, tuple[int, bool]]:
    parts = write_shards(table, str(tmp_path / f"up-{shards}"), shards)
    phase = str(tmp_path / f"fz-{shards}-{len(settings)}")
    run_kind(fuzzy.KIND, fuzzy.MinhashDedupConfig(**settings), phase, parts)
    out = {}
    for key in parts:
        for r in read_table(os.path.join(phase, "results", f"{key}.parquet")).to_pylist():
            out[r["id"]] = (r["cluster"], r["duplicate"])
    return out


def test_the_phase_removes_only_documents_similar_to_a_kept_one_for_any_shard_count(tmp_path):
    """Real scenes with chains of edits (A -> B -> C, each step ~2.5% of words): every removal is checked
    against the exact Jaccard with the survivor, and the removals are the same with 1, 3 and 5 shards."""
    rng = random.Random(5)
    originals = scenes(10)
    vocab = [w for t in originals for w in t.split()[:100]]
    ids, texts = [], []
    for i, text in enumerate(originals):
        chain = [text]
        for _ in range(3 if i < 6 else 0):
            chain.append(" ".join(edit_words(chain[-1].split(" "), 0.025, rng, vocab)))
        for k, t in enumerate(chain):
            ids.append(f"s{i}-{k}")
            texts.append(t)
    sets = dict(zip(ids, shingle_sets(texts)))
    truth = {(a, b) for a in ids for b in ids if a < b and jaccard(sets[a], sets[b]) >= 0.8}
    assert any((f"s{i}-0", f"s{i}-2") not in truth and (f"s{i}-1", f"s{i}-2") in truth for i in range(6)), \
        "the fixture must hold a chain whose ends are below the threshold"
    table = pa.table({"id": ids, "text": texts})
    runs = {n: phase_results(table, tmp_path, n) for n in (1, 3, 5)}
    removed = {d for d, (_, dup) in runs[1].items() if dup}
    node_of = {runs[1][d][0]: d for d in ids if d not in removed}  # a kept document's cluster: its node
    assert removed, "copies 2.5% apart must be found"
    for d in removed:
        survivor = node_of[runs[1][d][0]]
        assert survivor not in removed
        assert jaccard(sets[d], sets[survivor]) >= 0.8, (d, survivor)
    for a, b in truth:  # no true pair is left with both documents kept
        assert a in removed or b in removed, (a, b)
    for n in (3, 5):
        assert {d for d, (_, dup) in runs[n].items() if dup} == removed
    assert int(node_keys(np.array([1]), 0, np.array([0]))[0]) == runs[1]["s0-0"][0]


def test_unverified_links_are_every_candidate_pair(tmp_path):
    """verify: false links LSH candidates as they come (the old fast path), still without chaining."""
    base = scenes(1)[0]
    words = base.split(" ")
    rng = random.Random(2)
    far = " ".join(edit_words(words, 0.06, rng, words))  # Jaccard ~0.55 with base
    table = pa.table({"id": ["a", "b"], "text": [base, far]})
    assert jaccard(*shingle_sets([base, far])) < 0.8
    loose = phase_results(table, tmp_path, 1, verify=False, bands=64, rows=2)
    assert loose["b"][1]  # a candidate at 64 x 2, linked without the check
    assert not phase_results(table, tmp_path, 2, bands=64, rows=2)["b"][1]  # checked: below 0.8, kept
