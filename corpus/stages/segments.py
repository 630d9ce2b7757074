"""A whole batch of texts cut into flat arrays of words or lines, each item tagged with its document.

The heuristic stages (C4, Gopher quality, Gopher repetition) decide per document but compute per word or
per line. Splitting the whole batch at once with Arrow kernels and aggregating with numpy (`bincount`
over the document index) keeps the per-document Python loop out of the hot path: the cost is a fixed
number of vectorized calls per batch, whatever the number of documents. The words of the last batch
split are kept (with their dictionary codes), so the stages that run one after the other on a batch
split it once.
"""

from __future__ import annotations

import dataclasses
import threading

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
    last = _last_words
    if not _same_arrays(last.text, text):
        last.text, last.words, last.codes = text, _split_words(text), None
    return last.words


def word_codes(text: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(int64 [n_words], distinct words): each word of `split_words(text)` as its index into the batch's
    distinct words, so a per-word property is computed once per distinct word (a fraction of them)."""
    words = split_words(text)
    last = _last_words
    if last.codes is None:
        encoded = pc.dictionary_encode(words.items)
        last.codes = (np.asarray(encoded.indices, dtype=np.int64), encoded.dictionary)
    return last.codes


class _LastWords(threading.local):
    """The words of the last text split. The heuristic stages run one after the other on the same batch
    and each needs its words: splitting and encoding them once is a large part of their cost."""

    text: pa.ChunkedArray | pa.Array | None = None  # held, so its buffers cannot be freed and reused
    words: Segments | None = None
    codes: tuple[np.ndarray, pa.Array] | None = None


_last_words = _LastWords()


def _same_arrays(a, b) -> bool:
    """Whether two Arrow string arrays are views of the same buffers (Arrow buffers are immutable, and
    `a` is held, so the same addresses mean the same bytes)."""
    if a is None:
        return False
    chunks_a = a.chunks if isinstance(a, pa.ChunkedArray) else [a]
    chunks_b = b.chunks if isinstance(b, pa.ChunkedArray) else [b]
    return len(chunks_a) == len(chunks_b) and all(
        x.type == y.type and x.offset == y.offset and len(x) == len(y)
        and [buf.address if buf is not None else None for buf in x.buffers()]
        == [buf.address if buf is not None else None for buf in y.buffers()]
        for x, y in zip(chunks_a, chunks_b))


def _split_words(text: pa.ChunkedArray | pa.Array) -> Segments:
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
