"""A whole batch of texts cut into flat arrays of words or lines, each item tagged with its document.

The heuristic stages (C4, Gopher quality, Gopher repetition) decide per document but compute per word or
per line. Splitting the whole batch at once with Arrow kernels and aggregating with numpy (`bincount`
over the document index) keeps the per-document Python loop out of the hot path: the cost is a fixed
number of vectorized calls per batch, whatever the number of documents.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclasses.dataclass(frozen=True, slots=True)
class Segments:
    """Items (words or lines) of n_docs documents, in document order."""

    items: pa.Array
    """string, flat: every item of document 0, then of document 1, ..."""
    doc: np.ndarray
    """int64 [n_items]: the document each item belongs to."""
    offsets: np.ndarray
    """int64 [n_docs + 1]: items of document d are items[offsets[d]:offsets[d + 1]]."""
    n_docs: int

    @property
    def counts(self) -> np.ndarray:
        """int64 [n_docs]: items per document."""
        return np.diff(self.offsets)

    def per_doc(self, values: np.ndarray | None = None) -> np.ndarray:
        """float64 [n_docs]: sum of `values` (one per item; None counts items) per document."""
        return np.bincount(self.doc, weights=values, minlength=self.n_docs).astype(np.float64)

    def any_per_doc(self, mask: np.ndarray) -> np.ndarray:
        return self.per_doc(mask.astype(np.float64)) > 0


def _from_lists(lists: pa.Array, n_docs: int) -> Segments:
    lists = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
    # Null texts split to null lists: they count as documents without items.
    lists = pc.fill_null(lists, pa.scalar([], lists.type)) if lists.null_count else lists
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    counts = np.diff(offsets)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
    return Segments(items=lists.flatten(), doc=doc, offsets=offsets, n_docs=n_docs)


def split_words(text: pa.ChunkedArray | pa.Array) -> Segments:
    """Whitespace-separated words (Unicode whitespace), as Gopher counts them."""
    seg = _from_lists(pc.utf8_split_whitespace(text), len(text))
    # Arrow yields an empty item for leading or trailing whitespace (and for an empty text).
    empty = np.asarray(pc.equal(pc.binary_length(seg.items), 0))
    if not empty.any():
        return seg
    keep = np.flatnonzero(~empty)
    doc = seg.doc[keep]
    offsets = np.concatenate(([0], np.cumsum(np.bincount(doc, minlength=seg.n_docs)))).astype(np.int64)
    return Segments(items=seg.items.take(pa.array(keep)), doc=doc, offsets=offsets, n_docs=seg.n_docs)


def split_lines(text: pa.ChunkedArray | pa.Array, pattern: str = "\n") -> Segments:
    """Lines split on `pattern` (a regex when it has more than one character), empty items kept."""
    lists = (pc.split_pattern(text, pattern) if len(pattern) == 1
             else pc.split_pattern_regex(text, pattern))
    return _from_lists(lists, len(text))


def first_reason(reasons: list[tuple[str, np.ndarray]], n_docs: int) -> pa.Array:
    """string [n_docs]: the name of the first rule whose mask is true for the document, else null."""
    out = np.full(n_docs, -1, dtype=np.int64)
    for i, (_, mask) in reversed(list(enumerate(reasons))):
        out[mask] = i
    names = pa.array([name for name, _ in reasons], pa.string())
    if not len(names):
        return pa.nulls(n_docs, pa.string())
    idx = pa.array(out, pa.int64(), mask=out < 0)
    return pc.take(names, idx)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (an empty document has no fractions)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)
