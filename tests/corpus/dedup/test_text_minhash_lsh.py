"""Property tests of the dedup kernels: hashing, shingles, MinHash estimates, LSH S-curve, band choice."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.dedup.lsh import band_hashes, choose_bands, detection_probability, error_areas
from corpus.dedup.minhash import EMPTY, Shingles, char_shingles, signatures, word_shingles
from corpus.dedup.text import hash_strings, normalize

# letters only: normalization maps every digit to 0, so "w12" and "w34" would be the same word
WORDS = sorted({"".join(np.random.default_rng(i).choice(list("abcdefghijklmnopqrstuvwxyz"), 6)) for i in range(5000)})


def test_normalize_follows_ccnet():
    got = normalize(pa.array(["Hello, World 2024!", "  A\t b  ", None, "Ünïcode — dash; 3.14"])).to_pylist()
    assert got == ["hello world 0000", "a b", "", "ünïcode dash 000"]


@given(st.lists(st.text(max_size=30), min_size=1, max_size=60))
@settings(max_examples=60, deadline=None)
def test_hash_strings_is_a_function_of_the_string(strings):
    h = hash_strings(pa.array(strings))
    by_value = {}
    for s, x in zip(strings, h):
        assert by_value.setdefault(s, x) == x  # equal strings, equal hashes
    sliced = hash_strings(pa.array(["pad"] + strings).slice(1))  # Arrow offsets are honoured
    assert (sliced == h).all()


def test_hash_strings_has_no_collisions_on_distinct_words():
    words = [f"{i}:{j}" for i in range(300) for j in range(300)]
    assert len(set(hash_strings(pa.array(words)).tolist())) == len(words)


def test_word_shingle_counts():
    texts = pa.array(["a b c d e f g", "a b", "", None, "A, B! c d e"])
    sh = word_shingles(texts, 5)
    assert np.diff(sh.offsets).tolist() == [3, 1, 0, 0, 1]
    assert sh.hashes[sh.offsets[4]] == sh.hashes[0]  # "a b c d e" after normalization
    ch = char_shingles(pa.array(["abcdef", "ab", ""]), 3)
    assert np.diff(ch.offsets).tolist() == [4, 1, 0]


def _true_jaccard(a_words, b_words, n=5):
    def grams(w):
        return {tuple(w[i:i + n]) for i in range(max(len(w) - n + 1, 1))}
    a, b = grams(a_words), grams(b_words)
    return len(a & b) / len(a | b)


@given(st.integers(0, 2**32 - 1), st.integers(40, 200), st.floats(0.0, 0.6))
@settings(max_examples=40, deadline=None)
def test_minhash_estimate_tracks_true_jaccard(seed, length, edit_rate):
    rng = np.random.default_rng(seed)
    a = [WORDS[i] for i in rng.integers(0, len(WORDS), length)]
    b = [w if rng.random() > edit_rate else WORDS[rng.integers(0, len(WORDS))] for w in a]
    num_perm = 256
    sig = signatures(word_shingles(pa.array([" ".join(a), " ".join(b)]), 5), num_perm)
    est = float(np.mean(sig[0] == sig[1]))
    j = _true_jaccard(a, b)
    # the estimate is a mean of num_perm Bernoulli(J) draws: allow 4.5 standard deviations
    assert abs(est - j) <= 4.5 * np.sqrt(j * (1 - j) / num_perm) + 0.02, (est, j)


def test_empty_documents_get_empty_signatures_and_no_bucket():
    sig = signatures(word_shingles(pa.array(["", "some words here"]), 5), 16)
    assert (sig[0] == EMPTY).all() and not (sig[1] == EMPTY).all()
    assert band_hashes(sig, 4, 4)[0].tolist() == [0, 0, 0, 0]


def _pairs_with_similarity(rng, s, n_pairs, size=200):
    """Shingle sets A, B with |A & B| / |A | B| = s exactly (distinct random 64-bit hashes)."""
    shared = int(round(2 * size * s / (1 + s)))
    hashes, offsets = [], [0]
    for _ in range(n_pairs):
        pool = rng.integers(0, 2**63, 2 * size - shared, dtype=np.uint64)
        a = pool[:size]
        b = np.concatenate([pool[:shared], pool[size:]])
        for x in (a, b):
            hashes.append(x)
            offsets.append(offsets[-1] + len(x))
    return Shingles(np.concatenate(hashes), np.array(offsets, np.int64)), shared / (2 * size - shared)


@pytest.mark.parametrize("s", [0.3, 0.5, 0.7, 0.8, 0.9])
def test_lsh_detection_rate_follows_s_curve(s):
    bands, rows, n = 16, 8, 400
    rng = np.random.default_rng(int(s * 100))
    sh, exact_s = _pairs_with_similarity(rng, s, n)
    bh = band_hashes(signatures(sh, bands * rows, seed=int(s * 10)), bands, rows)
    hit = (bh[0::2] == bh[1::2]).any(axis=1)
    p = float(detection_probability(exact_s, bands, rows))
    tol = 4 * np.sqrt(p * (1 - p) / n) + 0.03
    assert abs(hit.mean() - p) <= tol, (hit.mean(), p)


def test_choose_bands_puts_the_s_curve_step_at_the_threshold():
    for t, num_perm in [(0.5, 64), (0.8, 128), (0.9, 256)]:
        b, r = choose_bands(t, num_perm)
        assert b * r <= num_perm
        assert detection_probability(t - 0.15, b, r) < 0.5 < detection_probability(t + 0.1, b, r)
        fp, fn = error_areas(t, b, r)
        for b2, r2 in [(max(1, b - 1), r), (b, max(1, r - 1)), (b, r + 1)]:
            if b2 * r2 <= num_perm:
                assert sum(error_areas(t, b2, r2)) >= fp + fn - 1e-6
