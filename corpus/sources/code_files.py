"""Per-file rules for source code: language by extension, leading license headers, line statistics.

The quality thresholds (a line over 1000 characters, a mean line over 100, an alphanumeric fraction
under 0.25) are the GitHub filters of the LLaMA-1 recipe as published in RedPajama-Data v1
(togethercomputer/RedPajama-Data, data_prep/github: "max line length > 1000, average line length >
100, proportion of alphanumeric characters < 0.25"); the LLaMA paper (Touvron et al. 2023, sec. 2)
names the same heuristics without numbers.
"""

from __future__ import annotations

import re

# extension (lower case, no dot) or exact file name -> language. Our own list of the common
# programming, markup and build languages of GitHub; data formats (json, csv) are left out.
LANGUAGES = {
    "c": "C", "h": "C", "cc": "C++", "cpp": "C++", "cxx": "C++", "hpp": "C++", "hh": "C++", "hxx": "C++",
    "cs": "C#", "java": "Java", "kt": "Kotlin", "kts": "Kotlin", "scala": "Scala", "go": "Go", "rs": "Rust",
    "py": "Python", "pyx": "Cython", "rb": "Ruby", "php": "PHP", "pl": "Perl", "pm": "Perl", "lua": "Lua",
    "js": "JavaScript", "mjs": "JavaScript", "cjs": "JavaScript", "jsx": "JavaScript", "ts": "TypeScript",
    "tsx": "TypeScript", "swift": "Swift", "m": "Objective-C", "mm": "Objective-C++", "r": "R", "jl": "Julia",
    "hs": "Haskell", "ml": "OCaml", "mli": "OCaml", "ex": "Elixir", "exs": "Elixir", "erl": "Erlang",
    "clj": "Clojure", "dart": "Dart", "f90": "Fortran", "f": "Fortran", "for": "Fortran", "sql": "SQL",
    "sh": "Shell", "bash": "Shell", "zsh": "Shell", "ps1": "PowerShell", "bat": "Batchfile", "cmd": "Batchfile",
    "asm": "Assembly", "s": "Assembly", "vb": "Visual Basic", "html": "HTML", "htm": "HTML", "css": "CSS",
    "scss": "SCSS", "md": "Markdown", "markdown": "Markdown", "rst": "reStructuredText", "tex": "TeX",
    "xml": "XML", "xsl": "XSLT", "yaml": "YAML", "yml": "YAML", "toml": "TOML", "cmake": "CMake",
    "makefile": "Makefile", "dockerfile": "Dockerfile", "cmakelists.txt": "CMake", "vue": "Vue",
}

# Line-comment markers and block-comment delimiters that can open a license header.
_LINE_COMMENTS = ("//!", "///", "//", "#", "--", ";;", ";", "%")
_BLOCKS = (("/*", "*/"), ("<!--", "-->"), ('"""', '"""'), ("'''", "'''"), ("{-", "-}"), ("(*", "*)"))
_LEGAL = re.compile(r"copyright|licen[cs]e|spdx-license-identifier|all rights reserved|\(c\) \d{4}",
                    re.IGNORECASE)


def language_of(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].lower()
    if name in LANGUAGES:
        return LANGUAGES[name]
    if "." not in name:
        return None
    return LANGUAGES.get(name.rsplit(".", 1)[1])


def strip_license_header(text: str) -> tuple[str, bool]:
    """Text without a leading comment block that talks about copyright or licensing; (text, stripped).

    A shebang or an encoding line stays. Only the first comment block is looked at: documentation
    comments further down are code.
    """
    lines = text.split("\n")
    keep_head = 0
    while keep_head < len(lines) and (lines[keep_head].startswith("#!")
                                      or re.match(r"#.*coding[:=]", lines[keep_head])):
        keep_head += 1
    i = keep_head
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        return text, False
    first = lines[i].lstrip()
    end = None
    for open_, close in _BLOCKS:
        if first.startswith(open_):
            rest = "\n".join(lines[i:])
            close_at = rest.find(close, len(open_) + (rest.find(open_)))
            if close_at < 0:
                return text, False
            end = i + rest[: close_at + len(close)].count("\n") + 1
            break
    if end is None:
        marker = next((m for m in _LINE_COMMENTS if first.startswith(m)), None)
        if marker is None:
            return text, False
        end = i
        while end < len(lines) and lines[end].lstrip().startswith(marker):
            end += 1
    block = "\n".join(lines[i:end])
    if not _LEGAL.search(block):
        return text, False
    while end < len(lines) and not lines[end].strip():
        end += 1
    return "\n".join(lines[:keep_head] + lines[end:]), True


def line_stats(text: str) -> tuple[int, float, float]:
    """(longest line, mean line length, alphanumeric fraction) in characters."""
    lines = text.split("\n")
    longest = max(len(line) for line in lines)
    mean = len(text) / len(lines)
    alnum = sum(map(str.isalnum, text)) / len(text) if text else 0.0
    return longest, mean, alnum
