"""MinHash signatures of a whole batch of documents at once (numpy), never shingle by shingle in Python.

Shingles are word n-grams of the normalized text (default 5, as in Gopher / RefinedWeb fuzzy dedup) or
byte n-grams of it (`char` mode: UTF-8 bytes, so a non-ASCII character counts as 2-4 positions). A
shingle's 64-bit hash combines its words' hashes with distinct odd multipliers and a splitmix64 finish.
A document shorter than n words is one shingle of all its words, so short documents still match.

Permutation i maps a shingle's hash to (a_i * x + b_i) mod 2^32 (a_i odd), x being the top 32 bits of
the shingle's 64-bit hash: a bijection of the 32-bit space, computed for all permutations and all
shingles of a chunk of documents in one numpy expression (32-bit lanes: 3-4x faster than 64-bit ones,
measured in benchmarks/bench_minhash.py's refinery figure). Two distinct shingles share x with
probability 2^-32, far below the estimator's own sampling error (tests/corpus/dedup check estimates
against true Jaccard).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.dedup.text import U64, normalize, segment_hashes, splitmix64, string_buffers

EMPTY = np.uint32(0xFFFFFFFF)
"""Signature value of a document with no shingle (never placed in an LSH bucket)."""

_CHUNK_CELLS = 1 << 18  # shingles x permutations per numpy pass: 1 MiB of uint32 stays in L2 cache (2x faster than 32 MiB)


@dataclasses.dataclass(frozen=True, slots=True)
class Shingles:
    hashes: np.ndarray
    """uint64 shingle hashes of all documents, document after document."""
    offsets: np.ndarray
    """int64, length n_docs + 1: document d's shingles are hashes[offsets[d]:offsets[d+1]]."""


def multipliers(n: int, seed: int = 0x5EED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 1 << 63, size=n, dtype=np.uint64) * U64(2) + U64(1)


def word_shingles(texts: pa.Array, n: int) -> Shingles:
    """Word n-gram hashes of the CCNet-normalized texts.

    Splits first and normalizes and hashes each distinct token once (Arrow dictionary encoding): the
    same words as normalizing the text and then splitting it, since normalization only lowercases,
    maps digits and deletes characters (a token left empty, such as a lone dash, is dropped), but
    natural text repeats its words, so this does a fraction of the work."""
    texts = pc.fill_null(texts, "")
    words = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(texts))
    words = words.combine_chunks() if isinstance(words, pa.ChunkedArray) else words
    lengths = pc.list_value_length(words).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(words.flatten())
    vocab = normalize(encoded.dictionary, collapse_whitespace=False)
    data, offs = string_buffers(vocab)
    base = offs[0] if len(offs) else 0
    vocab_hash = segment_hashes(data[base: offs[-1]] if len(offs) else data, offs[:-1] - base, offs[1:] - base)
    vocab_kept = np.diff(offs) > 0  # tokens that normalize to nothing are not words
    idx = encoded.indices.to_numpy(zero_copy_only=False)
    kept = vocab_kept[idx]
    if not kept.all():
        doc = np.repeat(np.arange(len(lengths)), lengths)
        lengths = np.bincount(doc[kept], minlength=len(lengths)).astype(np.int64)
        idx = idx[kept]
    return _ngrams(vocab_hash[idx], lengths, n)


def char_shingles(texts: pa.Array, n: int) -> Shingles:
    """Byte n-gram hashes of the CCNet-normalized texts."""
    data, offs = string_buffers(normalize(texts))
    base = offs[0]
    data = data[base: offs[-1]]
    offs = offs - base
    lengths = np.diff(offs)
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    starts_doc = np.repeat(offs[:-1], counts)
    out_off = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(counts, out=out_off[1:])
    within = np.arange(out_off[-1], dtype=np.int64) - np.repeat(out_off[:-1], counts)
    starts = starts_doc + within
    ends = np.minimum(starts + n, np.repeat(offs[1:], counts))
    return Shingles(segment_hashes(data, starts, ends), out_off)


def _ngrams(wh: np.ndarray, lengths: np.ndarray, n: int) -> Shingles:
    """n-grams of consecutive word hashes inside each document. wh: (total words,), lengths: (docs,)."""
    total = len(wh)
    doc_start = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=doc_start[1:])
    pos = np.arange(total, dtype=np.int64) - np.repeat(doc_start[:-1], lengths)
    remaining = np.repeat(lengths, lengths) - pos  # words from position to the document's end
    padded = np.concatenate([wh, np.zeros(n, U64)])
    mults = multipliers(n, seed=0xA11CE)
    g = np.zeros(total, U64)
    with np.errstate(over="ignore"):
        for k in range(n):
            g += np.where(remaining > k, padded[k: k + total], U64(0)) * mults[k]
    keep = pos <= np.maximum(np.repeat(lengths, lengths) - n, 0)
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Shingles(splitmix64(g[keep]), offsets)


def signatures(sh: Shingles, num_perm: int, seed: int = 1) -> np.ndarray:
    """MinHash signatures, shape (n_docs, num_perm), uint32; rows of shingle-less documents are EMPTY."""
    rng = np.random.default_rng(seed)
    a = (rng.integers(0, 1 << 31, size=num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1))[:, None]
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64).astype(np.uint32)[:, None]
    x32 = (sh.hashes >> U64(32)).astype(np.uint32)
    n_docs = len(sh.offsets) - 1
    out = np.full((n_docs, num_perm), EMPTY, np.uint32)
    counts = np.diff(sh.offsets)
    docs = np.flatnonzero(counts > 0)
    if not len(docs):
        return out
    # Chunks of whole documents, each about _CHUNK_CELLS shingle x permutation cells.
    per_chunk = max(1, _CHUNK_CELLS // num_perm)
    i = 0
    while i < len(docs):
        first = sh.offsets[docs[i]]
        j = int(np.searchsorted(sh.offsets[docs + 1], first + per_chunk, side="right"))
        j = max(j, i + 1)
        chunk = docs[i:j]
        lo, hi = sh.offsets[chunk[0]], sh.offsets[chunk[-1] + 1]
        cells = a * x32[lo:hi]  # (num_perm, shingles), wraps mod 2^32
        cells += b
        starts = sh.offsets[chunk] - lo
        out[chunk] = np.minimum.reduceat(cells, starts, axis=1).T  # reduce along the contiguous axis
        i = j
    return out


def shingle(texts: pa.Array, *, ngram: int, mode: str) -> Shingles:
    return word_shingles(texts, ngram) if mode == "word" else char_shingles(texts, ngram)


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.mean(sig_a == sig_b))
