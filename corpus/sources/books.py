"""Plain-text books: one book per .txt file, in a folder or an archive (one shard), or a lone .txt file.

Project Gutenberg's header (up to the `*** START OF ...` line, or the older `*END*THE SMALL PRINT`)
and footer (from `*** END OF ...` / `End of the Project Gutenberg EBook`) are removed. Books whose
content is more than `max_overlap` inside another book of the same shard are dropped as
near_duplicate_book (book_overlap.py: LLaMA-1's 90% rule, deterministic survivor). Duplicates
across shards need the cross-shard dedup phase.

Memory: a first pass keeps one constant-size sketch per book; the second pass re-reads each book
and emits it. A book over `max_book_bytes` is rejected unread (book_too_large); a line over
`max_line_bytes` (no book has one; a dump of binary data does) rejects it as line_too_long.
Other rejects: invalid_utf8, empty_file, book_too_large, corrupt_archive, decompression_limit.
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Iterator

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.book_overlap import near_duplicate_books, sketch_book
from corpus.sources.open_input import stream_error_reason
from corpus.sources.trees import ARCHIVE_ERRORS, TreeError, iter_tree

_START = re.compile(r"^[ \t]*\*{3}[ \t]*START OF (THE|THIS) PROJECT GUTENBERG|^[ \t]*\*END\*THE SMALL PRINT",
                    re.I | re.M)
_END = re.compile(r"^[ \t]*\*{3}[ \t]*END OF (THE|THIS) PROJECT GUTENBERG|^[ \t]*End of (the )?Project Gutenberg",
                  re.I | re.M)
_TITLE = re.compile(r"^Title:\s*(.+)$", re.M)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class BooksConfig:
    extensions: tuple[str, ...] = setting(("txt",), doc="file extensions read as books")
    max_overlap: float = setting(0.9, doc="books more contained than this in another are dropped (LLaMA-1)",
                                 unit="fraction", ge=0, le=1)
    sketch_size: int = setting(4096, doc="bottom-k sketch size for the overlap estimate", unit="hashes", ge=16)
    shingle_words: int = setting(5, doc="words per shingle", unit="words", ge=1)
    max_line_bytes: int = setting(1 << 20, doc="a longer line rejects the book", unit="bytes", ge=1024)
    max_book_bytes: int = setting(64 << 20, doc="larger books are rejected unread", unit="bytes", ge=1024)


def read_books(shard: Shard, cfg: BooksConfig, batch_rows: int) -> Iterator[ReadBatch]:
    buf = DocumentBuffer(shard, batch_rows)
    sketches, problems = [], {}
    for key, result in _books(shard.path, cfg):
        if isinstance(result, str):
            sketches.append(sketch_book(key, result, cfg.sketch_size, cfg.shingle_words))
        else:
            problems[key] = result
    dropped = near_duplicate_books(sketches, cfg.max_overlap, cfg.sketch_size)
    for key, result in _books(shard.path, cfg):  # second pass: emit in tree order
        if key in problems:
            reason, raw, meta = problems[key]
            buf.reject(key, reason, raw, meta=meta)
        elif isinstance(result, str):
            meta = {"path": key, "title": _title(result)}
            if key in dropped:
                other, overlap = dropped[key]
                buf.reject(key, "near_duplicate_book", result, meta={**meta, "duplicate_of": other,
                                                                     "containment": overlap})
            else:
                buf.add(key, result, meta=meta)
        if buf.full():
            yield buf.take()
    yield buf.take()


def _books(path: str, cfg: BooksConfig) -> Iterator[tuple[str, str | tuple]]:
    """(member path, cleaned text) or (member path, (reason, raw, meta)) for each book of the tree."""
    exts = tuple("." + e.lower() for e in cfg.extensions)
    n = 0
    for item in iter_tree(path):
        if isinstance(item, TreeError):
            yield "tree", (item.reason, item.detail, {"books_before": n})
            return
        if not item.path.lower().endswith(exts):
            continue
        n += 1
        if item.size == 0:
            yield item.path, ("empty_file", "", None)
        elif item.size > cfg.max_book_bytes:
            yield item.path, ("book_too_large", "", {"bytes": item.size})
        else:
            try:
                with item.open() as f:
                    book = _read_book(f, cfg)
            except ARCHIVE_ERRORS as exc:  # the archive breaks inside this member
                yield "tree", (stream_error_reason(exc, "corrupt_archive"), f"{type(exc).__name__}: {exc}",
                               {"books_before": n - 1})
                return
            yield item.path, book
    if n == 0 and not path.lower().endswith(exts):
        yield "tree", ("empty_file", "", {"note": "no book files"})


def _read_book(f, cfg: BooksConfig) -> str | tuple:
    data = f.read(cfg.max_book_bytes + 1)  # the size was checked: this is at most one book
    if len(data) > cfg.max_book_bytes:
        return ("book_too_large", "", {"limit_bytes": cfg.max_book_bytes})
    for number, line in enumerate(data.split(b"\n")):
        if len(line) > cfg.max_line_bytes:
            return ("line_too_long", line[:4096], {"line": number, "limit_bytes": cfg.max_line_bytes})
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        return ("invalid_utf8", data, {"error": str(exc)})
    text = strip_gutenberg(text).strip()
    return text if text else ("empty_file", "", {"note": "nothing left after removing the Gutenberg header"})


def strip_gutenberg(text: str) -> str:
    """The book without Project Gutenberg's header and footer (text without markers is unchanged)."""
    start, end = 0, len(text)
    m = _START.search(text)
    if m:
        newline = text.find("\n", m.end())
        start = len(text) if newline < 0 else newline + 1
    m = _END.search(text, start)
    if m:
        end = m.start()
    return text[start:end]


def _title(text: str) -> str | None:
    first = next((line.strip() for line in io.StringIO(text) if line.strip()), "")
    m = _TITLE.search(text[:4096])
    return m.group(1).strip() if m else (first[:200] or None)


SPEC = SourceSpec(name="books", config=BooksConfig, read=read_books, folder_shards=True)
