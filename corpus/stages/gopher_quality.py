"""Gopher's quality filters (Rae et al. 2021, "Scaling Language Models", appendix A.1.1 and Table A1).

A scoring stage: it adds `gopher_quality_reason_v2`, the name of the first rule the document fails
(null when it passes all), and the measured `gopher_n_words_v2`, `gopher_mean_word_len_v2`. Drop with
one select rule: `{column: gopher_quality_reason_v2, op: not_null, reason_from_column: true}`.

The paper's rules and defaults, in the order they are checked ("words" are whitespace-separated):
- 50 <= words <= 100,000, and 3 <= mean word length <= 10 characters;
- "a symbol-to-word ratio greater than 0.1 for either the hash symbol or the ellipsis": two ratios,
  '#' per word and ellipses ("..." or "…") per word, each at most 0.1;
- at most 90% of lines start with a bullet point; at most 30% of lines end with an ellipsis;
- at least 80% of words contain an alphabetic character;
- at least 2 of the English stop words the, be, to, of, and, that, have, with.

Where the paper is silent, and how this compares with datatrove 0.10.1's GopherQualityFilter
(benchmarks/bench_heuristics_agreement.py measures each rule on both sides):
- Words are whitespace-separated, as the paper counts them. datatrove's default English tokenizer
  (spaCy) makes every comma and full stop a word, which pulls ordinary prose under 80% alphabetic
  words; with a whitespace tokenizer datatrove makes the decisions refinery makes.
- Word count and mean word length leave out words made only of punctuation and symbols (a lone "-",
  "|" or "..."), as datatrove does: they are not words of the text. The ratios keep every word as
  their denominator, as datatrove does. v1 counted every word and added '#' and ellipses into one
  ratio, against the paper's "either". refinery takes punctuation and symbols by Unicode category;
  datatrove's list lacks the bullet "•", so it counts each bullet as a one-character word: on 16
  python-doc pages (bullet lists of long identifiers) the mean word length is 10.4-14.9 here and
  6.6-9.2 there, and only refinery drops them (the 17th page the rule splits on holds "＊,＃,＋,＋").
- Bullet points are the characters used as list markers (•, ‣, ◦, ⁃, ∙, ·, ●, ○, ▪, ▫, ■, □, -, *);
  datatrove takes "•" and "-" only. Lines are the document's non-empty lines; datatrove also counts
  empty lines, so a list written with blank lines between its items is never "90% bullets" there.
- Stop words match case-insensitively with punctuation around the word trimmed ("The," counts as
  "the"): the paper names words, not tokens. datatrove matches tokens exactly, so "The" is not "the".
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import setting
from corpus.stages.base import StageSpec, fixed
from corpus.stages.segments import first_reason, safe_ratio, split_lines, split_words, word_codes

COLUMNS = ("gopher_quality_reason_v2", "gopher_n_words_v2", "gopher_mean_word_len_v2")
REASONS = ("gopher_too_few_words", "gopher_too_many_words", "gopher_short_mean_word",
           "gopher_long_mean_word", "gopher_hash_ratio", "gopher_ellipsis_ratio", "gopher_bullet_lines",
           "gopher_ellipsis_lines", "gopher_non_alpha_words", "gopher_few_stop_words")
_BULLET = r"^\s*[•‣◦⁃∙·●○▪▫■□\-*]"
_ELLIPSIS_END = r"(\.\.\.|…)\s*$"
# A word with no character outside punctuation (P*) and symbols (S*) is not counted as a word.
_SYMBOLS_ONLY = r"^[\pP\pS]+$"
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»“”‘’„…–—"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GopherQualityConfig:
    min_words: int = setting(50, doc="fewer words fail (gopher_too_few_words)", unit="words", ge=0)
    max_words: int = setting(100_000, doc="more words fail (gopher_too_many_words)", unit="words", ge=1)
    min_mean_word_len: float = setting(3.0, doc="shorter mean word length fails", unit="characters", ge=0)
    max_mean_word_len: float = setting(10.0, doc="longer mean word length fails", unit="characters", ge=0)
    max_hash_word_ratio: float = setting(0.1, doc="more '#' per word fail (gopher_hash_ratio)", ge=0)
    max_ellipsis_word_ratio: float = setting(0.1, doc="more ellipses ('...', '…') per word fail "
                                             "(gopher_ellipsis_ratio)", ge=0)
    max_bullet_lines: float = setting(0.9, doc="larger fraction of lines starting with a bullet fails",
                                      unit="fraction", ge=0, le=1)
    max_ellipsis_lines: float = setting(0.3, doc="larger fraction of lines ending with an ellipsis fails",
                                        unit="fraction", ge=0, le=1)
    min_alpha_words: float = setting(0.8, doc="smaller fraction of words with a letter fails",
                                     unit="fraction", ge=0, le=1)
    stop_words: tuple[str, ...] = setting(("the", "be", "to", "of", "and", "that", "have", "with"),
                                          doc="the stop words counted (lowercased match)")
    min_stop_words: int = setting(2, doc="fewer distinct stop words fail", unit="words", ge=0)


def score_gopher_quality(batch: pa.Table, cfg: GopherQualityConfig) -> pa.Table:
    text = batch.column("text")
    n = batch.num_rows
    words = split_words(text)
    all_words = words.counts.astype(np.float64)
    # Per-word properties are computed on the batch's distinct words, then looked up per word.
    codes, distinct = word_codes(text)
    real = ~np.asarray(pc.match_substring_regex(distinct, _SYMBOLS_ONLY))[codes]
    n_words = words.per_doc(real.astype(np.float64))
    word_len = np.asarray(pc.utf8_length(distinct), dtype=np.float64)[codes]
    mean_len = safe_ratio(words.per_doc(np.where(real, word_len, 0.0)), n_words)

    # '#' and ellipses are counted in the raw text: a symbol glued to a word still counts.
    def count(s: str) -> np.ndarray:
        return np.asarray(pc.fill_null(pc.count_substring(text, s), 0), dtype=np.float64)

    n_hashes, n_ellipses = count("#"), count("...") + count("…")

    lines = split_lines(text)
    nonempty = np.asarray(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(lines.items)), 0))
    n_lines = lines.per_doc(nonempty.astype(np.float64))
    bullet = np.asarray(pc.match_substring_regex(lines.items, _BULLET)) & nonempty
    ellipsis = np.asarray(pc.match_substring_regex(lines.items, _ELLIPSIS_END)) & nonempty

    alpha = np.asarray(pc.match_substring_regex(distinct, r"\pL"))[codes]
    # "the," and "(and" are stop words too: punctuation around a word is trimmed before matching.
    bare = pc.utf8_trim(pc.utf8_lower(distinct), _PUNCTUATION)
    stop_idx = np.asarray(pc.fill_null(pc.index_in(bare,
                                                   value_set=pa.array(list(cfg.stop_words), pa.string())),
                                       -1), dtype=np.int64)[codes]
    hit = stop_idx >= 0
    # Distinct stop words per document: unique (document, stop word) pairs.
    pairs = np.unique(words.doc[hit] * max(len(cfg.stop_words), 1) + stop_idx[hit])
    n_stop = np.bincount(pairs // max(len(cfg.stop_words), 1), minlength=n)

    reasons = [
        ("gopher_too_few_words", n_words < cfg.min_words),
        ("gopher_too_many_words", n_words > cfg.max_words),
        ("gopher_short_mean_word", mean_len < cfg.min_mean_word_len),
        ("gopher_long_mean_word", mean_len > cfg.max_mean_word_len),
        ("gopher_hash_ratio", safe_ratio(n_hashes, all_words) > cfg.max_hash_word_ratio),
        ("gopher_ellipsis_ratio", safe_ratio(n_ellipses, all_words) > cfg.max_ellipsis_word_ratio),
        ("gopher_bullet_lines", safe_ratio(lines.per_doc(bullet), n_lines) > cfg.max_bullet_lines),
        ("gopher_ellipsis_lines", safe_ratio(lines.per_doc(ellipsis), n_lines) > cfg.max_ellipsis_lines),
        ("gopher_non_alpha_words", safe_ratio(words.per_doc(alpha), all_words) < cfg.min_alpha_words),
        ("gopher_few_stop_words", n_stop < cfg.min_stop_words),
    ]
    assert tuple(r for r, _ in reasons) == REASONS
    batch = batch.append_column(pa.field(COLUMNS[0], pa.string()), first_reason(reasons, n))
    batch = batch.append_column(pa.field(COLUMNS[1], pa.int64()), pa.array(n_words.astype(np.int64), pa.int64()))
    return batch.append_column(pa.field(COLUMNS[2], pa.float64()), pa.array(mean_len, pa.float64()))


SPEC = StageSpec(
    name="gopher_quality",
    config=GopherQualityConfig,
    kind="score",
    build=lambda cfg, _ctx: lambda batch: score_gopher_quality(batch, cfg),
    reads=fixed("text"),
    writes=fixed(*COLUMNS),
    types=lambda _cfg: dict(zip(COLUMNS, (pa.string(), pa.int64(), pa.float64()))),
)
