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
  `normalize` does to ASCII, and the other ASCII whitespace (tab, newline, 11-13) to a space as well;
  bytes of UTF-8 multi-byte sequences (all >= 0x80) are left alone;
- tokens are the runs of non-space bytes, found with numpy over the mapped buffer (a run crossing from
  one text into the next is cut there); each token, with the spaces after it, is an Arrow string viewing
  that buffer without a copy, and the tokens are dictionary-encoded (natural text repeats its words, so
  each distinct token is hashed once, trailing spaces left out); a token of ASCII bytes is one word;
- a distinct token with non-ASCII bytes, or the separators 28-31 that Unicode whitespace includes, is
  normalized character by character through a table of what `normalize` makes of each character and
  split again on Unicode whitespace (NBSP, thin space, ...; `_token_words`): the exact definition
  whatever the script, without compiling normalize's Unicode regexes for every batch (that compile
  was 2-3 ms of a 4096-document batch's ~50).
Mapping the whole buffer before the split, rather than each distinct token after it, was 18% faster
(A/B in one process, 4,096 Wikipedia leads and 400 ~780-word documents, identical hashes, 2026-11-29).
Finding the tokens with numpy instead of Arrow's `ascii_split_whitespace` (which copied every token into
a list array before the dictionary encoding) made word hashing 1.3-1.5x faster on 2 MiB slices of long
documents (Python docs pages, Shakespeare cut into 500-6,000-word pieces) and 1.3x on Wikipedia leads,
with identical hashes (A/B in one process, best of 5, 2026-11-30; benchmarks/README.md).
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
_MAP[[9, 10, 11, 12, 13]] = ord(PUNCTUATION)  # ASCII whitespace other than the space: separators alike
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
    mapped, offsets = _map_ascii(texts)
    tokens = _tokens(mapped, offsets)
    tokens_per_doc = np.diff(np.searchsorted(tokens, offsets)).astype(np.int64)
    # Each token is the Arrow string from its first byte to the next token's first byte: its word bytes
    # then its trailing separators (all spaces once mapped), a zero-copy view of the mapped buffer.
    # 32-bit offsets where they fit: dictionary encoding was ~10% faster than with 64-bit ones.
    offset_type, string_type = (np.int32, pa.string()) if len(mapped) < 2**31 else (np.int64, pa.large_string())
    token_offsets = np.append(tokens, len(mapped)).astype(offset_type)
    keys = pa.Array.from_buffers(string_type, len(tokens), [None, pa.py_buffer(token_offsets), pa.py_buffer(mapped)])
    encoded = pc.dictionary_encode(keys)
    word_hash, word_off = _vocab_words(encoded.dictionary)
    idx = encoded.indices.to_numpy(zero_copy_only=False)
    words_per_key = np.diff(word_off)
    if (words_per_key == 1).all():
        return word_hash[idx], tokens_per_doc
    count = words_per_key[idx]  # words each token stands for: 1, or 0 or more for non-ASCII ones
    token_ends = np.cumsum(tokens_per_doc)
    words_before = np.zeros(len(idx) + 1, np.int64)
    np.cumsum(count, out=words_before[1:])
    lengths = words_before[token_ends] - words_before[token_ends - tokens_per_doc]
    # the k-th word of token t is word_hash[word_off[idx[t]] + k]
    first_word = np.repeat(word_off[:-1][idx] - words_before[:-1], count)
    return word_hash[np.arange(words_before[-1], dtype=np.int64) + first_word], lengths


def _map_ascii(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(the texts' bytes with every ASCII byte normalized by _MAP, int64 offsets of the texts): one table
    lookup over the whole text buffer; UTF-8 multi-byte sequences hold only bytes >= 0x80, which stay."""
    data, offsets = string_buffers(texts)
    return np.take(_MAP, data), offsets


def _tokens(mapped: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """int64 first byte of every token (maximal run of bytes other than the mapped separator, the space),
    a run that crosses from one text into the next counting as two tokens."""
    in_token = mapped != ord(PUNCTUATION)
    starts = np.flatnonzero(in_token[1:] > in_token[:-1]) + 1
    if len(in_token) and in_token[0]:
        starts = np.concatenate([np.zeros(1, np.int64), starts])
    inner = offsets[1:-1]
    inner = inner[(inner > 0) & (inner < len(mapped))]
    cuts = np.unique(inner[in_token[inner - 1] & in_token[inner]])
    if len(cuts):
        starts = np.insert(starts, np.searchsorted(starts, cuts), cuts)
    return starts


def _vocab_words(vocab: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the words of each distinct token of mapped text (word bytes then separator spaces):
    (flat uint64 hashes, int64 offsets of length len(vocab) + 1). An ASCII token is one word already."""
    data, offs = string_buffers(vocab)
    word_bytes_before = np.zeros(len(data) + 1, np.int64)
    np.cumsum(data != ord(PUNCTUATION), out=word_bytes_before[1:])
    word_ends = offs[:-1] + (word_bytes_before[offs[1:]] - word_bytes_before[offs[:-1]])
    hashes = segment_hashes(data, offs[:-1], word_ends)
    special_before = np.zeros(len(data) + 1, np.int64)
    np.cumsum(np.take(_SPECIAL, data), out=special_before[1:])
    special = np.flatnonzero(special_before[offs[1:]] > special_before[offs[:-1]])
    if not len(special):
        return hashes, np.arange(len(vocab) + 1, dtype=np.int64)
    # Exact path for the tokens with non-ASCII bytes (or separators 28-31).
    token_words = _token_words([t.rstrip(PUNCTUATION) for t in vocab.take(pa.array(special)).to_pylist()])
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
