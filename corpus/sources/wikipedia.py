"""MediaWiki XML dumps (pages-articles .xml, .xml.bz2, .xml.gz; any encoding expat reads: UTF-8, UTF-16).

The dump is streamed: bytes are fed to an incremental XML parser in chunks, each <page> is handled
when it closes and then cleared from the tree, so memory is one page plus one chunk. The same bytes
go through an incremental decoder of the declared encoding, so invalid UTF-8 is reported as such and
not as an opaque XML error.

One document per article (namespace 0, not a redirect), text cleaned by wikitext.py. Meta: title,
page_id, rev_id. Each other page becomes a reject row: redirect, non_article_namespace,
page_too_long, empty_after_cleaning, wikitext_error. A damaged file ends with one reject row
(corrupt_compressed_stream, decompression_limit, malformed_xml, invalid_utf8 / invalid_encoding, empty_file) after the
pages read before the damage.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
import xml.etree.ElementTree as ET
from typing import Iterator

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.open_input import CORRUPT_STREAM_ERRORS, open_binary, stream_error_reason
from corpus.sources.wikitext import require_mwparserfromhell, wikitext_to_text

_CHUNK = 1 << 20
_DECL_ENCODING = re.compile(rb"^<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class WikipediaConfig:
    namespaces: tuple[int, ...] = setting((0,), doc="namespaces kept (0 = articles)")
    drop_sections: tuple[str, ...] = setting(
        ("See also", "References", "External links", "Further reading", "Notes", "Footnotes", "Citations",
         "Sources"),
        doc="sections (and their subsections) removed by heading, case-insensitive")
    max_page_chars: int = setting(8 << 20, doc="pages with more wikitext are rejected as page_too_long",
                                  unit="chars", ge=1)


def read_wikipedia(shard: Shard, cfg: WikipediaConfig, batch_rows: int) -> Iterator[ReadBatch]:
    require_mwparserfromhell()  # a missing package fails the worker once, with its pip name
    buf = DocumentBuffer(shard, batch_rows)
    state = _State(cfg)
    parser = ET.XMLPullParser(events=("start", "end"))
    decoder = None
    offset = 0
    try:
        with open_binary(shard.path) as stream:
            while True:
                chunk = stream.read(_CHUNK)
                if decoder is None:
                    if not chunk:
                        break
                    decoder = codecs.getincrementaldecoder(_encoding_of(chunk))(errors="strict")
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    _drain(parser, state, buf)  # keep the pages that closed before the bad byte
                    reason = "invalid_utf8" if "utf-8" in exc.encoding.lower() else "invalid_encoding"
                    buf.reject(f"byte{offset + exc.start}", reason, chunk[max(0, exc.start - 200): exc.start + 200],
                               meta={"error": str(exc)})
                    break
                if not chunk:
                    parser.close()
                    _drain(parser, state, buf)
                    break
                offset += len(chunk)
                parser.feed(chunk)
                yield from _drain_batches(parser, state, buf)
    except ET.ParseError as exc:
        buf.reject(f"line{exc.position[0]}", "malformed_xml", "", meta={"error": str(exc), "pages": state.pages})
    except CORRUPT_STREAM_ERRORS as exc:
        buf.reject(f"byte{offset}", stream_error_reason(exc), f"{type(exc).__name__}: {exc}",
                   meta={"pages": state.pages})
    if offset == 0 and not buf.rejected and state.pages == 0:
        buf.reject("file", "empty_file", "")
    yield buf.take()


def _encoding_of(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(b"<\x00") or head.startswith(b"\x00<"):
        return "utf-16-le" if head[0] == 0x3C else "utf-16-be"
    m = _DECL_ENCODING.match(head.removeprefix(codecs.BOM_UTF8))
    return m.group(1).decode("ascii") if m else "utf-8"


class _State:
    def __init__(self, cfg: WikipediaConfig):
        self.cfg = cfg
        self.root = None
        self.base_url = None
        self.namespace_names: set[str] = set()
        self.pages = 0
        self.drop_sections = frozenset(s.lower() for s in cfg.drop_sections)


def _drain_batches(parser, state: _State, buf: DocumentBuffer) -> Iterator[ReadBatch]:
    for _ in _events(parser, state, buf):
        if buf.full():
            yield buf.take()


def _drain(parser, state: _State, buf: DocumentBuffer) -> None:
    for _ in _events(parser, state, buf):
        pass


def _events(parser, state: _State, buf: DocumentBuffer) -> Iterator[None]:
    for event, elem in parser.read_events():
        tag = elem.tag.rsplit("}", 1)[-1]
        if event == "start":
            if state.root is None:
                state.root = elem
            continue
        if tag == "siteinfo":
            _read_siteinfo(elem, state)
            state.root.clear()
        elif tag == "page":
            state.pages += 1
            _read_page(elem, state, buf)
            state.root.clear()  # the page is done: drop it (and its text) from the tree
            yield None


def _read_siteinfo(elem, state: _State) -> None:
    for child in elem.iter():
        name = child.tag.rsplit("}", 1)[-1]
        if name == "base" and child.text:
            state.base_url = child.text.rsplit("/", 1)[0] + "/"
        elif name == "namespace" and child.get("key") not in (None, "0") and child.text:
            state.namespace_names.add(child.text.strip().lower())


def _child(elem, name: str):
    for child in elem:
        if child.tag.rsplit("}", 1)[-1] == name:
            return child
    return None


def _read_page(page, state: _State, buf: DocumentBuffer) -> None:
    title = (_child(page, "title").text or "") if _child(page, "title") is not None else ""
    ns_elem, id_elem = _child(page, "ns"), _child(page, "id")
    page_id = id_elem.text.strip() if id_elem is not None and id_elem.text else f"n{state.pages}"
    revision = _child(page, "revision")
    rev_id = text_elem = None
    if revision is not None:
        rid = _child(revision, "id")
        rev_id = rid.text.strip() if rid is not None and rid.text else None
        text_elem = _child(revision, "text")
    meta = {"title": title, "page_id": page_id, "rev_id": rev_id}
    offset = f"page{page_id}"
    try:
        ns = int(ns_elem.text) if ns_elem is not None and ns_elem.text else 0
    except ValueError:
        ns = -999
    wikitext = text_elem.text or "" if text_elem is not None else ""
    if _child(page, "redirect") is not None:
        buf.reject(offset, "redirect", wikitext, meta=meta)
        return
    if ns not in state.cfg.namespaces:
        buf.reject(offset, "non_article_namespace", "", meta={**meta, "ns": ns})
        return
    if len(wikitext) > state.cfg.max_page_chars:
        buf.reject(offset, "page_too_long", wikitext, meta={**meta, "chars": len(wikitext)})
        return
    try:
        text = wikitext_to_text(wikitext, namespaces=frozenset(state.namespace_names),
                                drop_sections=state.drop_sections)
    except (ValueError, RecursionError) as exc:  # mwparserfromhell's limits on pathological markup
        buf.reject(offset, "wikitext_error", wikitext, meta={**meta, "error": str(exc)})
        return
    if not text:
        buf.reject(offset, "empty_after_cleaning", wikitext, meta=meta)
        return
    url = state.base_url + title.replace(" ", "_") if state.base_url else None
    buf.add(offset, f"{title}\n\n{text}", url=url, meta=meta)


SPEC = SourceSpec(name="wikipedia", config=WikipediaConfig, read=read_wikipedia)
