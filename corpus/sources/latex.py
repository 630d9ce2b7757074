"""LaTeX cleaning by the LLaMA-1 arXiv rules (sec. 2: "removed everything before the first section,
as well as the bibliography. We also removed the comments from the .tex files, and inline-expanded
definitions and macros written by users to increase consistency across papers").

Steps, in order: Sweave/knitr code chunks out (.Rnw), comments out (a `%` not escaped as `\\%`),
\\input/\\include expanded, argument-free \\newcommand/\\renewcommand/\\providecommand/\\def
definitions collected and removed, everything before the first \\section (or \\chapter) dropped,
the bibliography and everything after it dropped, the collected macros expanded in what is left.
Unbalanced braces in a definition or in the kept body raise `LatexError` (the reader's
malformed_latex reject).
"""

from __future__ import annotations

import re
from typing import Callable

_FULL_LINE_COMMENT = re.compile(r"^[ \t]*(?<!\\)%.*(?:\n|$)", re.M)
_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$", re.M)
_CHUNK = re.compile(r"^<<[^\n]*>>=[ \t]*\n.*?^@[ \t]*$", re.M | re.S)
_SWEAVE_ENVS = re.compile(r"\\begin\{(Schunk|Sinput|Soutput|Scode|CodeChunk|CodeInput|CodeOutput)\}.*?"
                          r"\\end\{\1\}", re.S)
_SWEAVE_CMDS = ("\\Sexpr", "\\SweaveOpts", "\\SweaveInput")
_INPUT = re.compile(r"\\(input|include)\s*(?:\{([^{}]+)\}|\s([^\s{}\\]+))")
_NEWCOMMAND = re.compile(r"\\(?:re|provide)?newcommand\*?\s*")
_DEF = re.compile(r"\\[egx]?def\s*(\\[A-Za-z@]+)")
# As in RedPajama's arXiv cleaner: any sectioning command from \\part to \\subsubsection opens the body.
_SECTION = re.compile(r"\\(part|chapter|section|subsection|subsubsection)\*?\s*[\[{]")
_BIBLIOGRAPHY = re.compile(r"\\begin\{thebibliography\}|\\bibliography\{|\\printbibliography|"
                           r"\\bibliographystyle\{|\\end\{document\}")
_MAX_INPUT_DEPTH = 8
_MAX_EXPANSION_ROUNDS = 5


class LatexError(ValueError):
    """Malformed LaTeX: the reason the reader gives."""


def strip_comments(tex: str) -> str:
    tex = _FULL_LINE_COMMENT.sub("", tex)
    return _COMMENT.sub(r"\1", tex)


def strip_sweave(tex: str) -> str:
    """Remove R code chunks (<<...>>= ... @), Sweave output environments and \\Sexpr{...}."""
    tex = _CHUNK.sub("", tex)
    tex = _SWEAVE_ENVS.sub("", tex)
    for cmd in _SWEAVE_CMDS:
        tex = remove_command(tex, cmd)
    return tex


def remove_command(tex: str, cmd: str) -> str:
    """Remove every `cmd{...}` (brace-matched)."""
    out, pos = [], 0
    pattern = re.compile(re.escape(cmd) + r"(?![A-Za-z@])\s*")
    for m in pattern.finditer(tex):
        if m.start() < pos:
            continue
        out.append(tex[pos:m.start()])
        pos = m.end()
        if pos < len(tex) and tex[pos] == "{":
            pos = group_end(tex, pos) + 1
    out.append(tex[pos:])
    return "".join(out)


def group_end(tex: str, i: int) -> int:
    """Index of the `}` closing the `{` at tex[i]; LatexError when it never closes."""
    depth = 0
    j = i
    n = len(tex)
    while j < n:
        c = tex[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise LatexError(f"unbalanced braces: the group opened at offset {i} never closes")


def expand_inputs(tex: str, load: Callable[[str], str | None], depth: int = 0,
                  missing: list[str] | None = None) -> str:
    """Replace \\input{f} / \\include{f} by the (comment-stripped) content of f or f.tex."""
    if depth > _MAX_INPUT_DEPTH:
        raise LatexError(f"\\input nested deeper than {_MAX_INPUT_DEPTH} (a file includes itself?)")

    def sub(m: re.Match) -> str:
        name = (m.group(2) or m.group(3)).strip()
        content = load(name)
        if content is None and not name.endswith(".tex"):
            content = load(name + ".tex")
        if content is None:
            if missing is not None:
                missing.append(name)
            return ""
        return expand_inputs(strip_comments(content), load, depth + 1, missing)

    return _INPUT.sub(sub, tex)


def collect_macros(tex: str) -> tuple[str, dict[str, str]]:
    """(text without macro definitions, {\\name: body} of the argument-free ones)."""
    macros: dict[str, str] = {}
    out, pos = [], 0
    while True:
        m_new = _NEWCOMMAND.search(tex, pos)
        m_def = _DEF.search(tex, pos)
        m = min((x for x in (m_new, m_def) if x), key=lambda x: x.start(), default=None)
        if m is None:
            break
        out.append(tex[pos:m.start()])
        j = m.end()
        if m is m_new:
            if j < len(tex) and tex[j] == "{":
                close = group_end(tex, j)
                name = tex[j + 1:close].strip()
                j = close + 1
            else:
                nm = re.match(r"\\[A-Za-z@]+|\\.", tex[j:])
                if not nm:
                    raise LatexError(f"\\newcommand without a command name at offset {m.start()}")
                name = nm.group(0)
                j += nm.end()
            args = re.match(r"\s*\[[^\]]*\](\s*\[[^\]]*\])?", tex[j:])
            if args:
                j += args.end()
            j = _skip_space(tex, j)
            if j >= len(tex) or tex[j] != "{":
                raise LatexError(f"definition of {name} has no {{body}} (offset {m.start()})")
            close = group_end(tex, j)
            if not args and re.fullmatch(r"\\[A-Za-z@]+", name):
                macros[name] = tex[j + 1:close]
        else:
            name = m.group(1)
            brace = tex.find("{", j)
            if brace < 0:
                raise LatexError(f"\\def{name} has no {{body}} (offset {m.start()})")
            params = tex[j:brace]
            close = group_end(tex, brace)
            if not params.strip():
                macros[name] = tex[brace + 1:close]
        pos = close + 1
    out.append(tex[pos:])
    return "".join(out), macros


def expand_macros(tex: str, macros: dict[str, str]) -> str:
    if not macros:
        return tex
    pattern = re.compile(r"(" + "|".join(re.escape(n) for n in sorted(macros, key=len, reverse=True))
                         + r")(?![A-Za-z@])")
    limit = 4 * len(tex) + 4096
    for _ in range(_MAX_EXPANSION_ROUNDS):  # bodies may use other macros
        new = pattern.sub(lambda m: macros[m.group(1)], tex)
        if new == tex:
            break
        if len(new) > limit:
            raise LatexError("macro expansion keeps growing (a recursive \\def?)")
        tex = new
    return tex


def check_balanced(tex: str) -> None:
    depth = 0
    for m in re.finditer(r"\\.|[{}]", tex, re.S):
        tok = m.group(0)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth < 0:
                raise LatexError(f"unbalanced braces: '}}' without '{{' at offset {m.start()}")
    if depth:
        raise LatexError(f"unbalanced braces: {depth} '{{' never closed")


def clean_latex(tex: str, load: Callable[[str], str | None], *, sweave: bool) -> tuple[str, dict]:
    """The cleaned body of a paper and facts about the cleaning; LatexError if malformed.

    Returns ('', facts) when the paper has no section (the reader rejects it as no_section).
    """
    missing: list[str] = []
    tex = tex.replace("\r\n", "\n")
    if sweave:
        tex = strip_sweave(tex)
    tex = strip_comments(tex)
    tex = expand_inputs(tex, load, missing=missing)
    if sweave:
        tex = strip_sweave(tex)  # included .Rnw parts
    tex, macros = collect_macros(tex)
    facts = {"macros": len(macros), "missing_inputs": missing}
    first = _SECTION.search(tex)
    if not first:
        return "", facts
    body = tex[first.start():]
    bib = _BIBLIOGRAPHY.search(body)
    if bib:
        body = body[:bib.start()]
    body = expand_macros(body, macros)
    check_balanced(body)
    body = re.sub(r"[ \t]+\n", "\n", body)
    return re.sub(r"\n{3,}", "\n\n", body).strip(), facts


def _skip_space(tex: str, j: int) -> int:
    while j < len(tex) and tex[j] in " \t\n":
        j += 1
    return j
