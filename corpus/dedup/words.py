"""Words of a batch of texts for MinHash shingles, as 64-bit hashes, normalized with a byte table where
the text is ASCII.

A word is a maximal run of characters that are neither whitespace nor punctuation or symbols (Unicode
classes P and S), after CCNet's character mapping (lowercase, every digit to 0): the words of
`normalize(text, punctuation=" ")` split on whitespace. Punctuation separates words rather than being
deleted as in CCNet's line normalization ("don't" gives "don" and "t", "U.S." gives "u" and "s"),
as in datatrove's MinHash text simplification. It gives documents slightly more words, so an edit
touches a smaller share of their shingles: on the labelled near-duplicate set (`refinery dedup
labelled`, 734 true pairs) the pairs LSH is expected to find at 9 bands x 13 rows went from 333.1 with
deletion to 336.0 (benchmarks/bench_fuzzy_seeds.py, README there).

`word_hashes` gives the same words and hashes as that definition (tests/corpus/dedup/test_fast_paths.py)
for a fraction of its time. Measured on 3,000 Wikipedia leads (benchmarks/bench_minhash.py), the regex
passes of `normalize` and the Unicode split were 40% of the signature path. So:
- every ASCII byte of the whole text buffer is mapped by one table lookup (A-Z lowered, digits to '0',
  the 32 ASCII punctuation and symbol characters, all in classes P or S, to a space), which is what
  `normalize` does to ASCII; bytes of UTF-8 multi-byte sequences (all >= 0x80) are left alone;
- the mapped texts are split on ASCII whitespace and the tokens dictionary-encoded (natural text repeats
  its words, so each distinct token is hashed once); a token of ASCII bytes is then one word;
- a distinct token with non-ASCII bytes, or the separators 28-31 that Unicode whitespace includes, is
  normalized character by character through a table of what `normalize` makes of each character and
  split again on Unicode whitespace (NBSP, thin space, ...; `_token_words`): the exact definition
  whatever the script, without compiling normalize's Unicode regexes for every batch (that compile
  was 2-3 ms of a 4096-document batch's ~50).
Mapping the whole buffer before the split, rather than each distinct token after it, was 18% faster
(A/B in one process, 4,096 Wikipedia leads and 400 ~780-word documents, identical hashes, 2026-11-29).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.dedup.text import hash_strings, normalize, segment_hashes, string_buffers

PUNCTUATION = " "
"""What `normalize` puts for a punctuation or symbol character in shingle text: a word separator."""

_MAP = np.arange(256, dtype=np.uint8)  # what normalize does to each ASCII byte; other bytes kept
_MAP[ord("A"): ord("Z") + 1] += 32
_MAP[ord("0"): ord("9") + 1] = ord("0")
for _lo, _hi in ((33, 47), (58, 64), (91, 96), (123, 126)):  # ASCII punctuation and symbols (all P or S)
    _MAP[_lo: _hi + 1] = ord(PUNCTUATION)
_SPECIAL = np.zeros(256, bool)  # bytes that send a token to the exact path
_SPECIAL[0x80:] = True
_SPECIAL[28:32] = True


_CHAR_TABLE: dict[int, str] = {}
"""Code point -> `normalize` of that one character (punctuation becoming a space), filled as characters
first appear. Normalizing a whitespace-free token character by character gives what `normalize` gives
the whole token: lowercasing (one code point at a time in Arrow), the digit mapping and the punctuation
replacement all act on single code points."""
_CHAR_TABLE_MAX = 1 << 18  # entries (~25 MiB); cleared beyond, so adversarial input cannot grow it


def _token_words(tokens: list[str]) -> list[list[str]]:
    """The words of each token: normalized character by character, then split on whitespace. Python's
    whitespace is exactly Arrow's utf8 whitespace here (checked over every code point, 2026-11-29);
    Arrow's `utf8_split_whitespace` itself is not used: in pyarrow 26.0.1 it sometimes returns a piece
    holding the whitespace when a string ends in a multi-byte space (e.g. 'x\\u2009'), from run to run."""
    chars = set().union(*tokens)
    new = sorted(c for c in chars if ord(c) not in _CHAR_TABLE)
    if new:
        if len(_CHAR_TABLE) + len(new) > _CHAR_TABLE_MAX:
            _CHAR_TABLE.clear()
            new = sorted(chars)
        mapped = normalize(pa.array(new), collapse_whitespace=False, punctuation=PUNCTUATION).to_pylist()
        _CHAR_TABLE.update(zip(map(ord, new), mapped))
    return [t.translate(_CHAR_TABLE).split() for t in tokens]


def word_hashes(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of every word, document after document; int64 word count per document). Nulls count
    as empty texts."""
    tokens = pc.ascii_split_whitespace(_map_ascii(texts))
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(tokens.flatten())
    word_hash, word_off = _vocab_words(encoded.dictionary)
    idx = encoded.indices.to_numpy(zero_copy_only=False)
    count = np.diff(word_off)[idx]  # words each token stands for: 1, or 0 or more for non-ASCII ones
    if (count == 1).all():
        return word_hash[word_off[:-1][idx]], lengths
    token_ends = np.cumsum(lengths)
    words_before = np.zeros(len(idx) + 1, np.int64)
    np.cumsum(count, out=words_before[1:])
    lengths = words_before[token_ends] - words_before[token_ends - lengths]
    # the k-th word of token t is word_hash[word_off[idx[t]] + k]
    first_word = np.repeat(word_off[:-1][idx] - words_before[:-1], count)
    return word_hash[np.arange(words_before[-1], dtype=np.int64) + first_word], lengths


def _map_ascii(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The texts with every ASCII byte normalized by _MAP (one table lookup over the whole text buffer;
    UTF-8 multi-byte sequences hold only bytes >= 0x80, which stay as they are)."""
    data, offs = string_buffers(texts)
    return pa.LargeStringArray.from_buffers(len(offs) - 1, pa.py_buffer(offs), pa.py_buffer(np.take(_MAP, data)))


def _vocab_words(vocab: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the words of each distinct token of ASCII-mapped text: (flat uint64 hashes, int64
    offsets of length len(vocab) + 1). An ASCII token is one word already."""
    data, offs = string_buffers(vocab)
    hashes = segment_hashes(data, offs[:-1], offs[1:])
    special_before = np.zeros(len(data) + 1, np.int64)
    np.cumsum(np.take(_SPECIAL, data), out=special_before[1:])
    # Arrow splits an empty text into one empty token: it has no word, like the exact path says
    special = np.flatnonzero((special_before[offs[1:]] > special_before[offs[:-1]]) | (offs[1:] == offs[:-1]))
    if not len(special):
        return hashes, np.arange(len(vocab) + 1, dtype=np.int64)
    # Exact path for the tokens with non-ASCII bytes (or separators 28-31), and the empty token.
    token_words = _token_words(vocab.take(pa.array(special)).to_pylist())
    count = np.ones(len(vocab), np.int64)
    count[special] = [len(w) for w in token_words]
    offsets = np.concatenate([[0], np.cumsum(count)])
    flat = np.empty(int(offsets[-1]), np.uint64)
    ordinary = np.ones(len(vocab), bool)
    ordinary[special] = False
    flat[offsets[:-1][ordinary]] = hashes[ordinary]
    # the k-th word of special token t goes to offsets[t] + k
    word_owner = np.repeat(special, count[special])
    if len(word_owner):
        starts = np.repeat(np.cumsum(count[special]) - count[special], count[special])
        flat[offsets[word_owner] + np.arange(len(word_owner)) - starts] = hash_strings(
            pa.array([w for ws in token_words for w in ws], pa.large_string()))
    return flat, offsets
