"""A fast and sound test of whether ftfy's `fix_text`, with the normalize stage's settings, could change
a text: when it says no, `fix_text(text) == text`, so the stage skips ftfy (98% of its time on clean
text, benchmarks/README.md) and the output stays identical.

What `fix_text` does with FTFY_SETTINGS (ftfy 6.x, its docs and `fix_and_explain`): it cuts the text
into segments, each a line with its "\\n" (a line longer than `max_decode_length`, 1,000,000 code points,
is cut there too), and on each segment applies, until nothing changes, fixers that are the identity on
a text without their trigger:
- HTML entities (`unescape_html="auto"`): only `&`, an optional `#`, letters or digits, `;`, and only in
  the segments before the first segment that holds a "<" (ftfy then takes the text for HTML);
- mojibake (`fix_encoding`): nothing unless the segment has a non-ASCII character and
  `ftfy.badness.is_bad(segment)`, ftfy's own mojibake detector, is true;
- C1 controls U+0080-U+009F (`fix_c1_controls`); line breaks \\r, U+2028, U+2029, U+0085
  (`fix_line_breaks`); surrogates (`fix_surrogates`); ANSI escapes, which start with ESC U+001B
  (`remove_terminal_escapes`); and `remove_control_chars`: U+0000-0008, U+000B, U+000E-001F, U+007F,
  U+206A-206F, U+FEFF, U+FFF9-FFFC.
Ligatures, character width and quotes are off, and normalization is the stage's own step.
So a text may change only if it holds one of those characters or entities, or a segment with a
non-ASCII character is `is_bad`. `_TRIGGER_CHARS` and `_ENTITY` are those characters and that entity
shape (a superset of the entities ftfy decodes, which limits names to 24 characters);
tests/corpus/stages/test_ftfy_triggers.py checks them against ftfy's own tables and every code point.

On every line with a non-ASCII character, `is_bad` alone took 25-28% of ftfy's own time on the Python
docs pages (bullets, pilcrows and curly quotes on most lines), and all of a page in Chinese or Japanese.
`is_bad` is one regular-expression search; each alternative of its pattern matches at most `_WINDOW`
(7) characters and holds one from a set of non-ASCII "anchor" characters (Latin-1 and cp1252 symbols
and letters, Latin Extended, Greek, Cyrillic; not CJK, Hebrew, Arabic letters ...). So any match in a
segment lies within 6 characters of one of its anchors, and `is_bad` is run only on those windows (14%
of ftfy's time on the Python docs pages, 2026-11-30). Windows stop at line ends, the segments' own
bounds; one starting inside a line can only add matches (the pattern's `^`), so the test stays sound.
Window length and anchors are read off ftfy's pattern when this module loads; if its form is not the
one checked there, every line with a non-ASCII character gets the whole-line `is_bad`, as in ftfy.

`ftfy_may_change_batch` is the same test's first, coarser pass over a whole Arrow column (RE2 kernels, the
patterns rewritten by corpus/stages/arrow_regex.py): it may say yes where `ftfy_may_change` says no, never
the reverse, so the stage calls `ftfy_may_change` only on the texts it flags (on the first shard of the
bulk benchmark corpus: 24 of 33,745 documents, where 6,784 hold a non-ASCII character).
"""

from __future__ import annotations

import functools
import re

import ftfy
import pyarrow as pa
import pyarrow.compute as pc
from ftfy.badness import BADNESS_RE, is_bad

from corpus.stages.arrow_regex import to_arrow_regex

FTFY_SETTINGS = dict(normalization=None, fix_line_breaks=True, uncurl_quotes=False, fix_latin_ligatures=False,
                     fix_character_width=False)
"""The normalize stage's ftfy settings; `ftfy_may_change` is derived for exactly these. normalization=None:
the stage applies its own configured form after ftfy."""

_TRIGGER_CHARS = re.compile("[\x00-\x08\x0b\x0d-\x1f\x7f-\x9f\u2028\u2029\u206a-\u206f\ufeff\ufff9-\ufffc"
                            "\ud800-\udfff]")
_ENTITY = re.compile("&#?[0-9A-Za-z]+;")
_MAX_SEGMENT = ftfy.TextFixerConfig().max_decode_length

_OPTIONS_DERIVED_FROM = frozenset({
    "unescape_html", "remove_terminal_escapes", "fix_encoding", "restore_byte_a0", "replace_lossy_sequences",
    "decode_inconsistent_utf8", "fix_c1_controls", "fix_latin_ligatures", "fix_character_width", "uncurl_quotes",
    "fix_line_breaks", "fix_surrogates", "remove_control_chars", "normalization", "max_decode_length", "explain"})
"""ftfy's options (ftfy 6.3.1) when the triggers above were derived. Another set may mean another fixer:
then every text goes to ftfy, as before the check, until the triggers are derived again."""
_DERIVED = frozenset(ftfy.TextFixerConfig._fields) == _OPTIONS_DERIVED_FROM


def _window_analysis(pattern: re.Pattern) -> tuple[int, str] | None:
    """(longest match of `pattern`, a character class of its anchors) if it is an alternation whose
    every alternative holds an element matching one character from a set of non-ASCII ones (the anchors:
    the union of those sets), built only of plain elements (characters, classes, repeats, groups, `^`),
    without IGNORECASE; None otherwise, then windows would not be known to be sound. Reads the pattern
    with the standard library's regex parser (re._parser, Python 3.11+), the one `re.compile` runs."""
    try:
        from re import _parser as sre

        if pattern.flags & re.IGNORECASE:
            return None
        tree = sre.parse(pattern.pattern, pattern.flags)
        plain = {sre.LITERAL, sre.NOT_LITERAL, sre.IN, sre.ANY, sre.MAX_REPEAT, sre.MIN_REPEAT, sre.SUBPATTERN,
                 sre.BRANCH, sre.AT}

        def only_plain(items) -> bool:
            for op, av in items:
                if op not in plain or (op is sre.AT and av is not sre.AT_BEGINNING):
                    return False
                if op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and not only_plain(av[2]):
                    return False
                if op is sre.SUBPATTERN and not only_plain(av[3]):
                    return False
                if op is sre.BRANCH and not all(only_plain(alt) for alt in av[1]):
                    return False
            return True

        (op, branch), = tree.data
        if op is not sre.BRANCH or not only_plain(tree.data):
            return None
        anchors: list[tuple[int, int]] = []
        for alternative in branch[1]:
            found = [r for o, a in alternative.data if (r := _non_ascii_ranges(o, a, sre)) is not None]
            if not found:
                return None
            anchors += [rng for ranges in found for rng in ranges]
        cls = "".join(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
                      for lo, hi in sorted(set(anchors)))
        return tree.getwidth()[1], cls
    except Exception:  # another Python or ftfy: fall back to whole lines
        return None


def _non_ascii_ranges(op, av, sre) -> list[tuple[int, int]] | None:
    """The code point ranges this element matches if it matches exactly one character, always a
    non-ASCII one; None otherwise."""
    if op is sre.LITERAL:
        return [(av, av)] if av >= 0x80 else None
    if op is sre.IN:
        ranges = [(a, a) if o is sre.LITERAL else a if o is sre.RANGE else (-1, -1) for o, a in av]
        return ranges if all(lo >= 0x80 for lo, _ in ranges) else None
    return None


_WINDOWS = _window_analysis(BADNESS_RE)
_WINDOW, _ANCHORS = _WINDOWS if _WINDOWS else (None, "")
_REACH = (_WINDOW or 1) - 1
"""A match holding the character at i lies within i - _REACH .. i + _REACH."""
_ANCHOR_CLUSTERS = re.compile(f"[{_ANCHORS}](?:[^\\n]{{0,{2 * _REACH - 1}}}[{_ANCHORS}])*") if _WINDOW else None
"""Anchor characters of one line less than 2 * _REACH apart, as one span: their windows overlap, so one
`is_bad` call covers them (fewer calls, and no character scanned twice)."""


def ftfy_may_change(text: str) -> bool:
    """False only if `ftfy.fix_text(text, **FTFY_SETTINGS) == text` (see the module doc)."""
    if not _DERIVED:
        return True
    if len(text) > _MAX_SEGMENT and max(map(len, text.split("\n"))) >= _MAX_SEGMENT:
        return True  # ftfy cuts such a line into segments of its own: not modelled here
    if _TRIGGER_CHARS.search(text):
        return True
    # ftfy decodes entities only in the segments before the first one holding a "<"
    tag = text.find("<")
    if _ENTITY.search(text if tag < 0 else text[:text.rfind("\n", 0, tag) + 1]):
        return True
    if text.isascii():
        return False
    if _WINDOW is None:
        segments = [line + "\n" for line in text.split("\n")]
        segments[-1] = segments[-1][:-1]
        return any(is_bad(segment) for segment in segments if not segment.isascii())
    reach = _REACH
    for cluster in _ANCHOR_CLUSTERS.finditer(text):
        start, end = cluster.span()
        newline = text.rfind("\n", max(start - reach, 0), start)  # this line's start, if within reach
        lo = newline + 1 if newline >= 0 else max(start - reach, 0)
        newline = text.find("\n", end, end + reach)  # the segment ends with its newline
        hi = newline + 1 if newline >= 0 else min(end + reach, len(text))
        if is_bad(text[lo:hi]):
            return True
    return False


@functools.cache
def _arrow_patterns() -> tuple[str, str, str] | None:
    """(triggers, entities, badness) for Arrow's kernels; None if one cannot be rewritten exactly."""
    patterns = (to_arrow_regex(_TRIGGER_CHARS), to_arrow_regex(_ENTITY), to_arrow_regex(BADNESS_RE))
    return None if None in patterns else patterns


def ftfy_may_change_batch(texts: pa.Array) -> pa.Array:
    """Boolean per text, False only where `ftfy_may_change` is False (nulls: True).

    Coarser than `ftfy_may_change` in three sound ways: an entity anywhere counts (not only before the
    first "<"); `is_bad` is searched over the whole text with `^` matching at every line start (RE2's
    multi-line mode), which finds every match that a search of each line finds, and maybe more; and a text
    longer than ftfy's segment limit always counts.
    """
    patterns = _arrow_patterns() if _DERIVED else None
    if patterns is None:
        return pa.array([True] * len(texts), pa.bool_())
    triggers, entity, badness = patterns
    found = pc.or_(pc.or_(pc.match_substring_regex(texts, triggers), pc.match_substring_regex(texts, entity)),
                   pc.greater(pc.utf8_length(texts), _MAX_SEGMENT))
    # Only a text with a non-ASCII character can be `is_bad`: search those alone (and compile the big
    # pattern only when there is one).
    non_ascii = pc.fill_null(pc.invert(pc.string_is_ascii(texts)), False)
    if pc.any(non_ascii).as_py():
        bad = pc.match_substring_regex(texts.filter(non_ascii), "(?m)" + badness)
        found = pc.replace_with_mask(found, non_ascii, pc.or_(found.filter(non_ascii), bad))
    return pc.fill_null(found, True)
