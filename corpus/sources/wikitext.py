"""Wikitext -> plain text with mwparserfromhell, following the LLaMA-1 Wikipedia rules (sec. 2:
"remove hyperlinks, comments and other formatting boilerplate").

Link markup goes and its text stays; templates, tables, references, comments, math and galleries
go; links into File/Category/other namespaces and interlanguage links go; sections whose heading is
boilerplate (See also, References, External links, Further reading, ...) go with their subsections.
"""

from __future__ import annotations

import re

# Tags whose whole content is not prose.
_DROP_TAGS = frozenset({"ref", "references", "table", "gallery", "math", "chem", "timeline", "score",
                        "imagemap", "templatedata", "syntaxhighlight", "source", "graph", "mapframe",
                        "categorytree", "indicator", "hiero", "noinclude"})
_LIST_MARKUP = frozenset({"*", "#", ":", ";"})
_INTERLANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]+)*$")
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
    code = mwp.parse(wikitext, skip_style_tags=True)
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
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"'{2,}", "", text)  # bold/italic quotes (style tags are not parsed: 2x faster)
    text = re.sub(r"\(\s*[,;]?\s*\)", "", text)  # "( )" left where a template stood
    text = re.sub(r" +([,.;:])", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
