"""CCNet's text normalization, applied per line before SentencePiece and KenLM.

The rules follow cc_net/text_normalizer.py `normalize(line)` with its defaults (accent, case, numbers,
punct=1), in its order: strip surrounding whitespace; lowercase; remove accents (NFD, then drop the
non-spacing marks, category Mn, without recomposing); every Unicode decimal digit becomes 0; a fixed
table of Unicode punctuation (CJK and full-width forms, typographic quotes and dashes, ellipsis)
becomes its ASCII counterpart; control characters U+0000-U+001F and U+007F-U+009F are removed.
Training and scoring must use the same normalization, so both call `normalize_line`.
"""

from __future__ import annotations

import re
import unicodedata

VERSION = "ccnet-v1"

# CCNet's replacement table (the same 34 entries, spelled as code points so the file stays ASCII).
_PUNCT = {
    0xFF0C: ",", 0x3002: ".", 0x3001: ",", 0x201E: '"', 0x201D: '"', 0x201C: '"', 0x00AB: '"',
    0x00BB: '"', 0xFF11: '"', 0x300D: '"', 0x300C: '"', 0x300A: '"', 0x300B: '"', 0x00B4: "'",
    0x2236: ":", 0xFF1A: ":", 0xFF1F: "?", 0xFF01: "!", 0xFF08: "(", 0xFF09: ")", 0xFF1B: ";",
    0x2013: "-", 0x2014: " - ", 0xFF0E: ". ", 0xFF5E: "~", 0x2019: "'", 0x2026: "...", 0x2501: "-",
    0x3008: "<", 0x3009: ">", 0x3010: "[", 0x3011: "]", 0xFF05: "%", 0x25BA: "-",
}
# One translate() pass does the punctuation table and the control-character removal: the two key sets
# are disjoint, and CCNet removes control characters after replacing punctuation, which no
# replacement produces, so the single pass gives the same result as two.
_TABLE = {**_PUNCT, **{c: None for c in (*range(0, 32), *range(127, 160))}}
# Python's \d is the Unicode decimal digits (category Nd), as in CCNet.
_DIGIT = re.compile(r"\d")


def strip_accents(text: str) -> str:
    if text.isascii():  # nothing to decompose: the common case, so skip the NFD pass
        return text
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def normalize_line(line: str) -> str:
    """One line of text, normalized as CCNet normalizes it before scoring."""
    line = line.strip()
    if not line:
        return line
    line = strip_accents(line.lower())
    line = _DIGIT.sub("0", line)
    return line.translate(_TABLE)


def normalized_lines(text: str) -> list[str]:
    """The non-empty normalized lines of a document (a blank line carries no text to score)."""
    out = []
    for line in text.split("\n"):
        norm = normalize_line(line)
        if norm:
            out.append(norm)
    return out
