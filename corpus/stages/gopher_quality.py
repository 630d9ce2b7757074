"""Gopher's quality filters (Rae et al. 2021, "Scaling Language Models", appendix A.1.1 and Table A1).

A scoring stage: it adds `gopher_quality_reason_v1`, the name of the first rule the document fails
(null when it passes all), and the measured `gopher_n_words_v1`, `gopher_mean_word_len_v1`. Drop with
one select rule: `{column: gopher_quality_reason_v1, op: not_null, reason_from_column: true}`.

The published defaults, in the order the rules are checked:
- 50 <= words <= 100,000 (whitespace-separated words);
- 3 <= mean word length <= 10 characters;
- symbol-to-word ratio <= 0.1, symbols being "#" and the ellipsis ("..." or "…");
- at most 90% of lines start with a bullet point; at most 30% of lines end with an ellipsis;
- at least 80% of words contain an alphabetic character;
- at least 2 of the English stop words the, be, to, of, and, that, have, with (case and surrounding
  punctuation ignored).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import setting
from corpus.stages.base import StageSpec, fixed
from corpus.stages.segments import first_reason, safe_ratio, split_lines, split_words

COLUMNS = ("gopher_quality_reason_v1", "gopher_n_words_v1", "gopher_mean_word_len_v1")
REASONS = ("gopher_too_few_words", "gopher_too_many_words", "gopher_short_mean_word",
           "gopher_long_mean_word", "gopher_symbol_ratio", "gopher_bullet_lines", "gopher_ellipsis_lines",
           "gopher_non_alpha_words", "gopher_few_stop_words")
_BULLET = r"^\s*[•‣◦⁃∙·●○▪▫■□\-*]"
_ELLIPSIS_END = r"(\.\.\.|…)\s*$"
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»“”‘’„…–—"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GopherQualityConfig:
    min_words: int = setting(50, doc="fewer words fail (gopher_too_few_words)", unit="words", ge=0)
    max_words: int = setting(100_000, doc="more words fail (gopher_too_many_words)", unit="words", ge=1)
    min_mean_word_len: float = setting(3.0, doc="shorter mean word length fails", unit="characters", ge=0)
    max_mean_word_len: float = setting(10.0, doc="longer mean word length fails", unit="characters", ge=0)
    max_symbol_word_ratio: float = setting(0.1, doc="more '#' and ellipses per word fail", ge=0)
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
    n_words = words.counts.astype(np.float64)
    word_len = np.asarray(pc.utf8_length(words.items), dtype=np.float64)
    mean_len = safe_ratio(words.per_doc(word_len), n_words)

    # '#' and ellipses are counted in the raw text: a symbol glued to a word still counts.
    n_symbols = sum(np.asarray(pc.fill_null(pc.count_substring(text, s), 0), dtype=np.float64)
                    for s in ("#", "...", "…"))

    lines = split_lines(text)
    nonempty = np.asarray(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(lines.items)), 0))
    n_lines = lines.per_doc(nonempty.astype(np.float64))
    bullet = np.asarray(pc.match_substring_regex(lines.items, _BULLET)) & nonempty
    ellipsis = np.asarray(pc.match_substring_regex(lines.items, _ELLIPSIS_END)) & nonempty

    alpha = np.asarray(pc.match_substring_regex(words.items, r"\pL"))
    # "the," and "(and" are stop words too: punctuation around a word is trimmed before matching.
    bare = pc.utf8_trim(pc.utf8_lower(words.items), _PUNCTUATION)
    stop_idx = np.asarray(pc.fill_null(pc.index_in(bare,
                                                   value_set=pa.array(list(cfg.stop_words), pa.string())),
                                       -1), dtype=np.int64)
    hit = stop_idx >= 0
    # Distinct stop words per document: unique (document, stop word) pairs.
    pairs = np.unique(words.doc[hit] * max(len(cfg.stop_words), 1) + stop_idx[hit])
    n_stop = np.bincount(pairs // max(len(cfg.stop_words), 1), minlength=n)

    reasons = [
        ("gopher_too_few_words", n_words < cfg.min_words),
        ("gopher_too_many_words", n_words > cfg.max_words),
        ("gopher_short_mean_word", mean_len < cfg.min_mean_word_len),
        ("gopher_long_mean_word", mean_len > cfg.max_mean_word_len),
        ("gopher_symbol_ratio", safe_ratio(n_symbols, n_words) > cfg.max_symbol_word_ratio),
        ("gopher_bullet_lines", safe_ratio(lines.per_doc(bullet), n_lines) > cfg.max_bullet_lines),
        ("gopher_ellipsis_lines", safe_ratio(lines.per_doc(ellipsis), n_lines) > cfg.max_ellipsis_lines),
        ("gopher_non_alpha_words", safe_ratio(words.per_doc(alpha), n_words) < cfg.min_alpha_words),
        ("gopher_few_stop_words", n_stop < cfg.min_stop_words),
    ]
    assert tuple(r for r, _ in reasons) == REASONS
    batch = batch.append_column(pa.field(COLUMNS[0], pa.string()), first_reason(reasons, n))
    batch = batch.append_column(pa.field(COLUMNS[1], pa.int64()), pa.array(words.counts, pa.int64()))
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
