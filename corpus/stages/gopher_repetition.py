"""Gopher's repetition filters (Rae et al. 2021, appendix A.1.1 and Table A1), vectorized over a batch.

A scoring stage: it adds `gopher_repetition_reason_v2`, the first rule the document fails (null when it
passes all). Drop with `{column: gopher_repetition_reason_v2, op: not_null, reason_from_column: true}`.

The paper: "For lines and paragraphs separately, we calculate over the document both the fraction that
are duplicates, and the fraction of characters contained within those duplicates; for each n in
{2, ..., 4}, we calculate the fraction of characters contained within the most frequently-occurring
n-gram; and for each n in {5, ..., 10}, we calculate the fraction of characters contained within all
duplicate n-grams, taking care not to count characters that occur in overlapping n-grams more than
once." Table A1's limits, in the order checked:
- duplicate lines: <= 30% of lines, <= 20% of characters;
- duplicate paragraphs (split on two or more newlines): <= 30% of paragraphs, <= 20% of characters;
- top n-gram: the most frequent word 2-, 3-, 4-gram covers <= 20%, 18%, 16% of the characters;
- duplicate n-grams: 5..10-grams, <= 15%, 14%, 13%, 12%, 11%, 10% of the characters.

Where the paper is silent we follow datatrove 0.10.1's GopherRepetitionFilter, except where noted
(benchmarks/bench_heuristics_agreement.py measures each rule on both sides):
- "Characters" are the document's characters, whitespace included (`len(text)`), the denominator of
  every character fraction, as in datatrove. v1 divided by the characters of the words or lines only,
  which made every fraction ~20% larger than the paper's "fraction of characters" of the document.
- A duplicate line or paragraph is one equal to an earlier one of the document (the first copy is
  not a duplicate); its characters, as written (indentation included, as datatrove counts them), are
  counted per duplicate copy. Lines are compared with surrounding whitespace trimmed, and blank lines
  are not lines: datatrove compares raw lines, so an indented copy is not a duplicate there, while
  repeated whitespace-only lines are, and count in its line total.
- Duplicate n-grams, in the same sense: the occurrences of an n-gram after its first one (datatrove
  too). The characters are those of the words such occurrences cover, each word once however many
  occurrences overlap it (the paper's overlap rule), spaces excluded. v1 also counted the first
  occurrence, so two copies of a passage counted twice what datatrove and the paper's "duplicates"
  of lines count. datatrove skips n words after each duplicate occurrence instead of taking the union,
  so it counts a repeated passage of L words as its first n * floor(L / n) words and misses up to n - 1
  words at its end, although they too lie inside a duplicate n-gram: the remaining disagreement of
  these rules (29-48 of the benchmark's 2,304 documents per n, all of them dropped by refinery only;
  v1: 289-346).
- The top n-gram's characters are the n-gram as text, its words joined by single spaces (as datatrove
  measures it), times its count. As in the paper's words and in datatrove, the most frequent n-gram is
  taken even when it occurs once, so a document of a dozen words fails on one 4-gram (such a document
  is far under the quality stage's 50 words). Among equally frequent n-grams, the one that occurs
  first (datatrove: `Counter.most_common`, which keeps insertion order; v1 took the longest and
  required two occurrences).
Words are whitespace-separated, as the paper counts them (datatrove's default is spaCy's tokens).

How: every word of the batch gets an integer id (Arrow dictionary encoding, shared with the other
heuristic stages through corpus.stages.segments); an n-gram starting at word i is the 64-bit polynomial
hash of n ids, salted with its document, so one hash-table pass over the batch (Arrow's
dictionary_encode, which numbers values in order of first occurrence) counts every n-gram of every
document at once and tells first occurrences apart. From the smallest n on, only the n-grams whose two
(n-1)-grams both occur twice or more are counted: no other n-gram can occur twice, and in prose most
4-grams occur once, so the larger n cost a fraction of the first (same counts; 2.3x less CPU for the stage
on the bulk corpus). A hash collision (~N^2 / 2^64 for N n-grams) can only merge two different n-grams;
at 1e6 n-grams per batch that is ~3e-8.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import setting
from corpus.stages.base import StageSpec, fixed
from corpus.stages.segments import Segments, first_reason, safe_ratio, split_lines, split_words, word_codes

COLUMNS = ("gopher_repetition_reason_v2",)
_P = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier: the hash is a bijection of the last id
_DOC_SALT = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GopherRepetitionConfig:
    dup_line_frac: float = setting(0.30, doc="max fraction of duplicate lines", unit="fraction", ge=0, le=1)
    dup_line_char_frac: float = setting(0.20, doc="max fraction of characters in duplicate lines",
                                        unit="fraction", ge=0, le=1)
    dup_para_frac: float = setting(0.30, doc="max fraction of duplicate paragraphs", unit="fraction",
                                   ge=0, le=1)
    dup_para_char_frac: float = setting(0.20, doc="max fraction of characters in duplicate paragraphs",
                                        unit="fraction", ge=0, le=1)
    top_ngram_char_frac: dict[int, float] | None = setting(
        None, doc="n -> max character fraction of the most frequent n-gram; null = {2: 0.20, 3: 0.18, 4: 0.16}")
    dup_ngram_char_frac: dict[int, float] | None = setting(
        None, doc="n -> max character fraction in duplicate n-grams; null = {5: 0.15, ..., 10: 0.10}")

    def __post_init__(self) -> None:
        if self.top_ngram_char_frac is None:
            object.__setattr__(self, "top_ngram_char_frac", {2: 0.20, 3: 0.18, 4: 0.16})
        if self.dup_ngram_char_frac is None:
            object.__setattr__(self, "dup_ngram_char_frac",
                               {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})
        for n in (*self.top_ngram_char_frac, *self.dup_ngram_char_frac):
            if not 1 <= n <= 64:
                raise ValueError(f"n-gram size {n} out of range. Fix: use 1..64.")


def _duplicates(seg: Segments, keep: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per document: (count, characters) of kept items equal to an earlier kept item of the document."""
    idx = np.flatnonzero(keep)
    if not len(idx):
        return np.zeros(seg.n_docs), np.zeros(seg.n_docs)
    ids = np.asarray(pc.dictionary_encode(seg.items.take(pa.array(idx))).indices, dtype=np.int64)
    key = seg.doc[idx] * (int(ids.max()) + 1) + ids
    _, first = np.unique(key, return_index=True)
    dup = np.ones(len(idx), dtype=bool)
    dup[first] = False  # np.unique's index is the first occurrence
    return seg.per_doc(_scatter(idx[dup], len(seg.doc))), seg.per_doc(_scatter(idx[dup], len(seg.doc), lengths))


def _scatter(idx: np.ndarray, size: int, values: np.ndarray | None = None) -> np.ndarray:
    out = np.zeros(size)
    out[idx] = 1.0 if values is None else values[idx]
    return out


def _line_rules(text, n_docs: int, pattern: str, doc_chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seg = split_lines(text, pattern)
    # Compared trimmed, counted as written: the characters of the document a duplicate line takes up.
    written = np.asarray(pc.utf8_length(seg.items), dtype=np.float64)
    stripped = pc.utf8_trim_whitespace(seg.items)
    seg = Segments(items=stripped, doc=seg.doc, offsets=seg.offsets, n_docs=n_docs)
    keep = np.asarray(pc.utf8_length(stripped)) > 0
    n_items = seg.per_doc(keep.astype(np.float64))
    dup_n, dup_chars = _duplicates(seg, keep, written)
    return safe_ratio(dup_n, n_items), safe_ratio(dup_chars, doc_chars)


def score_gopher_repetition(batch: pa.Table, cfg: GopherRepetitionConfig) -> pa.Table:
    text = batch.column("text")
    n_docs = batch.num_rows
    total = np.asarray(pc.fill_null(pc.utf8_length(text), 0), dtype=np.float64)  # the document's characters
    line_frac, line_chars = _line_rules(text, n_docs, "\n", total)
    para_frac, para_chars = _line_rules(text, n_docs, r"\n{2,}", total)

    words = split_words(text)
    codes, distinct = word_codes(text)
    wlen = np.asarray(pc.utf8_length(distinct), dtype=np.int64)[codes]
    cum = np.concatenate(([0], np.cumsum(wlen)))
    pos = np.arange(len(wlen), dtype=np.int64) - words.offsets[words.doc]  # position in its document
    doc_len = words.counts[words.doc]
    ids = codes.astype(np.uint64)
    h = (ids + np.uint64(1)) ^ (words.doc.astype(np.uint64) * _DOC_SALT)
    reasons: list[tuple[str, np.ndarray]] = [
        ("gopher_dup_line_frac", line_frac > cfg.dup_line_frac),
        ("gopher_dup_line_char_frac", line_chars > cfg.dup_line_char_frac),
        ("gopher_dup_para_frac", para_frac > cfg.dup_para_frac),
        ("gopher_dup_para_char_frac", para_chars > cfg.dup_para_char_frac),
    ]
    limits = {**{n: ("top", f) for n, f in cfg.top_ngram_char_frac.items()},
              **{n: ("dup", f) for n, f in cfg.dup_ngram_char_frac.items()}}
    ngram_reasons = {}
    # h[i]: the hash of the n-gram starting at word i, kept current at the starts still counted.
    counts = None  # per word position: how often the (n-1)-gram starting there occurs in its document
    with np.errstate(over="ignore"):  # the hash wraps mod 2^64 by design
        for n in range(1, max(limits, default=0) + 1):
            if counts is None:  # up to the first n counted: every position, whole-array steps
                if n > 1:
                    h[:len(h) - n + 1] = h[:len(h) - n + 1] * _P + ids[n - 1:]
                if n < min(limits):
                    continue
                starts = np.flatnonzero(pos + n <= doc_len)
            else:
                # An n-gram can occur twice only where both (n-1)-grams inside it do, so the n-grams
                # counted shrink fast with n (most 4-grams of prose occur once): same counts, less work.
                # Such a start's n-gram lies inside its document: the (n-1)-gram one word later does.
                starts = starts[(counts[starts] > 1) & (counts[starts + 1] > 1)]
                h[starts] = h[starts] * _P + ids[starts + n - 1]
            counts, first = _count(h, starts)
            if n not in limits:
                continue
            kind, limit = limits[n]
            frac = (_top_ngram(counts, starts, words, cum, n) if kind == "top"
                    else _dup_ngram(first, starts, words, wlen, n))
            ngram_reasons[n] = (f"gopher_{kind}_{n}gram", safe_ratio(frac, total) > limit)
    reasons += [ngram_reasons[n] for n in sorted(ngram_reasons)]
    return batch.append_column(pa.field(COLUMNS[0], pa.string()), first_reason(reasons, n_docs))


def _count(h: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the n-grams starting at `starts` (ascending; hashes `h` hold the document): per word position,
    how often its n-gram occurs (0 where not counted), and per start whether it is the n-gram's first
    occurrence."""
    counts = np.zeros(len(h) + 1, dtype=np.int64)  # one spare: the caller reads counts[start + 1]
    if not len(starts):
        return counts, np.zeros(0, dtype=bool)
    # Arrow's hash table numbers distinct values in order of first occurrence (3-4x faster than
    # np.unique's sort at a batch's size), so an occurrence is the first of its n-gram exactly when its
    # number exceeds every number before it.
    code = np.asarray(pc.dictionary_encode(pa.array(h[starts])).indices, dtype=np.int64)
    counts[starts] = np.bincount(code)[code]
    seen = np.maximum.accumulate(code)
    first = np.empty(len(code), dtype=bool)
    first[0] = True
    first[1:] = code[1:] > seen[:-1]
    return counts, first


def _top_ngram(counts, starts, words: Segments, cum, n) -> np.ndarray:
    """Per document: characters of its most frequent n-gram (words and the n - 1 spaces between them)
    times its count; among equally frequent n-grams, the one that occurs first. `starts` may leave out
    n-grams that occur once: a document without a repeated n-gram gets its first n-gram, once."""
    out = np.zeros(words.n_docs)
    has_ngram = words.counts >= n
    first_start = words.offsets[:-1][has_ngram]
    out[has_ngram] = cum[first_start + n] - cum[first_start] + (n - 1)
    repeated = starts[counts[starts] > 1]
    if not len(repeated):
        return out
    count = counts[repeated]
    doc = words.doc[repeated]
    # Occurrences by document, then most frequent, then earliest: the first of each document is the
    # first occurrence of its top n-gram.
    order = np.lexsort((repeated, -count, doc))
    docs, first = np.unique(doc[order], return_index=True)
    top = repeated[order[first]]
    out[docs] = counts[top] * (cum[top + n] - cum[top] + (n - 1))
    return out


def _dup_ngram(first, starts, words: Segments, wlen, n) -> np.ndarray:
    """Per document: characters of the words covered by an occurrence of an n-gram after its first."""
    dup = starts[~first]
    size = len(wlen) + 1
    cover = np.cumsum(np.bincount(dup, minlength=size) - np.bincount(dup + n, minlength=size))[:-1] > 0
    return words.per_doc(np.where(cover, wlen, 0).astype(np.float64))


SPEC = StageSpec(
    name="gopher_repetition",
    config=GopherRepetitionConfig,
    kind="score",
    build=lambda cfg, _ctx: lambda batch: score_gopher_repetition(batch, cfg),
    reads=fixed("text"),
    writes=fixed(*COLUMNS),
    types=lambda _cfg: {COLUMNS[0]: pa.string()},
)
