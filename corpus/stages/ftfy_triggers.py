"""A fast and sound test of whether ftfy's `fix_text`, with the normalize stage's settings, could change
a text: when it says no, `fix_text(text) == text`, so the stage skips ftfy (98% of its time on clean
text, benchmarks/README.md) and the output stays identical.

What `fix_text` does with FTFY_SETTINGS (ftfy 6.x, its docs and `fix_and_explain`): it cuts the text
into segments, each a line with its "\\n" (a line longer than `max_decode_length`, 1,000,000 code points,
is cut there too), and on each segment applies, until nothing changes, fixers that are the identity on
a text without their trigger:
- HTML entities (`unescape_html="auto"`): only `&`, an optional `#`, letters or digits, `;`;
- mojibake (`fix_encoding`): nothing unless the segment has a non-ASCII character and
  `ftfy.badness.is_bad(segment)`, ftfy's own mojibake detector, is true;
- C1 controls U+0080-U+009F (`fix_c1_controls`); line breaks \\r, U+2028, U+2029, U+0085
  (`fix_line_breaks`); surrogates (`fix_surrogates`); ANSI escapes, which start with ESC U+001B
  (`remove_terminal_escapes`); and `remove_control_chars`: U+0000-0008, U+000B, U+000E-001F, U+007F,
  U+206A-206F, U+FEFF, U+FFF9-FFFC.
Ligatures, character width and quotes are off, and normalization is the stage's own step.
So a text may change only if it holds one of those characters or entities, or a segment with a
non-ASCII character is `is_bad`. `_TRIGGER` is that character set and entity shape (a superset of the
entities ftfy decodes, which limits names to 24 characters); tests/corpus/stages/test_ftfy_triggers.py
checks it against ftfy's own tables and every code point.

On every line with a non-ASCII character, `is_bad` alone took 25-28% of ftfy's own time on the Python
docs pages (bullets, pilcrows and curly quotes on most lines). It is evaluated instead on a window around
each run of non-ASCII characters (14% of ftfy's time there, 2026-11-30): `is_bad` is one regular-expression search, each alternative of which matches at
most `_WINDOW` characters and holds a non-ASCII character, so any match in a segment lies inside the
window around one of its non-ASCII runs. Windows stop at line ends, the segment's own bounds. A window
starting inside a line can only add matches (the pattern's `^`): the test stays sound. Both properties
are read off ftfy's pattern when this module loads; if its form is not the one checked here, every
line with a non-ASCII character gets the whole-line `is_bad`, as ftfy does.
"""

from __future__ import annotations

import functools
import re

import ftfy
from ftfy.badness import BADNESS_RE, is_bad

FTFY_SETTINGS = dict(normalization=None, fix_line_breaks=True, uncurl_quotes=False, fix_latin_ligatures=False,
                     fix_character_width=False)
"""The normalize stage's ftfy settings; `ftfy_may_change` is derived for exactly these. normalization=None:
the stage applies its own configured form after ftfy."""

_TRIGGER = re.compile("[\x00-\x08\x0b\x0d-\x1f\x7f-\x9f\u2028\u2029\u206a-\u206f\ufeff\ufff9-\ufffc"
                      "\ud800-\udfff]|&#?[0-9A-Za-z]+;")
_MAX_SEGMENT = ftfy.TextFixerConfig().max_decode_length


def _match_width_if_windowable(pattern: re.Pattern) -> int | None:
    """Longest match of `pattern` if it is an alternation whose every alternative needs a non-ASCII
    character, built only of plain elements (characters, classes, repeats, groups, `^`); None otherwise,
    then windows would not be known to be sound. Reads the pattern with the standard library's regex
    parser (re._parser, Python 3.11+), the one `re.compile` itself runs."""
    try:
        from re import _parser as sre

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
        if not all(any(_non_ascii_char(o, a, sre) for o, a in alt) for alt in branch[1]):
            return None
        return tree.getwidth()[1]
    except Exception:  # another Python or ftfy: fall back to whole lines
        return None


def _non_ascii_char(op, av, sre) -> bool:
    """Whether this element matches exactly one character, always a non-ASCII one."""
    if op is sre.LITERAL:
        return av >= 0x80
    if op is sre.IN:
        return all((o is sre.LITERAL and a >= 0x80) or (o is sre.RANGE and a[0] >= 0x80) for o, a in av)
    return False


_WINDOW = _match_width_if_windowable(BADNESS_RE)


def ftfy_may_change(text: str) -> bool:
    """False only if `ftfy.fix_text(text, **FTFY_SETTINGS) == text` (see the module doc)."""
    if _TRIGGER.search(text):
        return True
    if text.isascii():
        return False
    if len(text) > _MAX_SEGMENT and max(map(len, text.split("\n"))) >= _MAX_SEGMENT:
        return True  # ftfy cuts such a line into segments of its own: not modelled here
    if _WINDOW is None:
        segments = [line + "\n" for line in text.split("\n")]
        segments[-1] = segments[-1][:-1]
        return any(is_bad(segment) for segment in segments if not segment.isascii())
    reach = _WINDOW - 1  # a match holding the character at i lies within i - reach .. i + reach
    for cluster in _non_ascii_clusters(reach).finditer(text):
        start, end = cluster.span()
        newline = text.rfind("\n", max(start - reach, 0), start)  # this line's start, if within reach
        lo = newline + 1 if newline >= 0 else max(start - reach, 0)
        newline = text.find("\n", end, end + reach)  # the segment ends with its newline
        hi = newline + 1 if newline >= 0 else min(end + reach, len(text))
        if is_bad(text[lo:hi]):
            return True
    return False


@functools.cache
def _non_ascii_clusters(reach: int) -> re.Pattern:
    """Non-ASCII characters of one line less than 2 * reach apart, as one span: their windows overlap,
    so one `is_bad` call covers them (fewer calls, and no character scanned twice)."""
    return re.compile(f"[^\x00-\x7f](?:[^\n]{{0,{2 * reach - 1}}}[^\x00-\x7f])*")
