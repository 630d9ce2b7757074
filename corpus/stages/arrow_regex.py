"""A Python regular expression rewritten for Arrow's regex kernels (RE2), so a stage can search a whole
batch column in C++ instead of calling `re` once per document.

Only patterns whose meaning is the same in both engines are rewritten: literals, character classes of
literals and ranges, `.`, repeats, groups, alternation and `^`. Python's Unicode `\\s` and `\\w` are spelled
out as explicit code point ranges taken from Python itself (`str.isspace`, `str.isalnum` or `_`, what `re`
matches), because RE2's `\\s` and `\\w` are ASCII-only and its Unicode tables may be of another version.
Anything else (lookarounds, backreferences, `$`, `\\b`, flags other than UNICODE and VERBOSE) gives None,
and the caller keeps its per-document path. Arrow strings are valid UTF-8, so surrogate code points,
which no such string holds, are left out of classes.
"""

from __future__ import annotations

import functools
import re
from re import _parser as sre  # the parser `re.compile` itself runs (Python 3.11+)

_SURROGATES = (0xD800, 0xDFFF)


def to_arrow_regex(pattern: re.Pattern) -> str | None:
    """The RE2 spelling of `pattern` with the same matches in any valid UTF-8 text; None if not known."""
    if pattern.flags & (re.IGNORECASE | re.DOTALL | re.MULTILINE | re.ASCII | re.LOCALE):
        return None
    try:
        return _items(sre.parse(pattern.pattern, pattern.flags).data)
    except _Unsupported:
        return None


class _Unsupported(Exception):
    pass


def _char(c: int) -> str:
    return f"\\x{{{c:x}}}"


def _span(lo: int, hi: int) -> str:
    """lo..hi as class items, surrogates cut out ("" if nothing is left)."""
    pieces = [(lo, min(hi, _SURROGATES[0] - 1)), (max(lo, _SURROGATES[1] + 1), hi)]
    return "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in pieces if a <= b)


@functools.cache
def _python_class(test_name: str) -> str:
    """Every code point that Python's Unicode `\\s` or `\\w` matches, as RE2 class items."""
    test = str.isspace if test_name == "space" else (lambda ch: ch.isalnum() or ch == "_")
    items, start = [], None
    for c in range(0x110001):
        inside = c < 0x110000 and test(chr(c))
        if inside and start is None:
            start = c
        elif not inside and start is not None:
            items.append(_span(start, c - 1))
            start = None
    return "".join(items)


_CATEGORIES = {sre.CATEGORY_SPACE: "space", sre.CATEGORY_WORD: "word"}


def _class(items) -> str:
    negate, parts = "", []
    for op, av in items:
        if op is sre.NEGATE:
            negate = "^"
        elif op is sre.LITERAL:
            parts.append(_span(av, av))
        elif op is sre.RANGE:
            parts.append(_span(*av))
        elif op is sre.CATEGORY and av in _CATEGORIES:
            parts.append(_python_class(_CATEGORIES[av]))
        else:
            raise _Unsupported(op)
    body = "".join(parts)
    if not body:
        raise _Unsupported("a class of surrogates only")
    return f"[{negate}{body}]"


def _items(seq) -> str:
    out = []
    for op, av in seq:
        if op is sre.LITERAL:
            if _SURROGATES[0] <= av <= _SURROGATES[1]:
                raise _Unsupported("surrogate literal")
            out.append(_char(av))
        elif op is sre.NOT_LITERAL:
            out.append(f"[^{_char(av)}]")
        elif op is sre.ANY:  # without DOTALL: any character but "\n", in both engines
            out.append(".")
        elif op is sre.IN:
            out.append(_class(av))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):  # laziness changes which match, not whether one exists
            lo, hi, sub = av
            if max(lo, 0 if hi is sre.MAXREPEAT else hi) > 1000:  # RE2's repeat limit
                raise _Unsupported("repeat count")
            out.append(f"(?:{_items(sub)}){{{lo},{'' if hi is sre.MAXREPEAT else hi}}}")
        elif op is sre.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise _Unsupported("inline flags")
            out.append(f"(?:{_items(sub)})")
        elif op is sre.BRANCH:
            out.append("(?:" + "|".join(_items(alt) for alt in av[1]) + ")")
        elif op is sre.AT and av is sre.AT_BEGINNING:
            out.append("^")
        else:
            raise _Unsupported(op)
    return "".join(out)
