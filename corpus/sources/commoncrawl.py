"""Common Crawl archives: WARC (response records -> main text) and WET (conversion records), also ARC.

One reader, `commoncrawl`, takes any of these files (.warc, .warc.gz, .wet(.gz), .arc(.gz)): a WARC
response record whose HTTP Content-Type is in `content_types` is decoded (declared charset, else
charset-normalizer) and its main text extracted (html_text.MainTextExtractor); a WET conversion record
is Common Crawl's own plain text and is kept as is. Each document keeps its URL (url column) and in
meta the WARC-Date, WARC-Record-ID and the record digest (WARC-Payload-Digest for responses,
WARC-Block-Digest for conversions), plus content type and charset.

Extractor choice, measured on the 23 newspaper4k 0.9.6 pages that have gold text (token F1, bag of
words; benchmarks/bench_warc_extract.py, 2 shared cores): trafilatura 2.3.1 (fast mode) 0.935 at 13
pages per CPU second, resiliparse 2.0.1 (main content) 0.890 at ~130. Default: trafilatura. On the same
WARC, datatrove 0.10.1's WarcReader + Trafilatura scored 0.925 and took 1.37x our CPU time.
Against Common Crawl's own WET text for the same 3 records of the npm `warc` fixture, `full_text`
(all visible text) has mean token F1 0.918; the main-text extractors keep a subset (precision >= 0.996).

Streaming: warcio's ArchiveIterator reads one record at a time; at most `max_payload_bytes` + 1 of a
payload are read (a longer one is rejected, the rest skipped), so memory stays bounded by that and the
batch size. There is no per-page time limit on the extractor (datatrove runs one in a sandbox process).
Sharding: one file is one shard (Common Crawl's ~1 GB WARC files are the natural unit; splitting one
further would need an index of gzip member offsets, which the WARC itself does not carry).

What becomes a rejected row, with its reason: a response with a non-2xx status (`http_status`), a
content type outside the filter (`content_type_filtered`), a revisit record (`revisit_record`, its
payload lives in an earlier capture), an oversized payload (`payload_too_large`), a payload whose
HTTP transfer/content encoding cannot be undone (`payload_decode_error`), bytes that fit no charset
(`undecodable_payload`), an extractor exception (`extraction_failed`), a page with no main text
(`no_main_text`), an empty WET record (`empty_text`), a record cut short by the end of the file
(`truncated_record`; also a record header cut off), a file whose last record or gzip member is cut
short, which warcio passes over without a word (`truncated_archive`), a record without Content-Length
(`malformed_record`), a file that expands past the limit every reader shares (`decompression_limit`:
warcio's decompressed bytes, all records together, at most 250x the file), and a file that cannot be
read on (`corrupt_archive`: bad gzip, not a WARC; one row saying after how many records), holds no
record at all (`empty_file`) or no document record (`no_document_records`: a WAT file, requests only). Request, metadata and warcinfo records are not documents and are passed
over, like blank lines in JSONL.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Iterator, Literal

import fsspec

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.html_text import DecodeError, MainTextExtractor, charset_from_content_type, decode_html
from corpus.sources.open_input import DecompressionBudget, stream_error_reason

DOCUMENT_RECORDS = ("response", "resource", "conversion", "revisit")
ARCHIVE_MAGIC = (b"WARC/", b"filedesc://")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class CommonCrawlConfig:
    extractor: Literal["trafilatura", "resiliparse", "full_text"] = setting(
        "trafilatura", doc="HTML to text: trafilatura or resiliparse main text, or full_text (all visible "
                           "text, like WET); see the module docstring for the numbers")
    content_types: tuple[str, ...] = setting(("text/html", "application/xhtml+xml"),
                                             doc="HTTP content types (without parameters) read as HTML")
    max_payload_bytes: int = setting(8 << 20, doc="larger payloads are rejected as payload_too_large",
                                     unit="bytes", ge=1024)


def read_commoncrawl(shard: Shard, cfg: CommonCrawlConfig, batch_rows: int) -> Iterator[ReadBatch]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    extract = MainTextExtractor(cfg.extractor)
    buf = DocumentBuffer(shard, batch_rows)
    records = 0
    produced = False  # a batch was already handed out
    start = _first_bytes(shard.path)
    if start and not start.startswith(ARCHIVE_MAGIC):
        # warcio would read almost any text as a headerless ARC record; a real file starts with its magic
        buf.reject("file", "corrupt_archive", f"not a WARC or ARC file: starts with {start[:40]!r}")
        yield buf.take()
        return
    budget = DecompressionBudget.for_file(shard.path)
    try:
        with fsspec.open(shard.path, "rb") as raw:  # warcio undoes per-record gzip itself
            stream = _Budgeted(raw, budget)
            archive = ArchiveIterator(stream, arc2warc=True)
            stream.decompressed = lambda: archive.reader.num_read if archive.reader else 0
            for record in archive:
                records += 1
                # warcio inflates the gzip members already in its read buffer without reading the file:
                # the check on raw reads sees them only at the next read, the one here at every record.
                budget.reached(archive.reader.num_read)
                if record.rec_type is None:  # warcio's view of a header cut off by the end of the file
                    buf.reject(f"rec@{archive.get_record_offset()}", "truncated_record", str(record.rec_headers))
                elif record.rec_type in DOCUMENT_RECORDS:
                    _read_record(buf, archive, record, cfg, extract)
                if buf.full():
                    produced = True
                    yield buf.take()
            last = archive.get_record_offset() if records else 0
            leftover = _unparsed_tail(shard.path, archive.offset) or _cut_gzip_member(shard.path, last, budget)
            if leftover:
                # warcio ends quietly when the last record (or gzip member) is cut short
                buf.reject(f"rec@{archive.offset}", "truncated_archive",
                           f"{leftover} bytes after the last complete record (after {records} records)")
    except Exception as exc:  # noqa: BLE001 - warcio on a damaged file raises more than its own errors
        # (ArchiveLoadFailed, zlib.error, EOFError, ValueError; AttributeError on a header cut short)
        buf.reject(f"error@{records}", stream_error_reason(exc, "corrupt_archive"),
                   f"{type(exc).__name__}: {' '.join(str(exc).split())} (after {records} records)")
    if not produced and not buf.rejected and not buf.columns["id"]:
        # an empty file, or one without any response/conversion record (a WAT file, requests only)
        buf.reject("file", "empty_file" if records == 0 else "no_document_records", f"{records} records")
    yield buf.take()


def _unparsed_tail(path: str, offset: int) -> int:
    """Bytes after `offset` that are more than the blank lines closing a WARC: a cut-off record."""
    with fsspec.open(path, "rb") as f:
        f.seek(offset)
        tail = f.read(1 << 16)
    return len(tail) if tail.strip(b"\r\n") else 0


def _cut_gzip_member(path: str, start: int, budget: DecompressionBudget) -> int:
    """For a .gz WARC: bytes from the last record on if a gzip member there ends early (else 0).

    warcio stops without a word when the file ends inside a member's header; a member without its
    end-of-stream marker is how a cut-off download looks. The members are inflated a chunk at a time
    against the file's budget, so a bomb hidden past the records warcio read stops here too."""
    if not path.endswith(".gz"):
        return 0
    with fsspec.open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    size = len(data)
    while data:
        member = zlib.decompressobj(wbits=31)
        try:
            budget.spend(len(member.decompress(data, _INFLATE_CHUNK)))
            while member.unconsumed_tail and not member.eof:
                budget.spend(len(member.decompress(member.unconsumed_tail, _INFLATE_CHUNK)))
        except zlib.error:
            return size
        if not member.eof:
            return size
        data = member.unused_data
    return 0


_INFLATE_CHUNK = 1 << 20


class _Budgeted:
    """The raw WARC file as warcio reads it. Before each read of compressed bytes, what warcio has
    decompressed so far (its reader's count, all gzip members together) is checked against the
    budget, so a bomb inside one giant record stops too."""

    def __init__(self, raw, budget: DecompressionBudget):
        self.raw, self.budget = raw, budget
        self.decompressed = lambda: 0

    def read(self, n: int = -1) -> bytes:
        self.budget.reached(self.decompressed())
        return self.raw.read(n)

    def __getattr__(self, name):  # tell(), seek(), readline() ...: the raw file's
        return getattr(self.raw, name)


def _read_record(buf: DocumentBuffer, archive, record, cfg: CommonCrawlConfig, extract) -> None:
    headers = record.rec_headers
    url = headers.get_header("WARC-Target-URI")
    meta = {"warc_type": record.rec_type, "warc_date": headers.get_header("WARC-Date"),
            "record_id": headers.get_header("WARC-Record-ID")}
    if record.length is None:
        buf.reject(f"rec@{archive.get_record_offset()}", "malformed_record", str(headers), url=url, meta=meta)
        return
    if record.rec_type == "revisit":
        meta["refers_to"] = headers.get_header("WARC-Refers-To")
        buf.reject(f"rec@{archive.get_record_offset()}", "revisit_record", "", url=url, meta=meta)
        return
    if record.rec_type == "conversion":
        _read_conversion(buf, archive, record, cfg, url, meta)
        return
    http = record.http_headers
    content_type = (http.get_header("Content-Type") if http else headers.get_header("Content-Type")) or ""
    mime = content_type.split(";")[0].strip().lower()
    meta.update(digest=headers.get_header("WARC-Payload-Digest"), content_type=content_type)
    if http is not None:
        meta["http_status"] = http.get_statuscode()
        if not str(meta["http_status"]).startswith("2"):
            buf.reject(f"rec@{archive.get_record_offset()}", "http_status", "", url=url, meta=meta)
            return
    if mime not in cfg.content_types:
        buf.reject(f"rec@{archive.get_record_offset()}", "content_type_filtered", "", url=url, meta=meta)
        return
    payload, problem = _read_payload(record, cfg.max_payload_bytes)
    # The offset only after the payload: warcio's get_record_offset() reads the record to its end.
    offset = f"rec@{archive.get_record_offset()}"
    if problem:
        buf.reject(offset, problem, payload, url=url, meta=meta)
        return
    try:
        html, meta["charset"] = decode_html(payload, charset_from_content_type(content_type))
    except DecodeError as exc:
        buf.reject(offset, "undecodable_payload", payload, url=url, meta={**meta, "error": str(exc)})
        return
    try:
        text = extract(html)
    except Exception as exc:  # a third-party parser on hostile input: any failure is this page's, not the job's
        buf.reject(offset, "extraction_failed", html, url=url, meta={**meta, "error": f"{type(exc).__name__}: {exc}"})
        return
    if not text:
        buf.reject(offset, "no_main_text", html, url=url, meta=meta)
        return
    buf.add(offset, text, url=url, meta=meta)


def _read_conversion(buf: DocumentBuffer, archive, record, cfg: CommonCrawlConfig, url, meta) -> None:
    meta.update(refers_to=record.rec_headers.get_header("WARC-Refers-To"),
                digest=record.rec_headers.get_header("WARC-Block-Digest"))
    payload, problem = _read_payload(record, cfg.max_payload_bytes)
    offset = f"rec@{archive.get_record_offset()}"
    if problem:
        buf.reject(offset, problem, payload, url=url, meta=meta)
        return
    try:
        text = payload.decode("utf-8").strip()  # WET text is UTF-8 by Common Crawl's spec
    except UnicodeDecodeError as exc:
        buf.reject(offset, "undecodable_payload", payload, url=url, meta={**meta, "error": str(exc)})
        return
    if not text:
        buf.reject(offset, "empty_text", "", url=url, meta=meta)
        return
    buf.add(offset, text, url=url, meta=meta)


def _first_bytes(path: str) -> bytes:
    """The first bytes of the (gunzipped) file; b'' when they cannot be read (warcio then says why)."""
    try:
        with fsspec.open(path, "rb") as raw:
            head = raw.read(2)
        with fsspec.open(path, "rb", compression="gzip" if head == b"\x1f\x8b" else None) as f:
            return f.read(16)
    except (OSError, EOFError, zlib.error):
        return b""


def _read_payload(record, limit: int) -> tuple[bytes, str]:
    """(payload, '') or (what was read, reason). Undoes HTTP chunking and gzip/br content encoding."""
    try:
        payload = record.content_stream().read(limit + 1)
    except Exception as exc:  # noqa: BLE001 - zlib/brotli/chunking errors of one record, whatever their type
        # (warcio 1.8.1 with brotli 1.2 raises AttributeError for every `br` payload: see benchmarks/README.md)
        return f"{type(exc).__name__}: {exc}".encode(), "payload_decode_error"
    if len(payload) > limit:
        return payload[:4096], "payload_too_large"
    if getattr(record.raw_stream, "limit", 0) > 0:  # fewer bytes than Content-Length before the file ended
        return payload, "truncated_record"
    return payload, ""


SPEC = SourceSpec(name="commoncrawl", config=CommonCrawlConfig, read=read_commoncrawl)
