"""Book-level near-duplicates: how much of one book's content is inside another's.

LLaMA-1 (sec. 2, Books): "we perform deduplication at the book level, removing books with more
than 90% content overlap". Overlap here is containment of word 5-gram shingles: the share of book
A's distinct shingles that also occur in book B, |A & B| / |A|. Containment (not Jaccard) is the
right measure for "A is mostly inside B": an abridged edition inside a complete one scores high.

Each book is summarised by a bottom-k sketch (the k smallest 64-bit shingle hashes, plus the
number of distinct shingles), so memory per book is constant however long the book is. For books
with fewer than k distinct shingles the sketch is the whole set and the containment is exact;
otherwise it is the standard bottom-k estimate (Broder 1997; Cohen & Kaplan 2007): the Jaccard
J is estimated on the k smallest hashes of the union, and containment = J (|A| + |B|) / ((1 + J) |A|).
The standard error of J is about sqrt(J (1 - J) / k): with k = 4096, under 0.005 near J = 0.9.

Survivor rule (deterministic): within a group of near-duplicates the book with the most distinct
shingles is kept, ties broken by the smaller key; every other book whose containment in a kept
book exceeds the threshold is dropped.
"""

from __future__ import annotations

import dataclasses
import re
import zlib

import numpy as np

_WORD = re.compile(r"\w+")


@dataclasses.dataclass(frozen=True, slots=True)
class BookSketch:
    key: str
    n_shingles: int
    """Distinct shingles of the book."""
    hashes: np.ndarray
    """Sorted uint64, the min(k, n_shingles) smallest distinct shingle hashes."""


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the polynomial shingle hashes over all 64 bits. x: (n,) uint64."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingle_hashes(text: str, n: int = 5) -> np.ndarray:
    """Sorted distinct 64-bit hashes of the word n-grams of `text` (lower-cased words)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        words = words + [""] * (n - len(words)) if words else []
    if not words:
        return np.zeros(0, np.uint64)
    vocab = {x: zlib.crc32(x.encode()) for x in set(words)}  # hash each distinct word once
    w = np.fromiter(map(vocab.__getitem__, words), np.uint64, len(words))  # (n_words,)
    h = np.zeros(len(words) - n + 1, np.uint64)  # (n_shingles,)
    with np.errstate(over="ignore"):
        for j in range(n):  # polynomial hash of the n words, wrapping mod 2**64
            h = h * np.uint64(1_000_003) + w[j: len(words) - n + 1 + j]
    return np.unique(_mix(h))


def sketch_book(key: str, text: str, k: int = 4096, n: int = 5) -> BookSketch:
    hashes = shingle_hashes(text, n)
    return BookSketch(key, len(hashes), hashes[:k].copy())


def _members(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """values in sorted_set, elementwise (both sorted uint64; a binary search, no hashing). -> (n,) bool"""
    if len(sorted_set) == 0:
        return np.zeros(len(values), bool)
    idx = np.searchsorted(sorted_set, values)
    return sorted_set[np.minimum(idx, len(sorted_set) - 1)] == values


def containment(a: BookSketch, b: BookSketch, k: int = 4096) -> float:
    """Estimated |A & B| / |A| from two sketches (exact when both books have <= k shingles)."""
    if a.n_shingles == 0:
        return 0.0
    if a.n_shingles <= k and b.n_shingles <= k:
        return int(_members(a.hashes, b.hashes).sum()) / a.n_shingles
    union = np.concatenate([a.hashes, b.hashes])
    union.sort()
    union_k = union[np.r_[True, union[1:] != union[:-1]]][:k]  # bottom-k of the union
    jaccard = (_members(union_k, a.hashes) & _members(union_k, b.hashes)).sum() / len(union_k)
    return float(min(1.0, jaccard * (a.n_shingles + b.n_shingles) / ((1 + jaccard) * a.n_shingles)))


_QUICK_K = 256


def _head(s: BookSketch, k: int) -> BookSketch:
    """The bottom-k sketch of the same book for a smaller k (its k smallest hashes)."""
    return BookSketch(s.key, s.n_shingles, s.hashes[:k])


def near_duplicate_books(sketches: list[BookSketch], threshold: float = 0.9,
                         k: int = 4096) -> dict[str, tuple[str, float]]:
    """{dropped key: (kept key it overlaps, containment)} for books over `threshold` inside another.

    Books are visited from the largest down; a book is dropped when its containment in an already
    kept book exceeds the threshold. O(kept x books) sketch comparisons: fine for a shard of books.
    """
    order = sorted(sketches, key=lambda s: (-s.n_shingles, s.key))
    kept: list[BookSketch] = []
    dropped: dict[str, tuple[str, float]] = {}
    quick = min(k, _QUICK_K)
    for book in order:
        # A 256-hash estimate (sd about 0.03) screens the pairs; only near ones get the full k.
        near = [o for o in kept if containment(_head(book, quick), _head(o, quick), quick) > threshold - 0.15]
        best = max(((containment(book, other, k), other.key) for other in near), default=(0.0, ""))
        if best[0] > threshold:
            dropped[book.key] = (best[1], round(best[0], 4))
        else:
            kept.append(book)
    return dropped
