"""Text normalization and vectorized 64-bit hashing of whole Arrow string arrays.

Normalization follows CCNet (Wenzek et al. 2020, `normalize_line`): lowercase, every digit becomes 0,
punctuation and symbols are removed (or, for MinHash shingles, become spaces), runs of whitespace become
one space. It runs as Arrow kernels over a whole batch.

Strings are hashed without a Python loop: a polynomial hash over the UTF-8 bytes, mod 2^64, computed
for every string of an array at once from prefix sums (the base is odd, so it has an inverse mod 2^64
and a segment's hash is a difference of prefix sums times a power of the inverse), then mixed with
splitmix64 so that every output bit depends on every input bit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
_BASE = U64(0x100000001B3)  # odd: invertible mod 2^64
_BASE_INV = U64(pow(0x100000001B3, -1, 1 << 64))


def normalize(texts: pa.Array | pa.ChunkedArray, collapse_whitespace: bool = True, punctuation: str = "") -> pa.Array:
    """CCNet normalization of each string (nulls become empty strings). `punctuation` replaces each
    punctuation or symbol character: "" deletes it (CCNet, line dedup), " " makes it a word separator
    (MinHash shingles, see corpus.dedup.words). Without `collapse_whitespace`, whitespace is left as it
    is, runs and ends included (for callers that split on whitespace anyway)."""
    x = pc.fill_null(texts, "")
    x = pc.utf8_lower(x)
    x = pc.replace_substring_regex(x, r"\p{Nd}", "0")
    x = pc.replace_substring_regex(x, r"[\p{P}\p{S}]", punctuation)
    if collapse_whitespace:
        x = pc.replace_substring_regex(x, r"\s+", " ")
        x = pc.utf8_trim_whitespace(x)
    return one_chunk(x)


def one_chunk(x) -> pa.Array:
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks() if x.num_chunks != 1 else x.chunk(0)
    return x


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Finalizer of splitmix64 (Steele et al. 2014) on a uint64 array: a bijection with full avalanche."""
    with np.errstate(over="ignore"):
        z = x + U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
        return z ^ (z >> U64(31))


def string_buffers(strings: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(bytes as uint8, int64 offsets of length n+1 starting at 0) of a string array, nulls as empty
    strings: string i is data[offsets[i]:offsets[i+1]]. Zero-copy views where Arrow allows."""
    strings = one_chunk(strings)
    if strings.type == pa.string():
        strings = strings.cast(pa.large_string())
    strings = pc.fill_null(strings, "")
    _, off_buf, data_buf = strings.buffers()
    if off_buf is None:  # an empty array may have no offsets buffer
        return np.zeros(0, np.uint8), np.zeros(1, np.int64)
    offsets = np.frombuffer(off_buf, np.int64)[strings.offset: strings.offset + len(strings) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data[offsets[0]: offsets[-1]], offsets - offsets[0]


_POWERS_CACHED = 1 << 21  # entries: 32 MiB for both tables, more than a 4096-document batch's vocabulary
_powers_cache: tuple[np.ndarray, np.ndarray] = (np.ones(1, U64), np.ones(1, U64))


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(BASE^k, BASE^-k) mod 2^64 for k < n, at least. Kept between calls up to _POWERS_CACHED entries:
    two sequential cumprods were a quarter of a vocabulary hash's time."""
    global _powers_cache
    if len(_powers_cache[0]) >= n:
        return _powers_cache
    size = min(max(n, 2 * len(_powers_cache[0])), _POWERS_CACHED) if n <= _POWERS_CACHED else n
    with np.errstate(over="ignore"):
        powers = np.empty(size, U64)
        powers[0] = 1
        np.cumprod(np.full(size - 1, _BASE, U64), out=powers[1:])
        inv = np.empty(size, U64)
        inv[0] = 1
        np.cumprod(np.full(size - 1, _BASE_INV, U64), out=inv[1:])
    if size <= _POWERS_CACHED:
        _powers_cache = (powers, inv)
    return powers, inv


def segment_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hash of every byte segment data[starts[i]:ends[i]] (uint64, shape (len(starts),))."""
    n = len(data)
    if n == 0:
        return splitmix64(np.zeros(len(starts), U64))
    powers, inv = _powers(n + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, U64)
        np.cumsum((data.astype(U64) + U64(1)) * powers[:n], out=prefix[1:])
        s = starts.astype(np.int64)
        e = ends.astype(np.int64)
        h = (prefix[e] - prefix[s]) * inv[s]
        return splitmix64(h ^ ((e - s).astype(U64) * U64(0xD6E8FEB86659FD93)))


def hash_strings(strings: pa.Array) -> np.ndarray:
    """64-bit hash of each string (uint64, one per element; null hashes like the empty string)."""
    data, offsets = string_buffers(strings)
    return segment_hashes(data, offsets[:-1], offsets[1:])
