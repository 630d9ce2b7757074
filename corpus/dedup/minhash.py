"""MinHash signatures of a whole batch of documents at once (numpy), never shingle by shingle in Python.

Shingles are word n-grams of the normalized text (default 5, as in Gopher / RefinedWeb fuzzy dedup;
words as defined in corpus.dedup.words: punctuation separates them) or byte n-grams of the same
normalized text (`char` mode: UTF-8 bytes, so a non-ASCII character counts as 2-4 positions). A
shingle's 64-bit hash combines its words' hashes with distinct odd multipliers and a splitmix64 finish.
A document shorter than n words is one shingle of all its words, so short documents still match.

Permutation i maps a shingle's hash to a_i * x mod 2^32 (a_i odd), x being the top 32 bits of the
shingle's 64-bit hash with the lowest bit set: multiplication by an odd number is a bijection of the
32-bit space, and with x odd every permutation's values are uniform over the odd residues. It is
computed for all permutations and all shingles of a chunk of documents in one numpy expression (32-bit
lanes: 3-4x faster than 64-bit ones). Two distinct shingles share x with probability 2^-31, far below
the estimator's own sampling error (tests/corpus/dedup check estimates against true Jaccard and LSH
detection rates against 1-(1-s^r)^b).

HASH_FAMILY numbers this scheme, shingling included. Signatures of different families never match, so a
stored index records it (params.json) and dedup against a reference index checks it. Family 1 deleted
punctuation (CCNet) and permuted with (a_i * x + b_i) mod 2^32 on the unmodified x. Family 2 makes
punctuation a word separator (more expected true pairs on the labelled set, see corpus.dedup.words) and
drops b_i: one fewer pass over the shingle x permutation cells (25% of the permutation step,
benchmarks/README.md); over 200 seeds the labelled set's true pairs were found at the rate
1-(1-J^r)^b predicts for both families.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.dedup.text import U64, normalize, one_chunk, segment_hashes, splitmix64, string_buffers
from corpus.dedup.words import PUNCTUATION, word_hashes

HASH_FAMILY = 2
"""Version of the permutation scheme above; part of a stored index's parameters."""

EMPTY = np.uint32(0xFFFFFFFF)
"""Signature value of a document with no shingle (never placed in an LSH bucket)."""

_CHUNK_CELLS = 1 << 20  # shingles x permutations per numpy pass (a reused 4 MiB buffer): see signatures()


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
    """Word n-gram hashes of the texts, words as defined in corpus.dedup.words (the words of
    `normalize(text, punctuation=" ")`)."""
    hashes, lengths = word_hashes(texts)
    return _ngrams(hashes, lengths, n)


def char_shingles(texts: pa.Array, n: int) -> Shingles:
    """Byte n-gram hashes of the normalized texts (punctuation becoming a space, whitespace runs one
    space, as for words)."""
    data, offs = string_buffers(normalize(texts, punctuation=PUNCTUATION))
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
    """n-grams of consecutive word hashes inside each document. wh: (total words,), lengths: (docs,).

    Combines shifted views of the whole batch's word hashes (no per-document work), which lets an
    n-gram near a document's end run into the next document: those start positions are not kept, and
    documents shorter than n (one n-gram of all their words) are recomputed on their own."""
    total = len(wh)
    doc_start = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=doc_start[1:])
    padded = np.concatenate([wh, np.zeros(n, U64)])
    mults = multipliers(n, seed=0xA11CE)
    with np.errstate(over="ignore"):
        g = padded[:total] * mults[0]
        for k in range(1, n):
            g += padded[k: k + total] * mults[k]
        short = np.flatnonzero((lengths > 0) & (lengths < n))
        if len(short):
            first, size = doc_start[short], lengths[short]
            gs = np.zeros(len(short), U64)
            for k in range(n):
                gs += np.where(size > k, padded[first + k], U64(0)) * mults[k]
            g[first] = gs
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    kept = np.arange(offsets[-1], dtype=np.int64) + np.repeat(doc_start[:-1] - offsets[:-1], counts)
    return Shingles(splitmix64(g[kept]), offsets)


def signatures(sh: Shingles, num_perm: int, seed: int = 1) -> np.ndarray:
    """MinHash signatures, shape (n_docs, num_perm), uint32; rows of shingle-less documents are EMPTY."""
    rng = np.random.default_rng(seed)
    a = (rng.integers(0, 1 << 31, size=num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1))[:, None]
    x32 = (sh.hashes >> U64(32)).astype(np.uint32) | np.uint32(1)
    n_docs = len(sh.offsets) - 1
    out = np.full((n_docs, num_perm), EMPTY, np.uint32)
    counts = np.diff(sh.offsets)
    docs = np.flatnonzero(counts > 0)
    if not len(docs):
        return out
    # Chunks of whole documents, each about _CHUNK_CELLS shingle x permutation cells.
    per_chunk = max(1, _CHUNK_CELLS // num_perm)
    doc_ends = sh.offsets[docs + 1]
    # One buffer reused by every chunk: a fresh array per chunk paid page faults, which is what made big
    # chunks look slow. Reused, 2^20 cells beat 2^18 (1 MiB, sized for L2) by 1.9x on 3,000 Wikipedia
    # leads, 128 permutations (14 vs 27 ms, best of 25, 2026-11-28); 2^22 and up get slower again.
    buf = np.empty(num_perm * per_chunk, np.uint32)
    i = 0
    while i < len(docs):
        first = sh.offsets[docs[i]]
        j = int(np.searchsorted(doc_ends, first + per_chunk, side="right"))
        j = max(j, i + 1)
        chunk = docs[i:j]
        lo, hi = sh.offsets[chunk[0]], sh.offsets[chunk[-1] + 1]
        if (hi - lo) <= per_chunk:
            cells = buf[: num_perm * (hi - lo)].reshape(num_perm, hi - lo)
            np.multiply(a, x32[lo:hi], out=cells)  # (num_perm, shingles), wraps mod 2^32
        else:  # one document longer than a chunk
            cells = a * x32[lo:hi]
        starts = sh.offsets[chunk] - lo
        out[chunk] = np.minimum.reduceat(cells, starts, axis=1).T  # reduce along the contiguous axis
        i = j
    return out


_TEXT_SLICE_BYTES = 1 << 21
"""Text per pass of `text_signatures`. A pass holds several arrays of 8 bytes per word; past a few MB of
text they no longer stay in the CPU caches: on ~780-word documents 2 MiB slices were 22% faster than
whole 4096-document batches (4.9 MB of text), on ~90-word Wikipedia leads (1.5 MB per batch) 8% faster,
and 256 KiB slices were slower again (per-pass overheads), 2026-11-29."""


def text_signatures(texts: pa.Array | pa.ChunkedArray, *, num_perm: int, seed: int, ngram: int,
                    mode: str) -> np.ndarray:
    """MinHash signatures of texts, (n_docs, num_perm) uint32, computed in slices of about
    _TEXT_SLICE_BYTES of text (whole documents; a longer document is a slice of its own)."""
    texts = one_chunk(texts)
    ends = np.cumsum(pc.binary_length(pc.fill_null(texts, "")).to_numpy(zero_copy_only=False), dtype=np.int64)
    out, start = [], 0
    while start < len(texts):
        before = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, before + _TEXT_SLICE_BYTES, side="right")))
        out.append(signatures(shingle(texts.slice(start, stop - start), ngram=ngram, mode=mode), num_perm, seed))
        start = stop
    return np.concatenate(out) if out else np.full((0, num_perm), EMPTY, np.uint32)


def shingle(texts: pa.Array, *, ngram: int, mode: str) -> Shingles:
    return word_shingles(texts, ngram) if mode == "word" else char_shingles(texts, ngram)


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.mean(sig_a == sig_b))
