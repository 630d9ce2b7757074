"""The Wikipedia reader on real dumps (gensim 4.4.0 test data: an enwiki excerpt with 106 articles and
100 redirects, and a UTF-16 bgwiki excerpt) and on hand-made broken ones."""

import bz2
import json
import os

import pytest

from corpus.sources.base import Shard
from corpus.samples import SampleUnavailable, sample_path
from corpus.sources.wikipedia import WikipediaConfig, read_wikipedia
from corpus.sources.wikitext import wikitext_to_text
from run_helpers import sample_unavailable

ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
BGWIKI = "bgwiki-latest-pages-articles-shortened.xml.bz2"


def read_all(path, **cfg):
    shard = Shard(key="00000", source="wikipedia", path=str(path), relpath=os.path.basename(str(path)),
                  domain="wikipedia", size=os.path.getsize(path))
    docs, rejects = [], []
    for batch in read_wikipedia(shard, WikipediaConfig(**cfg), batch_rows=40):
        docs += batch.documents.to_pylist()
        rejects += batch.rejected
    return docs, rejects


def dump(name):
    try:
        return os.path.join(sample_path("gensim-wiki"), "dumps", name)
    except SampleUnavailable as exc:
        sample_unavailable(exc)


@pytest.fixture(scope="module")
def enwiki():
    return read_all(dump(ENWIKI))  # ~2 s of CPU: 106 articles


def test_enwiki_articles_and_redirects(enwiki):
    docs, rejects = enwiki
    assert len(docs) == 106
    assert [r for _, r in rejects] == ["redirect"] * 100
    metas = [json.loads(d["meta"]) for d in docs]
    assert len({m["page_id"] for m in metas}) == 106 and all(m["rev_id"] for m in metas)
    anarchism = next(d for d, m in zip(docs, metas) if m["title"] == "Anarchism")
    assert anarchism["url"] == "https://en.wikipedia.org/wiki/Anarchism"
    assert anarchism["text"].startswith("Anarchism\n\nAnarchism is a political philosophy")


def test_enwiki_markup_is_gone(enwiki):
    docs, _ = enwiki
    text = "\n".join(d["text"] for d in docs)
    for markup in ("[[", "]]", "{{", "}}", "<ref", "</ref>", "{|", "|}", "<!--", "'''", "Category:", "File:"):
        assert markup not in text, markup
    lines = set(text.split("\n"))
    for heading in ("References", "External links", "See also", "Further reading"):
        assert heading not in lines, heading


def test_bgwiki_utf16_dump():
    with bz2.open(dump(BGWIKI)) as f:
        assert f.read(2) == b"\xff\xfe"  # the sample really is UTF-16 (little endian, with BOM)
    docs, rejects = read_all(dump(BGWIKI))
    assert len(docs) == 1 and sorted(r for _, r in rejects) == ["non_article_namespace"] * 2
    assert docs[0]["text"].startswith("Григориански календар\n\nГригорианският календар")
    assert docs[0]["url"] == "https://bg.wikipedia.org/wiki/Григориански_календар"


def test_wikitext_rules():
    wikitext = ("'''Foo''' is a [[bar|thing]] in [[Baz]].<ref>cite</ref>{{Infobox|x=1}} See "
                "[http://example.com the site].<!-- hidden -->\n[[File:x.png|thumb|pic]]\n"
                "{| class=wikitable\n| a || b\n|}\n== History ==\nOld.\n== See also ==\n* [[Other]]\n"
                "=== Sub ===\nstill boilerplate\n== Later ==\nKept.\n[[Category:Things]]\n[[fr:Foo]]")
    text = wikitext_to_text(wikitext, namespaces=frozenset({"file", "category"}),
                            drop_sections=frozenset({"see also"}))
    assert text == "Foo is a thing in Baz. See the site.\n\nHistory\n\nOld.\n\nLater\n\nKept."


PAGE = ("<page><title>{t}</title><ns>{ns}</ns><id>{i}</id><revision><id>7</id>"
        "<text xml:space=\"preserve\">{body}</text></revision></page>")


def _dump(tmp_path, pages, tail="</mediawiki>", name="d.xml", compress=False, encoding="utf-8"):
    xml = ("<mediawiki><siteinfo><base>https://xx.wikipedia.org/wiki/Main</base></siteinfo>" + "".join(pages)
           + tail)
    data = xml.encode(encoding)
    path = tmp_path / name
    path.write_bytes(bz2.compress(data) if compress else data)
    return path


def test_namespaces_and_utf16_without_compression(tmp_path):
    pages = [PAGE.format(t="A", ns=0, i=1, body="Alpha text."), PAGE.format(t="Talk:A", ns=1, i=2, body="x")]
    docs, rejects = read_all(_dump(tmp_path, pages, encoding="utf-16"))
    assert [d["text"] for d in docs] == ["A\n\nAlpha text."]
    assert [r for _, r in rejects] == ["non_article_namespace"]


def test_malformed_xml_keeps_pages_before_it(tmp_path):
    pages = [PAGE.format(t="A", ns=0, i=1, body="Alpha."), "<page><title>B</ti"]
    docs, rejects = read_all(_dump(tmp_path, pages, tail=""))
    assert len(docs) == 1 and [r for _, r in rejects] == ["malformed_xml"]


def test_invalid_utf8(tmp_path):
    path = _dump(tmp_path, [PAGE.format(t="A", ns=0, i=1, body="ok"), PAGE.format(t="B", ns=0, i=2, body="@@")])
    path.write_bytes(path.read_bytes().replace(b"@@", b"\xff\xfe"))
    docs, rejects = read_all(path)
    assert [r for _, r in rejects] == ["invalid_utf8"]


def test_corrupt_bz2_and_empty_file(tmp_path):
    path = _dump(tmp_path, [PAGE.format(t="A", ns=0, i=1, body="Alpha.")] * 50, compress=True, name="d.xml.bz2")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"garbage" * 20)
    assert "corrupt_compressed_stream" in [r for _, r in read_all(path)[1]]
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    assert [r for _, r in read_all(empty)[1]] == ["empty_file"]


def test_a_100mb_line_is_a_rejected_page(tmp_path):
    pages = [PAGE.format(t="Big", ns=0, i=1, body="x" * (100 << 20)), PAGE.format(t="S", ns=0, i=2, body="Small.")]
    docs, rejects = read_all(_dump(tmp_path, pages))
    assert [d["text"] for d in docs] == ["S\n\nSmall."]
    assert [r for _, r in rejects] == ["page_too_long"]


# Markup where a regex pre-pass could go wrong: arguments, lone braces, unparsed tags, unclosed or
# self-closing references, nested templates and tables, tables inside templates and the reverse.
TRICKY = [
    "A {{{1}}} b {{{name|default}}} c.",
    "Math {{math|{x}}} and {{a|{{b|{{c}}}}}} end.",
    "<nowiki>{{not a template}}</nowiki> and <pre>{| not a table\n|}</pre> and <nowiki><!-- shown --></nowiki>",
    "<math>\\frac{{a}}{{b}}</math> text {{cite|x}} more.",
    "Unclosed <ref name=a> text that stays. Then <ref>real</ref> done.",
    "Self <ref name=\"a/b\" /> closing <ref name=c/> refs <ref group=n>note {{cite|q}}</ref>.",
    "<!-- {{hidden}} <ref>x</ref> --> after {{x|<!-- c -->}}",
    "{{Infobox\n| a = {| class=x\n| 1\n|}\n| b = 2\n}}\nProse.",
    "{| class=wikitable\n| {{flag|x}} || [[Link|text]]\n|-\n| {|\n| nested\n|}\n|}\nAfter table.",
    "  {|\n| indented table\n|}\nText {| mid-line\n|} stays.",
    "Open {{broken template with no end. [[Link]] here.",
    "Close }} without open and }}} too.",
    "'{{x}}'quoted'{{y}}' and {{{{a}}}} and {{{a}} and {{a}}}.",
    "<REF>upper</REF> case {{Template:Foo}} and <references/> <ref>a<ref>b</ref>",
    "== Head {{anchor|h}} ==\nBody <ref>{{cite web|url=http://x.org|title=T}}</ref>.\n== See also ==\n* {{x}}",
    "<syntaxhighlight lang=c>int f() { return {{1}}; }</syntaxhighlight> <code>{{tt|x}}</code>",
    "<pre>a {{x}} <nowiki>b <!-- c {{y}} <pre>a {{x}} <nowiki>b </pre> d {{z}} <!-- e",
    "<gallery>\nFile:A.png|{{x}}\n</gallery> <center>{{c}} centered</center> <ce>{}^{227}_{90}Th</ce>",
]


@pytest.mark.parametrize("wikitext", TRICKY)
def test_pre_pass_changes_nothing_the_parser_keeps(wikitext, monkeypatch):
    from corpus.sources import wikitext as module

    kwargs = dict(namespaces=frozenset({"file", "category"}), drop_sections=frozenset({"see also"}))
    fast = wikitext_to_text(wikitext, **kwargs)
    monkeypatch.setattr(module, "strip_dropped_markup", lambda text: text)
    assert fast == wikitext_to_text(wikitext, **kwargs)


def test_pre_pass_cuts_markup_the_parser_leaves_as_text():
    # mwparserfromhell reads "{{" with an empty or invalid name as text, and "[" + link + "]" as text
    # around a link; MediaWiki expands (here: drops) the templates first, as the pre-pass does.
    from corpus.sources import wikitext as module

    kwargs = dict(namespaces=frozenset(), drop_sections=frozenset())
    wikitext = "Empty {{ }} and {{[[not|a]] name}} and [{{x}}[Joined]]."
    assert wikitext_to_text(wikitext, **kwargs) == "Empty and and Joined."
    assert module.strip_dropped_markup(wikitext) == "Empty  and  and [[Joined]]."


def test_pre_pass_cuts_the_dropped_spans():
    from corpus.sources.wikitext import strip_dropped_markup

    assert strip_dropped_markup("a{{b|{{c}}}}d<ref>e</ref>f<!-- g -->h\n{|\n|i\n|}\nj{{{1}}}") == "adfh\n\nj"
    kept = "<nowiki>{{b}}</nowiki> <pre>{{c}}</pre> {{x|{y}}} <ref>open"
    assert strip_dropped_markup(kept) == kept


def test_unparsed_tags_match_mwparserfromhell():
    from mwparserfromhell.definitions import PARSER_BLACKLIST

    from corpus.sources.wikitext import _UNPARSED_TAGS

    assert set(_UNPARSED_TAGS) == set(PARSER_BLACKLIST)


def test_pre_pass_is_linear_on_unclosed_tags_and_comments():
    # An unclosed tag or comment is text to the parser. If each one sent a regex to the end of the
    # page, this 1.3 MB page of 40,000 of them would be 40,000 passes over it, and the test would hang.
    from corpus.sources.wikitext import strip_dropped_markup

    small = "<pre>a {{x}} <nowiki>b <!-- c {{y}} " * 3 + "</pre> d {{z}}"
    assert strip_dropped_markup(small) == "<pre>a {{x}} <nowiki>b <!-- c {{y}} " * 3 + "</pre> d "
    big = "<pre> <nowiki> <!-- " * 20_000 + "x" * 1_000_000
    assert strip_dropped_markup(big) == big
    # Nesting: one pass per level, up to 32 levels; what is deeper stays for the parser.
    deep = "{{a|" * 20_000 + "}}" * 20_000
    assert strip_dropped_markup(deep) == "{{a|" * (20_000 - 32) + "}}" * (20_000 - 32)
