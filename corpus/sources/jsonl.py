"""C4-layout JSON lines (.json, .jsonl, optionally .gz/.bz2/.xz): one object per line with `text`,
`url` and `timestamp`, as in allenai/c4 and most corpus dumps.

Every line becomes a document or a rejected row: invalid UTF-8, invalid JSON, a string with a lone
UTF-16 surrogate escape (`\\ud800`: valid JSON, but no UTF-8 form), a missing or empty text field, a
line over `max_line_bytes`, a damaged compressed stream (the rest of the file is unreadable: one reject
row says where it broke) and an empty file each have their own reason.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Iterator

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.open_input import CORRUPT_STREAM_ERRORS, iter_lines, open_binary, stream_error_reason


# "\ud800".."\udfff": JSON may escape a UTF-16 surrogate; a pair decodes to one character, a lone one
# to a string that has no UTF-8 form and could not be written.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class JsonlConfig:
    text_field: str = setting("text", doc="field holding the document text")
    url_field: str = setting("url", doc="field holding the URL (may be absent)")
    meta_fields: tuple[str, ...] = setting(("timestamp",), doc="fields copied into meta when present")
    max_line_bytes: int = setting(64 << 20, doc="longer lines are rejected as line_too_long", unit="bytes",
                                  ge=1024)


def read_jsonl(shard: Shard, cfg: JsonlConfig, batch_rows: int) -> Iterator[ReadBatch]:
    buf = DocumentBuffer(shard, batch_rows)
    seen = 0
    try:
        with open_binary(shard.path) as stream:
            for number, raw, whole in iter_lines(stream, cfg.max_line_bytes):
                seen += 1
                _add_line(buf, number, raw, whole, cfg)
                if buf.full():
                    yield buf.take()
    except CORRUPT_STREAM_ERRORS as exc:
        buf.reject(f"line{seen}", stream_error_reason(exc),
                   f"{type(exc).__name__}: {exc} (after {seen} lines)")
    if seen == 0 and not buf.rejected:
        buf.reject("file", "empty_file", "")
    yield buf.take()


def _add_line(buf: DocumentBuffer, number: int, raw: bytes, whole: bool, cfg: JsonlConfig) -> None:
    offset = f"line{number}"
    if not whole:
        buf.reject(offset, "line_too_long", raw, meta={"limit_bytes": cfg.max_line_bytes})
        return
    if not raw.strip():
        return  # blank lines are layout, not records
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        buf.reject(offset, "invalid_utf8", raw, meta={"error": str(exc)})
        return
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        buf.reject(offset, "invalid_json", line, meta={"error": str(exc)})
        return
    text = obj.get(cfg.text_field) if isinstance(obj, dict) else None
    if not isinstance(text, str) or not text.strip():
        buf.reject(offset, "missing_text", line)
        return
    url = obj.get(cfg.url_field)
    meta = {k: obj[k] for k in cfg.meta_fields if k in obj}
    if _SURROGATE_ESCAPE.search(line):
        try:
            json.dumps([text, url, meta], ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            buf.reject(offset, "lone_surrogate", line, meta={"error": str(exc)})
            return
    buf.add(offset, text, url=url if isinstance(url, str) else None, meta=meta or None)


SPEC = SourceSpec(name="jsonl", config=JsonlConfig, read=read_jsonl)
