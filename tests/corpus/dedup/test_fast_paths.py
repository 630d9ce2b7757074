"""The fast paths of the signature kernel give exactly what their reference definitions give: ASCII
split and table normalization of tokens (corpus.dedup.words), shifted-view n-grams, reused chunk buffers."""

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.dedup import minhash
from corpus.dedup.minhash import signatures, word_shingles
from corpus.dedup.text import U64, hash_strings, normalize, splitmix64
from corpus.dedup.words import word_hashes

# ASCII of every class (letters, digits, punctuation, symbols, controls) and non-ASCII letters, digits,
# punctuation and whitespace (NBSP, thin space, ideographic space, NEL, ogham space mark)
ALPHABET = list("aZz09.,-'_~\x00\x7f\x1c ") + ["\t", "\n", "é", "É", "ß", "İ", "٣", "—", "«", "😀", "Ω",
                                               "\u00a0", "\u2009", "\u3000", "\u0085", "\u1680", "\u202f"]


def _reference_word_hashes(texts):
    """The definition: the words of normalize(text, punctuation=" ") split on Unicode whitespace (Python's
    str.split; pyarrow 26.0.1's utf8_split_whitespace sometimes returns a trailing multi-byte space as
    a piece)."""
    words = [t.split() for t in normalize(texts, punctuation=" ").to_pylist()]
    flat = pa.array([w for ws in words for w in ws], pa.string())
    return hash_strings(flat), np.array([len(ws) for ws in words], np.int64)


def _reference_ngrams(wh, counts, n):
    mults = minhash.multipliers(n, seed=0xA11CE)
    out, start = [], 0
    for c in counts:
        w = wh[start:start + c]
        start += c
        for i in range(max(c - n + 1, 1) if c else 0):
            with np.errstate(over="ignore"):
                out.append(sum((w[i + k] * mults[k] for k in range(min(n, c - i))), U64(0)))
    return splitmix64(np.array(out, U64))


@given(st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=40), st.integers(1, 6))
@settings(max_examples=80, deadline=None)
def test_word_shingles_equal_the_reference_definition(texts, n):
    arr = pa.array(["pad pad"] + texts).slice(1)  # Arrow offsets honoured
    wh, counts = _reference_word_hashes(arr)
    sh = word_shingles(arr, n)
    assert sh.hashes.tolist() == _reference_ngrams(wh, counts, n).tolist()
    assert np.diff(sh.offsets).tolist() == [max(c - n + 1, 1) if c else 0 for c in counts]


def test_word_hashes_split_on_unicode_spaces_and_drop_empty_tokens():
    texts = pa.array(["Hello,  WORLD 1,000 -- Ünïcode\u00a0naïve! x\x1cy", "  ' ÉTÉ\u3000\u3000été ", None, "—"])
    h, counts = word_hashes(texts)
    expected = ["hello", "world", "0", "000", "ünïcode", "naïve", "x", "y", "été", "été"]
    assert counts.tolist() == [8, 2, 0, 0]
    assert h.tolist() == hash_strings(pa.array(expected)).tolist()


def test_word_hashes_cut_tokens_at_text_boundaries_and_any_ascii_whitespace():
    # tokens are runs of bytes in the one mapped buffer of all texts: "abc" then "def" are two words,
    # not "abcdef"; the same word followed by different separators is one word; a token of 0 words
    # (a lone NBSP-joined pair is 2, "\x1c" is 0) must not shift the words of the others
    texts = pa.array(["abc", "def", "", "  ", "x\ty\nz\x0bw\x0cv\rq", "naïve\u00a0x naïve  naïve\n", "\x1c",
                      "a\u3000b", "end"])
    h, counts = word_hashes(texts)
    ref_h, ref_counts = _reference_word_hashes(texts)
    assert counts.tolist() == ref_counts.tolist() == [1, 1, 0, 0, 6, 4, 0, 2, 1]
    assert h.tolist() == ref_h.tolist()


def test_signatures_of_a_document_longer_than_a_chunk(monkeypatch):
    rng = np.random.default_rng(3)
    sh = minhash.Shingles(rng.integers(0, 2**63, 700, dtype=np.uint64), np.array([0, 5, 605, 605, 700]))
    expected = signatures(sh, 32)
    monkeypatch.setattr(minhash, "_CHUNK_CELLS", 32 * 50)  # the 600-shingle document exceeds a chunk
    assert (signatures(sh, 32) == expected).all()
    # hash family 2: a_i * (top 32 bits of the hash, lowest bit set) mod 2^32, a_i odd
    x = (sh.hashes[5:605] >> U64(32)).astype(np.uint32) | np.uint32(1)
    r = np.random.default_rng(1)
    a = r.integers(0, 1 << 31, size=32, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    assert (expected[1] == (a[:, None] * x[None, :]).min(axis=1)).all()
    assert (expected[2] == minhash.EMPTY).all()


def test_punctuation_separates_words_in_both_paths():
    h, counts = word_hashes(pa.array(["Don't U.S.-based (2024)", "naïve—don't «U.S.»"]))
    assert counts.tolist() == [6, 5]
    expected = ["don", "t", "u", "s", "based", "0000", "naïve", "don", "t", "u", "s"]
    assert h.tolist() == hash_strings(pa.array(expected)).tolist()


def test_text_signatures_in_slices_equal_one_pass(monkeypatch):
    texts = pa.chunked_array([["alpha beta gamma delta epsilon zeta " * k for k in range(1, 30)], [None, ""]])
    whole = signatures(word_shingles(texts.combine_chunks(), 5), 16, seed=3)
    monkeypatch.setattr(minhash, "_TEXT_SLICE_BYTES", 100)  # slices of a few documents, some of one
    sliced = minhash.text_signatures(texts, num_perm=16, seed=3, ngram=5, mode="word")
    assert sliced.shape == whole.shape and (sliced == whole).all()
    empty = minhash.text_signatures(pa.array([], pa.string()), num_perm=16, seed=3, ngram=5, mode="word")
    assert empty.shape == (0, 16)


def test_char_mode_slices_equal_one_pass(monkeypatch):
    texts = pa.array([f"Ünïcode text, number {k}; more words here" * (k % 4 + 1) for k in range(40)])
    whole = signatures(minhash.char_shingles(texts, 7), 16, seed=5)
    monkeypatch.setattr(minhash, "_TEXT_SLICE_BYTES", 150)
    assert (minhash.text_signatures(texts, num_perm=16, seed=5, ngram=7, mode="char") == whole).all()


def test_character_table_is_cleared_when_full_and_stays_exact(monkeypatch):
    from corpus.dedup import words

    texts = pa.array(["Ωmega—ÉTÉ «naïve» ٣٤ İstanbul", "ĀĒĪŌŪ ąę żółć"])
    expected = word_hashes(texts)
    stale = {0x4E00 + i: "x" for i in range(8)}  # CJK entries these texts do not use
    monkeypatch.setattr(words, "_CHAR_TABLE", dict(stale))
    monkeypatch.setattr(words, "_CHAR_TABLE_MAX", 8)  # full: the new characters do not fit
    got = word_hashes(texts)
    assert not set(stale) & set(words._CHAR_TABLE)  # cleared, then filled with what this batch needs
    assert got[0].tolist() == expected[0].tolist() and got[1].tolist() == expected[1].tolist()
