"""StackExchange site dumps: `<site>/Posts.xml` (as in the archive.org dump, one folder per site).

One document per question: its title and body, then its answers sorted by score (highest first;
equal scores by ascending post id, so the order is deterministic). HTML is stripped with selectolax
(the Lexbor parser), block elements becoming line breaks.

Which sites: LLaMA-1 (sec. 2) "kept the data from the 28 largest websites". Size here is the byte
size of each site's Posts.xml (or the file named in `paths`), read from the file system next to the
shard: it costs one stat per site, needs no pass over the data, and ranks the same way as post
counts up to the average post length. A shard whose site is not among the `keep_largest` is one
reject row (site_not_in_largest), unread; `sites` names the sites explicitly instead.

Memory: rows are streamed line by line through an incremental XML parser and cleared as they go. Questions wait in memory for
their answers until the end of the file; past `max_buffered_bytes` of raw post text the rows are
spilled into hash buckets on local disk by question id and each bucket is grouped on its own.
Rejects: malformed_row, line_too_long, invalid_utf8, orphan_answer, other_post_type, malformed_xml, corrupt_compressed_stream,
decompression_limit, empty_file, site_not_in_largest.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from typing import Iterator

from corpus.config import setting
from corpus.sources.base import DocumentBuffer, ReadBatch, Shard, SourceSpec
from corpus.sources.open_input import CORRUPT_STREAM_ERRORS, iter_lines, open_binary, stream_error_reason

_BLOCK_END = re.compile(r"(</(?:p|pre|li|h[1-6]|blockquote|div|tr|table|ul|ol|dd|dt)>|<br\s*/?>|<hr\s*/?>)", re.I)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class StackExchangeConfig:
    keep_largest: int = setting(28, doc="keep the N largest sites by Posts.xml bytes (LLaMA-1: 28)",
                                unit="sites", ge=1)
    sites: tuple[str, ...] = setting((), doc="explicit list of sites to keep (overrides keep_largest)")
    dump_root: str | None = setting(None, doc="folder holding one folder per site; default: two levels above "
                                    "the shard's Posts.xml")
    min_answers: int = setting(0, doc="questions with fewer answers are rejected", unit="answers", ge=0)
    max_buffered_bytes: int = setting(256 << 20, doc="raw post bytes held before spilling to disk buckets",
                                      unit="bytes", ge=1 << 16)
    spill_buckets: int = setting(64, doc="disk buckets when spilling", unit="buckets", ge=2)
    max_row_bytes: int = setting(16 << 20, doc="a longer line (one row) is rejected as line_too_long",
                                 unit="bytes", ge=1024)


def site_of(path: str) -> str:
    """The site a Posts.xml belongs to: its folder name (`stackoverflow.com/Posts.xml`)."""
    base = os.path.basename(path)
    if base.lower().startswith("posts.xml"):
        return os.path.basename(os.path.dirname(os.path.abspath(path)))
    return re.sub(r"[-_.]?posts\.xml.*$", "", base, flags=re.I) or base


def largest_sites(dump_root: str, n: int) -> list[str]:
    """The n sites with the largest Posts.xml under dump_root (ties by name)."""
    sizes = {}
    for p in glob.glob(os.path.join(dump_root, "*", "Posts.xml*")):
        sizes[site_of(p)] = sizes.get(site_of(p), 0) + os.path.getsize(p)
    return [s for s, _ in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def html_to_text(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser
    if "<" not in html and "&" not in html:
        return html.strip()
    tree = HTMLParser(_BLOCK_END.sub(lambda m: m.group(1) + "\n", html))
    text = tree.body.text(deep=True) if tree.body is not None else ""
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def read_stackexchange(shard: Shard, cfg: StackExchangeConfig, batch_rows: int) -> Iterator[ReadBatch]:
    try:
        import selectolax  # noqa: F401
    except ImportError as exc:  # pragma: no cover
        raise ImportError("the stackexchange reader needs selectolax: pip install selectolax") from exc
    buf = DocumentBuffer(shard, batch_rows)
    site = site_of(shard.path)
    kept = set(cfg.sites) if cfg.sites else set(largest_sites(
        cfg.dump_root or os.path.dirname(os.path.dirname(os.path.abspath(shard.path))), cfg.keep_largest))
    if site not in kept:
        buf.reject("site", "site_not_in_largest", "", meta={"site": site, "kept_sites": sorted(kept)})
        yield buf.take()
        return
    with tempfile.TemporaryDirectory(prefix="refinery-se-") as spill_dir:
        groups = _Groups(cfg, spill_dir)
        rows, seen_bytes = 0, 0
        parser = ET.XMLPullParser(events=("end",))
        try:
            with open_binary(shard.path) as stream:
                # Dumps hold one <row/> per line: feeding line by line lets a giant or undecodable row be
                # rejected alone (the XML stays well-formed without it), and keeps expat from rescanning
                # a 100 MB attribute on every chunk.
                for number, line, whole in iter_lines(stream, cfg.max_row_bytes):
                    seen_bytes += len(line)
                    if not whole:
                        buf.reject(f"line{number}", "line_too_long", line[:4096], meta={"limit": cfg.max_row_bytes})
                        continue
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        buf.reject(f"line{number}", "invalid_utf8", line, meta={"error": str(exc)})
                        continue
                    parser.feed(line + b"\n")
                    for _, elem in parser.read_events():
                        if elem.tag == "row":
                            rows += 1
                            _add_row(dict(elem.attrib), groups, buf, site)
                            elem.clear()
                if seen_bytes == 0:
                    buf.reject("file", "empty_file", "")
                else:
                    parser.close()
        except ET.ParseError as exc:
            buf.reject(f"line{exc.position[0]}", "malformed_xml", "", meta={"error": str(exc), "rows": rows})
        except CORRUPT_STREAM_ERRORS as exc:
            buf.reject(f"row{rows}", stream_error_reason(exc), f"{type(exc).__name__}: {exc}")
        for question, answers in groups.iter_groups():
            _emit(question, answers, buf, site, cfg)
            if buf.full():
                yield buf.take()
    yield buf.take()


def _add_row(row: dict, groups: "_Groups", buf: DocumentBuffer, site: str) -> None:
    post_id, kind = row.get("Id", ""), row.get("PostTypeId")
    try:
        pid = int(post_id)
        score = int(row.get("Score", "0"))
        parent = int(row["ParentId"]) if kind == "2" else pid
    except (ValueError, KeyError) as exc:
        buf.reject(f"post{post_id}", "malformed_row", json.dumps(row)[:4096], meta={"error": repr(exc)})
        return
    if kind not in ("1", "2"):
        buf.reject(f"post{pid}", "other_post_type", "", meta={"post_type": kind, "site": site})
        return
    groups.add(parent, {"id": pid, "kind": kind, "score": score, "title": row.get("Title"),
                        "body": row.get("Body", ""), "tags": row.get("Tags")})


def _emit(question: dict | None, answers: list[dict], buf: DocumentBuffer, site: str,
          cfg: StackExchangeConfig) -> None:
    if question is None:
        for a in answers:
            buf.reject(f"post{a['id']}", "orphan_answer", a["body"], meta={"site": site})
        return
    answers.sort(key=lambda a: (-a["score"], a["id"]))
    meta = {"site": site, "question_id": question["id"], "score": question["score"],
            "answer_ids": [a["id"] for a in answers], "answer_scores": [a["score"] for a in answers],
            "tags": question["tags"], "title": question["title"]}
    if len(answers) < cfg.min_answers:
        buf.reject(f"post{question['id']}", "too_few_answers", question["body"], meta=meta)
        return
    parts = [question["title"] or "", html_to_text(question["body"])]
    parts += [html_to_text(a["body"]) for a in answers]
    buf.add(f"post{question['id']}", "\n\n".join(p for p in parts if p),
            url=f"https://{site}/questions/{question['id']}", meta=meta)


class _Groups:
    """Posts grouped by question id; in memory, or in disk buckets once too big."""

    def __init__(self, cfg: StackExchangeConfig, spill_dir: str):
        self.cfg, self.spill_dir = cfg, spill_dir
        self.mem: dict[int, list[dict]] = {}
        self.held = 0
        self.files = None

    def add(self, qid: int, post: dict) -> None:
        if self.files is not None:
            self.files[qid % len(self.files)].write(json.dumps([qid, post]) + "\n")
            return
        self.mem.setdefault(qid, []).append(post)
        self.held += len(post["body"]) + len(post["title"] or "")
        if self.held > self.cfg.max_buffered_bytes:
            self.files = [open(os.path.join(self.spill_dir, f"{i:04d}.jsonl"), "w", encoding="utf-8")
                          for i in range(self.cfg.spill_buckets)]
            for q, posts in self.mem.items():
                for p in posts:
                    self.files[q % len(self.files)].write(json.dumps([q, p]) + "\n")
            self.mem = {}

    def iter_groups(self) -> Iterator[tuple[dict | None, list[dict]]]:
        if self.files is None:
            yield from self._split(self.mem)
            return
        for f in self.files:
            f.close()
        for f in self.files:
            bucket: dict[int, list[dict]] = {}
            with open(f.name, encoding="utf-8") as fh:
                for line in fh:
                    q, p = json.loads(line)
                    bucket.setdefault(q, []).append(p)
            yield from self._split(bucket)

    @staticmethod
    def _split(groups: dict[int, list[dict]]) -> Iterator[tuple[dict | None, list[dict]]]:
        for qid in sorted(groups):
            posts = groups[qid]
            question = next((p for p in posts if p["kind"] == "1"), None)
            yield question, [p for p in posts if p["kind"] == "2"]


SPEC = SourceSpec(name="stackexchange", config=StackExchangeConfig, read=read_stackexchange)
