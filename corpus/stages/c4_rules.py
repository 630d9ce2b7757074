"""The C4 cleaning rules (Raffel et al. 2020, section 2.2; TensorFlow Datasets `c4_utils.clean_page`).

A scoring stage: it adds `c4_drop_reason_v1` (the rule that drops the document, null when it is kept),
`c4_kept_line_frac_v1` (fraction of non-empty lines C4 keeps) and `c4_sentences_v1` (sentences in the
kept lines). Drop with `{column: c4_drop_reason_v1, op: not_null, reason_from_column: true}`. A scoring
stage never rewrites text: the `c4_lines` transform (corpus/stages/c4_lines.py), placed after the select
step, deletes the lines C4 removes from the pages that stay.

Rules, in the order TFDS applies them to each whitespace-trimmed line (Wikipedia-style citations such
as "[1]" or "[citation needed]" are ignored when looking at the line's end):
1. a line with a word longer than 1000 characters is removed;
2. a line must end with terminal punctuation (. ? ! or a closing quote) and not with an ellipsis;
3. a line needs at least 3 words (min_words_per_line);
4. a kept line containing "lorem ipsum" drops the page (c4_lorem_ipsum);
5. a line containing "javascript" is removed;
6. a kept line containing "{" drops the page (c4_curly_bracket);
7. a line containing a policy phrase ("terms of use", "privacy policy", "cookie policy", "uses cookies",
   "use of cookies", "use cookies") is removed;
8. a page whose kept lines hold fewer than 5 sentences is dropped (c4_too_few_sentences; the paper:
   "We discarded any page with fewer than 5 sentences"). When no line at all is kept, the reason names
   the line rule that removed most lines (c4_too_long_word, c4_no_terminal_punct, c4_too_few_words,
   c4_javascript, c4_policy), so every rule can be seen in the drop counts.
Sentences are counted with a punctuation regex, not NLTK's Punkt as in TFDS: terminal punctuation
followed by whitespace or the end of the line.

Where the paper is ambiguous, TFDS's code (which built C4) decides. Compared with datatrove 0.10.1's
C4QualityFilter (benchmarks/bench_heuristics_agreement.py; 0.987 keep/drop agreement on the benchmark's
2,304 documents, C4 unchanged since v1):
- End marks: TFDS's `. ? ! "`. The paper says "or end quotation mark"; datatrove also takes a single
  quote, so it keeps code lines such as `f'{x}'` and then drops their page for the curly bracket
  (7 python-doc pages in the benchmark that refinery keeps).
- Sentences: datatrove counts spaCy's sentences, refinery a regex, which also ends a sentence after an
  abbreviation ("e.g. ", "Dr. "): pages near the 5-sentence minimum can fall on either side. With the
  minimum switched off on both sides the two disagree on 7 pages (the quote above), with it on 29
  (datatrove drops 27 that refinery keeps, refinery 2): the sentence count is the other 22.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import setting
from corpus.stages.base import StageSpec, fixed
from corpus.stages.segments import Segments, first_reason, safe_ratio, split_lines

COLUMNS = ("c4_drop_reason_v1", "c4_kept_line_frac_v1", "c4_sentences_v1")
_SENTENCE_END = r"[.!?]+[\"'”’)\]]*(\s|$)"
_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class C4RulesConfig:
    min_words_per_line: int = setting(3, doc="lines with fewer words are removed", unit="words", ge=0)
    max_word_length: int = setting(1000, doc="lines with a longer word are removed", unit="characters",
                                   ge=1)
    min_sentences: int = setting(5, doc="pages with fewer sentences in kept lines are dropped",
                                 unit="sentences", ge=0)
    end_marks: tuple[str, ...] = setting((".", "?", "!", '"'), doc="a kept line ends with one of these")
    policy_phrases: tuple[str, ...] = setting(
        ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"),
        doc="lines containing one of these (lowercased) are removed")
    drop_lorem_ipsum: bool = setting(True, doc="drop pages with 'lorem ipsum' placeholder text")
    drop_curly_bracket: bool = setting(True, doc="drop pages with '{' in a kept line (code, not prose)")


def _any_of(phrases: tuple[str, ...]) -> str:
    """A regex (RE2) matching any of the phrases literally; none matches nothing."""
    return "(?:" + "|".join(re.escape(p) for p in phrases) + ")" if phrases else "[^\\s\\S]"


def _bare(lines: pa.Array) -> pa.Array:
    """Lines without Wikipedia-style citation marks ("[1]", "[edit]"): C4 judges the end of the text."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(lines, _CITATION, ""))


def _ends_with_mark(lines: pa.Array, marks: tuple[str, ...]) -> pa.Array:
    """Ends with a terminal mark, not with an ellipsis (C4 keeps "... ." but not "...")."""
    bare = _bare(lines)
    return pc.and_not(pc.match_substring_regex(bare, _any_of(marks) + "$"),
                      pc.match_substring_regex(bare, r"(\.\.\.|…)$"))


def _on(mask: np.ndarray, items: pa.Array, kernel, dtype=bool) -> np.ndarray:
    """`kernel(items)` computed only for the items where `mask` is true (zero elsewhere): each rule
    looks at the lines that earlier rules kept, so the costly string kernels see a fraction of them."""
    out = np.zeros(len(mask), dtype=dtype)
    idx = np.flatnonzero(mask)
    if len(idx):
        values = kernel(items.take(pa.array(idx)))
        if values.null_count:  # a null text's lines are null
            values = pc.fill_null(values, pa.scalar(0).cast(values.type))
        out[idx] = np.asarray(values, dtype=dtype)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class LineVerdicts:
    """Per line of a batch (flat, in document order): which C4 rule removed it, or kept."""

    seg: Segments
    nonempty: np.ndarray
    too_long: np.ndarray
    no_punct: np.ndarray
    few_words: np.ndarray
    lorem: np.ndarray
    javascript: np.ndarray
    curly: np.ndarray
    policy: np.ndarray
    kept: np.ndarray
    sentences: np.ndarray
    """float64: sentences counted in each kept line (0 in the others, which do not count)."""


def judge_lines(text, cfg: C4RulesConfig) -> LineVerdicts:
    seg = split_lines(text)
    line = pc.utf8_trim_whitespace(seg.items)
    length = np.asarray(pc.utf8_length(line))
    nonempty = length > 0
    # Longest word of a line: only lines longer than the limit can hold one, so few are split.
    too_long = length > cfg.max_word_length
    for i in np.flatnonzero(too_long):
        too_long[i] = max(map(len, line[int(i)].as_py().split()), default=0) > cfg.max_word_length
    # The rules in C4's order, each on the lines still alive after the ones before.
    alive = nonempty & ~too_long
    ends = _on(alive, line, lambda ln: _ends_with_mark(ln, cfg.end_marks))
    no_punct = alive & ~ends
    alive &= ends
    words = _on(alive, line, lambda ln: pc.list_value_length(pc.utf8_split_whitespace(ln)), np.int64)
    few_words = alive & (words < cfg.min_words_per_line)
    alive &= ~few_words
    lorem = (_on(alive, line, lambda ln: pc.match_substring(pc.utf8_lower(ln), "lorem ipsum"))
             if cfg.drop_lorem_ipsum else np.zeros(len(alive), dtype=bool))
    alive &= ~lorem
    javascript = _on(alive, line, lambda ln: pc.match_substring(pc.utf8_lower(ln), "javascript"))
    alive &= ~javascript
    curly = (_on(alive, line, lambda ln: pc.match_substring(ln, "{"))
             if cfg.drop_curly_bracket else np.zeros(len(alive), dtype=bool))
    alive &= ~curly
    policy = _on(alive, line, lambda ln: pc.match_substring_regex(pc.utf8_lower(ln), _any_of(cfg.policy_phrases)))
    kept = alive & ~policy
    sentences = _on(kept, line, lambda ln: pc.count_substring_regex(_bare(ln), _SENTENCE_END), np.float64)
    return LineVerdicts(seg, nonempty, too_long, no_punct, few_words, lorem, javascript, curly, policy, kept,
                        sentences)


def score_c4_rules(batch: pa.Table, cfg: C4RulesConfig) -> pa.Table:
    n = batch.num_rows
    v = judge_lines(batch.column("text"), cfg)
    seg, lorem, curly, kept, nonempty = v.seg, v.lorem, v.curly, v.kept, v.nonempty
    # C4 stops at the first lorem-ipsum or curly-bracket line: its kind names the page's reason.
    stop = np.flatnonzero(lorem | curly)
    first_doc, first_at = np.unique(seg.doc[stop], return_index=True)
    stop_lorem = np.zeros(n, dtype=bool)
    stop_lorem[first_doc] = lorem[stop[first_at]]
    stop_any = np.zeros(n, dtype=bool)
    stop_any[first_doc] = True

    n_sentences = seg.per_doc(np.where(kept, v.sentences, 0.0))
    n_kept = seg.per_doc(kept)
    removed = np.stack([seg.per_doc(m) for m in (v.too_long, v.no_punct, v.few_words, v.javascript, v.policy)])
    dominant = np.argmax(removed, axis=0)
    none_kept = (n_kept == 0) & ~stop_any & (removed.sum(axis=0) > 0)
    too_few = n_sentences < cfg.min_sentences
    reasons = [
        ("c4_lorem_ipsum", stop_any & stop_lorem),
        ("c4_curly_bracket", stop_any & ~stop_lorem),
        ("c4_too_long_word", none_kept & too_few & (dominant == 0)),
        ("c4_no_terminal_punct", none_kept & too_few & (dominant == 1)),
        ("c4_too_few_words", none_kept & too_few & (dominant == 2)),
        ("c4_javascript", none_kept & too_few & (dominant == 3)),
        ("c4_policy", none_kept & too_few & (dominant == 4)),
        ("c4_too_few_sentences", too_few),
    ]
    batch = batch.append_column(pa.field(COLUMNS[0], pa.string()), first_reason(reasons, n))
    kept_frac = safe_ratio(n_kept, seg.per_doc(nonempty))
    batch = batch.append_column(pa.field(COLUMNS[1], pa.float64()), pa.array(kept_frac, pa.float64()))
    return batch.append_column(pa.field(COLUMNS[2], pa.int64()), pa.array(n_sentences.astype(np.int64)))


SPEC = StageSpec(
    name="c4_rules",
    config=C4RulesConfig,
    kind="score",
    build=lambda cfg, _ctx: lambda batch: score_c4_rules(batch, cfg),
    reads=fixed("text"),
    writes=fixed(*COLUMNS),
    types=lambda _cfg: dict(zip(COLUMNS, (pa.string(), pa.float64(), pa.int64()))),
)
