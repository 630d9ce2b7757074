"""Wikitext -> plain text with mwparserfromhell, following the LLaMA-1 Wikipedia rules (sec. 2:
"remove hyperlinks, comments and other formatting boilerplate").

Link markup goes and its text stays; templates, tables, references, comments, math and galleries
go; links into File/Category/other namespaces and interlanguage links go; sections whose heading is
boilerplate (See also, References, External links, Further reading, ...) go with their subsections.

Speed: mwparserfromhell tokenizes in C but builds its node tree in Python, one object per template
parameter, reference and table cell, and on real articles most of that tree is what the renderer then
throws away (citations are most of an article's markup). So `strip_dropped_markup` first cuts, with
regular expressions, the spans the renderer drops whole: comments, <ref> elements, innermost templates
and arguments (repeatedly, so nested ones go too) and innermost tables. A span the parser would not read
as one such node is left to it (a template with a lone brace inside, an unclosed <ref>, a table not
closed on its own line), and the content of tags whose content is not parsed (<nowiki>, <pre>, <math>,
...) is never touched. Where the two differ, the pre-pass is the cleaner: a "{{" that the parser leaves
as text (an empty or invalid template name) is cut, and "[{{x}}[Link]]" becomes a link, as in
MediaWiki, where the template expands first. On the gensim enwiki sample the text is identical to a
plain parse and the reader is 2.4-2.6x faster (benchmarks/bench_wikipedia.py, benchmarks/README.md).
"""

from __future__ import annotations

import re
from typing import Iterator

# Tags whose whole content is not prose.
_DROP_TAGS = frozenset({"ref", "references", "table", "gallery", "math", "chem", "timeline", "score",
                        "imagemap", "templatedata", "syntaxhighlight", "source", "graph", "mapframe",
                        "categorytree", "indicator", "hiero", "noinclude"})
_LIST_MARKUP = frozenset({"*", "#", ":", ";"})
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]+)*$")
# Tags whose content mwparserfromhell keeps unparsed (its definitions.PARSER_BLACKLIST, checked by
# tests/corpus/sources/test_wikipedia.py): "{{" inside <nowiki> or <pre> is text, not a template.
_UNPARSED_TAGS = ("categorytree", "ce", "chem", "gallery", "graph", "hiero", "imagemap", "inputbox", "math",
                  "nowiki", "pre", "score", "section", "source", "syntaxhighlight", "templatedata", "timeline")
_UNPARSED_OPEN = re.compile(r"<(%s)\b[^>]*>" % "|".join(_UNPARSED_TAGS), re.I)
_UNPARSED_CLOSE = {tag: re.compile(r"</%s\s*>" % tag, re.I) for tag in _UNPARSED_TAGS}
_COMMENT = re.compile(r"<!--.*?-->", re.S)
# Self-closing <ref .../>, or <ref ...>...</ref> with no other <ref in between (an unclosed <ref> is
# left to the parser rather than swallowing the text up to the next </ref>).
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b(?:[^>]*[^>/])?>(?:(?!<ref\b).)*?</ref\s*>", re.S | re.I)
# A template argument ({{{1}}}) or template with no brace inside; innermost first, so "{{a|{{b}}}}"
# goes in two passes. Both start with the literal "{{", which the regex engine searches for quickly.
_TEMPLATE = re.compile(r"\{\{\{[^{}]*\}\}\}|\{\{[^{}]*\}\}")
# A table opened and closed at line starts with no table opening inside; the indent before it stays.
_TABLE = re.compile(r"^([ \t]*)\{\|(?:(?!^[ \t]*\{\|).)*?^[ \t]*\|\}", re.M | re.S)
_MAX_PASSES = 32
_BLANKS = re.compile(r"[ \t]+")
_CANONICAL_NAMESPACES = ("file", "image", "category", "media", "wikipedia", "wp", "template", "help",
                         "portal", "special", "user", "talk", "draft", "module", "mediawiki", "wikt", "wiktionary")


def require_mwparserfromhell():
    try:
        import mwparserfromhell
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the wikipedia reader needs mwparserfromhell: pip install mwparserfromhell "
                          "(or pip install 'refinery[sources]')") from exc
    return mwparserfromhell


def wikitext_to_text(wikitext: str, *, namespaces: frozenset[str], drop_sections: frozenset[str]) -> str:
    """Plain text of an article; `namespaces` are lower-case non-article namespace names of the wiki."""
    mwp = require_mwparserfromhell()
    code = mwp.parse(strip_dropped_markup(wikitext), skip_style_tags=True)
    blocked = namespaces | frozenset(_CANONICAL_NAMESPACES)
    out: list[str] = []
    dropping_level = 0  # >0: inside a boilerplate section of this heading level
    for node in code.nodes:
        if isinstance(node, mwp.nodes.Heading):
            title = _render(node.title.nodes, mwp, blocked).strip()
            if dropping_level and node.level > dropping_level:
                continue
            dropping_level = node.level if title.lower() in drop_sections else 0
            if not dropping_level:
                out.append(f"\n\n{title}\n\n")
            continue
        if not dropping_level:
            out.append(_render([node], mwp, blocked))
    return _tidy("".join(out))


def strip_dropped_markup(wikitext: str) -> str:
    """`wikitext` without the comments, references, templates and tables that `wikitext_to_text` drops."""
    out: list[str] = []
    start = 0
    for span_start, span_end in _unparsed_spans(wikitext):
        out += (_strip_parsed(wikitext[start:span_start]), wikitext[span_start:span_end])
        start = span_end
    out.append(_strip_parsed(wikitext[start:]))
    return "".join(out)


def _unparsed_spans(wikitext: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each <nowiki>, <pre>, ... element, from its opening tag to the first closing one.

    An opening tag with no closing tag after it is text to the parser, whose content it parses. Once a
    tag is found unclosed, later ones of that name are not searched again: a page of unclosed tags costs
    one pass, not one pass per tag."""
    unclosed: set[str] = set()
    pos = 0
    while (opening := _UNPARSED_OPEN.search(wikitext, pos)) is not None:
        tag = opening.group(1).lower()
        closing = None if tag in unclosed else _UNPARSED_CLOSE[tag].search(wikitext, opening.end())
        if closing is None:
            unclosed.add(tag)
            pos = opening.end()
            continue
        yield opening.start(), closing.end()
        pos = closing.end()


def _strip_parsed(text: str) -> str:
    # Comments only up to the last "-->": an unclosed "<!--" is text to the parser, and each one would
    # otherwise send the regex to the end of the page.
    end = text.rfind("-->") + 3
    text = _COMMENT.sub("", text[:end]) + text[end:] if end > 2 else text
    text = _REF.sub("", text)
    for pattern, replacement in ((_TEMPLATE, ""), (_TABLE, r"\1")):
        # Innermost first: cutting one nesting level exposes the next. One pass per level, so deeper
        # nesting than _MAX_PASSES (real articles nest templates a few levels) is left to the parser.
        for _ in range(_MAX_PASSES):
            text, n = pattern.subn(replacement, text)
            if not n:
                break
    return text


def _render(nodes, mwp, blocked: frozenset[str]) -> str:
    parts = []
    for node in nodes:
        n = mwp.nodes
        if isinstance(node, n.Text):
            parts.append(str(node.value))
        elif isinstance(node, n.Wikilink):
            title = str(node.title).strip()
            prefix, sep, _ = title.lstrip(":").partition(":")
            if sep and (prefix.strip().lower() in blocked or _INTERLANGUAGE.match(prefix.strip())):
                continue
            parts.append(_render(node.text.nodes, mwp, blocked) if node.text is not None
                         else _render(node.title.nodes, mwp, blocked).split("#")[0])
        elif isinstance(node, n.ExternalLink):
            if node.title is not None:
                parts.append(_render(node.title.nodes, mwp, blocked))
        elif isinstance(node, n.Tag):
            tag = str(node.tag).lower().strip()
            if tag in _DROP_TAGS or (node.wiki_markup and str(node.wiki_markup).startswith("{|")):
                continue
            if tag == "br":
                parts.append("\n")
            elif node.wiki_markup and str(node.wiki_markup) in _LIST_MARKUP | {"----"}:
                continue  # list bullets and rules: the item text follows as Text nodes
            elif node.contents is not None:
                parts.append(_render(node.contents.nodes, mwp, blocked))
        elif isinstance(node, n.HTMLEntity):
            parts.append(node.normalize())
        elif isinstance(node, n.Heading):
            parts.append("\n" + _render(node.title.nodes, mwp, blocked).strip() + "\n")
        # Template, Comment, Argument: dropped.
    return "".join(parts)


def _tidy(text: str) -> str:
    # One substitution over the whole text, not one per line ([ \t] never spans a newline).
    lines = [line.strip() for line in _BLANKS.sub(" ", text).split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"'{2,}", "", text)  # bold/italic quotes (style tags are not parsed: 2x faster)
    text = re.sub(r"\(\s*[,;]?\s*\)", "", text)  # "( )" left where a template stood
    text = re.sub(r" +([,.;:])", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
