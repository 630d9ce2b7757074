"""Known answers from the papers' definitions: small texts whose measures are computed by hand below.

Gopher: Rae et al. 2021, appendix A.1.1 and Table A1. C4: Raffel et al. 2020, section 2.2. The Gopher
stages expose a rule's decision, not its measure, so each hand-computed value v is checked through the
threshold: a rule "fails above L" passes at L = v and fails at L just below v (and the other way round
for a minimum). That pins the measure to v exactly, not just to the right side of the default.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from corpus.stages.c4_rules import C4RulesConfig, score_c4_rules
from corpus.stages.gopher_quality import GopherQualityConfig, score_gopher_quality
from corpus.stages.gopher_repetition import GopherRepetitionConfig, score_gopher_repetition

EPS = 1e-9

QUALITY_OFF = GopherQualityConfig(min_words=0, max_words=10**15, min_mean_word_len=0.0, max_mean_word_len=1e18,
                                  max_hash_word_ratio=1e18, max_ellipsis_word_ratio=1e18, max_bullet_lines=1.0,
                                  max_ellipsis_lines=1.0, min_alpha_words=0.0, min_stop_words=0)
REPETITION_OFF = GopherRepetitionConfig(dup_line_frac=1.0, dup_line_char_frac=1.0, dup_para_frac=1.0,
                                        dup_para_char_frac=1.0, top_ngram_char_frac={}, dup_ngram_char_frac={})


def quality_reason(text: str, **rule) -> str | None:
    cfg = dataclasses.replace(QUALITY_OFF, **rule)
    out = score_gopher_quality(pa.table({"text": pa.array([text], pa.string())}), cfg)
    return out.column("gopher_quality_reason_v2")[0].as_py()


def repetition_reason(text: str, **rule) -> str | None:
    cfg = dataclasses.replace(REPETITION_OFF, **rule)
    out = score_gopher_repetition(pa.table({"text": pa.array([text], pa.string())}), cfg)
    return out.column("gopher_repetition_reason_v2")[0].as_py()


def assert_max_rule(reason_fn, text: str, field: str, value: float, reason: str) -> None:
    """The measure of a 'more than L fails' rule is `value`: passes at L = value, fails just below."""
    assert reason_fn(text, **{field: value}) is None
    assert reason_fn(text, **{field: value - EPS}) == reason


def assert_min_rule(reason_fn, text: str, field: str, value: float, reason: str) -> None:
    """The measure of a 'less than L fails' rule is `value`: passes at L = value, fails just above."""
    assert reason_fn(text, **{field: value}) is None
    assert reason_fn(text, **{field: value + EPS}) == reason


# --- Gopher quality -----------------------------------------------------------------------------

# Whitespace words: The cat - sat on the mat . -> 8; "-" and "." hold no letter or digit, only
# punctuation, so 6 words count, of lengths 3+3+3+2+3+3 = 17: mean 17/6.
WORDS = "The cat - sat on the mat ."


def test_word_count_leaves_out_punctuation_only_words():
    assert quality_reason(WORDS, min_words=6) is None
    assert quality_reason(WORDS, min_words=7) == "gopher_too_few_words"
    assert quality_reason(WORDS, max_words=6) is None
    assert quality_reason(WORDS, max_words=5) == "gopher_too_many_words"


def test_mean_word_length():
    assert_min_rule(quality_reason, WORDS, "min_mean_word_len", 17 / 6, "gopher_short_mean_word")
    assert_max_rule(quality_reason, WORDS, "max_mean_word_len", 17 / 6, "gopher_long_mean_word")


def test_hash_and_ellipsis_ratios_per_word():
    # 10 words, 2 hashes: 0.2 (a '#' glued to a word counts).
    assert_max_rule(quality_reason, "#a #b c d e f g h i j", "max_hash_word_ratio", 2 / 10, "gopher_hash_ratio")
    # 5 words, 2 ellipses ("..." and "…"): 0.4; the 2 '#'-free words do not matter to the hash ratio.
    text = "wait... go… x y z"
    assert_max_rule(quality_reason, text, "max_ellipsis_word_ratio", 2 / 5, "gopher_ellipsis_ratio")
    assert quality_reason(text, max_hash_word_ratio=0.0) is None


def test_bullet_and_ellipsis_lines():
    # Non-empty lines: "• a", "- b", "c", "* d" -> 3 of 4 start with a bullet (the empty line is no line).
    assert_max_rule(quality_reason, "• a\n- b\nc\n\n* d", "max_bullet_lines", 3 / 4, "gopher_bullet_lines")
    # "a...", "b…" of 4 lines end with an ellipsis (trailing spaces ignored).
    assert_max_rule(quality_reason, "a...\nb…  \nc\nd", "max_ellipsis_lines", 2 / 4, "gopher_ellipsis_lines")


def test_alphabetic_words():
    # 5 whitespace words, "a" and "b2" contain a letter: 2/5; a punctuation-only word counts as a word here.
    assert_min_rule(quality_reason, "a b2 1 2 --", "min_alpha_words", 2 / 5, "gopher_non_alpha_words")


def test_stop_words_are_counted_once_each():
    # "The," and "the" are one stop word; "and" a second: 2 distinct.
    text = "The, cat and the dog."
    assert quality_reason(text, min_stop_words=2) is None
    assert quality_reason(text, min_stop_words=3) == "gopher_few_stop_words"


def test_measured_columns():
    out = score_gopher_quality(pa.table({"text": [WORDS]}), GopherQualityConfig())
    assert out.column("gopher_n_words_v2").to_pylist() == [6]
    assert out.column("gopher_mean_word_len_v2").to_pylist() == [pytest.approx(17 / 6)]


# --- Gopher repetition --------------------------------------------------------------------------

# "a b c\na b c\nd e f g": 5 + 1 + 5 + 1 + 7 = 19 characters; 3 lines, the second a duplicate of the
# first: 1/3 of lines, 5/19 of characters. Word bigrams: "a b" and "b c" twice each (3 characters as
# text), the first of the most frequent: 2 * 3 / 19. Trigram "a b c" twice: 2 * 5 / 19. No 4-gram
# repeats: the most frequent is then the first, "a b c a", once: 7 / 19.
LINES = "a b c\na b c\nd e f g"


def test_duplicate_lines():
    assert_max_rule(repetition_reason, LINES, "dup_line_frac", 1 / 3, "gopher_dup_line_frac")
    assert_max_rule(repetition_reason, LINES, "dup_line_char_frac", 5 / 19, "gopher_dup_line_char_frac")


def test_duplicate_lines_are_compared_trimmed_and_counted_as_written():
    # "  x y" twice, a blank line " " and "z": 5 + 1 + 5 + 1 + 1 + 1 + 1 = 15 characters; the copy takes
    # up 5 of them (its indentation included); a blank line is no line, so 1 of 3 lines is a duplicate.
    text = "  x y\n  x y\n \nz"
    assert_max_rule(repetition_reason, text, "dup_line_char_frac", 5 / 15, "gopher_dup_line_char_frac")
    assert_max_rule(repetition_reason, text, "dup_line_frac", 1 / 3, "gopher_dup_line_frac")
    # "x y" then "  x y": equal once trimmed; the copy is written with 5 of the 3 + 1 + 5 + 1 + 1 = 11.
    assert_max_rule(repetition_reason, "x y\n  x y\nz", "dup_line_char_frac", 5 / 11, "gopher_dup_line_char_frac")


def test_top_ngrams():
    for n, value in ((2, 6 / 19), (3, 10 / 19), (4, 7 / 19)):
        assert repetition_reason(LINES, top_ngram_char_frac={n: value}) is None
        assert repetition_reason(LINES, top_ngram_char_frac={n: value - EPS}) == f"gopher_top_{n}gram"
    # Ties go to the n-gram that occurs first: "x y" (3 characters) twice before "long word" twice.
    tie = "x y long word x y long word"  # 27 characters
    assert repetition_reason(tie, top_ngram_char_frac={2: 2 * 3 / 27}) is None
    assert repetition_reason(tie, top_ngram_char_frac={2: 2 * 3 / 27 - EPS}) == "gopher_top_2gram"


def test_duplicate_paragraphs():
    # Paragraphs "p q r", "p q r", "s t": 1/3 duplicates, 5 of 5+2+5+2+3 = 17 characters.
    text = "p q r\n\np q r\n\ns t"
    assert_max_rule(repetition_reason, text, "dup_para_frac", 1 / 3, "gopher_dup_para_frac")
    assert_max_rule(repetition_reason, text, "dup_para_char_frac", 5 / 17, "gopher_dup_para_char_frac")


def test_duplicate_ngrams_count_overlaps_once_and_not_the_first_occurrence():
    # "a b a b a b a b": 8 words, 15 characters. Its 5-grams start at 0..3: "a b a b a" (0) and
    # "b a b a b" (1) occur again at 2 and 3, so the duplicates cover words 2..7 (overlapping, counted
    # once): 6 characters, 6/15. The first occurrences (words 0..4) are not duplicates.
    text = "a b a b a b a b"
    assert repetition_reason(text, dup_ngram_char_frac={5: 6 / 15}) is None
    assert repetition_reason(text, dup_ngram_char_frac={5: 6 / 15 - EPS}) == "gopher_dup_5gram"
    # 6-grams: "a b a b a b" (0) again at 2: words 2..7, the same 6/15.
    assert repetition_reason(text, dup_ngram_char_frac={6: 6 / 15}) is None
    assert repetition_reason(text, dup_ngram_char_frac={6: 6 / 15 - EPS}) == "gopher_dup_6gram"
    # Its most frequent bigram "a b" occurs 4 times, 3 characters as text: 12/15.
    assert repetition_reason(text, top_ngram_char_frac={2: 12 / 15}) is None
    assert repetition_reason(text, top_ngram_char_frac={2: 12 / 15 - EPS}) == "gopher_top_2gram"


# --- C4 -----------------------------------------------------------------------------------------

# Non-empty lines, as C4 (TFDS clean_page) judges them:
#   "Home"                                   no terminal punctuation -> removed
#   "We sell fine tea.[1] It is good."       kept, citation removed: 2 sentences
#   "Enable javascript to view the menu."    "javascript" -> removed
#   "Read our privacy policy today."         policy phrase -> removed
#   "Short one."                             2 words < 3 -> removed
#   "The end is near..."                     ends with an ellipsis -> removed
#   "Tea grows on hills! Do you like it? We do."  kept: 3 sentences
# 2 of 7 lines kept, 5 sentences: the page stays (the paper: pages with fewer than 5 are discarded).
PAGE = ("Home\nWe sell fine tea.[1] It is good.\nEnable javascript to view the menu.\n"
        "Read our privacy policy today.\n\nShort one.\nThe end is near...\nTea grows on hills! Do you like it? We do.\n")


def test_c4_page_known_answers():
    out = score_c4_rules(pa.table({"text": [PAGE]}), C4RulesConfig())
    assert out.column("c4_drop_reason_v1").to_pylist() == [None]
    assert out.column("c4_kept_line_frac_v1").to_pylist() == [pytest.approx(2 / 7)]
    assert out.column("c4_sentences_v1").to_pylist() == [5]
    six = score_c4_rules(pa.table({"text": [PAGE]}), C4RulesConfig(min_sentences=6))
    assert six.column("c4_drop_reason_v1").to_pylist() == ["c4_too_few_sentences"]


def test_c4_page_rules_from_the_paper():
    kept = "We sell fine tea. It is good. Tea grows on hills. Do you like it? We do."
    assert score_c4_rules(pa.table({"text": [kept + "\nLorem ipsum dolor sit amet, it says."]}),
                          C4RulesConfig()).column("c4_drop_reason_v1").to_pylist() == ["c4_lorem_ipsum"]
    assert score_c4_rules(pa.table({"text": [kept + "\nThe map is {a: 1} in code."]}),
                          C4RulesConfig()).column("c4_drop_reason_v1").to_pylist() == ["c4_curly_bracket"]
