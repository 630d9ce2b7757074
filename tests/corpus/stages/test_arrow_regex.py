"""A Python pattern rewritten for Arrow's RE2 kernels finds a match in exactly the texts `re` does."""

import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ftfy.badness import BADNESS_RE
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.stages.arrow_regex import to_arrow_regex

PATTERNS = [r"é|ü", r"^[ÃÂ] ", r"[^a-z]x", r"a.b", r"\s+é", r"[\w]é", r"[^\s]{2,3}ü", r"(?:ab|c)*?d",
            r"&#?[0-9A-Za-z]+;",
            "[\x00-\x08\x0b\x0d-\x1f\u2028\ud800-\udfff]"]
ALPHABET = list("abcdxzé üÃÂ&#;09AZ_\n\t\x00\x0b\u2028\u3000\xa0\x1c٣日Ωß")


@given(st.lists(st.text(alphabet=ALPHABET, max_size=12), min_size=1, max_size=40))
@settings(max_examples=150, deadline=None)
def test_same_matches_as_python(texts):
    column = pa.array(texts, pa.string())
    for pattern in PATTERNS:
        compiled = re.compile(pattern)
        found = pc.match_substring_regex(column, to_arrow_regex(compiled)).to_pylist()
        assert found == [bool(compiled.search(t)) for t in texts], pattern


def test_python_unicode_classes_spelled_out():
    # \s and \w are Python's Unicode ones (RE2's are ASCII): U+3000, U+00A0, U+001C, Arabic-Indic digits
    texts = ["\u3000", "\xa0", "\x1c", "\u0663", "ß", "_", "-", " "]
    for pattern, expected in ((r"\s", [True, True, True, False, False, False, False, True]),
                              (r"\w", [False, False, False, True, True, True, False, False])):
        found = pc.match_substring_regex(pa.array(texts), to_arrow_regex(re.compile(pattern))).to_pylist()
        assert found == expected == [bool(re.search(pattern, t)) for t in texts]


def test_ftfy_detector_agrees_line_by_line():
    # ftfy's mojibake detector (a VERBOSE pattern with \s, \w, classes and repeats) is rewritten, not refused
    rewritten = to_arrow_regex(BADNESS_RE)
    assert rewritten is not None
    lines = ["voilÃ  le", "â€™s", "naïve café", "Ã©tÃ©", "•\xa0item", "日本語", "Â ", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "x"]
    found = pc.match_substring_regex(pa.array(lines), rewritten).to_pylist()
    assert found == [bool(BADNESS_RE.search(t)) for t in lines] and any(found) and not all(found)


@pytest.mark.parametrize("pattern", [r"(?<!x)é", r"é$", r"\bé", r"(a)\1", r"é", r"\d"])
def test_refuses_what_it_cannot_rewrite_exactly(pattern):
    flags = re.IGNORECASE if pattern == "é" else re.ASCII if pattern == r"\d" else 0
    assert to_arrow_regex(re.compile(pattern, flags)) is None
