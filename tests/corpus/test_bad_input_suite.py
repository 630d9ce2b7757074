"""The bad-input suite: one job reads broken inputs of every source side by side with good ones.

Truncated and corrupt archives, invalid encodings, malformed XML and LaTeX, giant lines, empty files,
binary junk and a decompression bomb: the job completes, every bad file (each member of a folder on
its own) is in the rejected output with exactly its reasons, the good documents are all kept, and the
books balance (run_job raises ConservationError otherwise).
"""

import bz2
import gzip
import io
import json
import os
import random

import pyarrow.parquet as pq
import pytest

from corpus.runtime.executor import run_job
from corpus.runtime.spec import parse_job
from corpus.sources.open_input import LIMIT_FLOOR, MAX_EXPANSION

pytestmark = pytest.mark.slow

GOOD_TEXT = ("The river ran quietly past the old mill, and the miller, who had lived there for forty years, "
             "watched the water as he always did in the evening. ") * 3


def junk(n=4096, seed=0):
    return random.Random(seed).randbytes(n)


def warc_bytes(records):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    for i, html in enumerate(records):
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.0")
        writer.write_record(writer.create_warc_record(f"http://example.org/{i}", "response",
                                                      payload=io.BytesIO(html.encode()), http_headers=headers))
    return out.getvalue()


def page(i):
    return (f"<html><head><title>Page {i}</title></head><body><article><h1>Story {i}</h1>"
            + "".join(f"<p>{GOOD_TEXT} Paragraph {j} of story {i}.</p>" for j in range(4))
            + "</article></body></html>")


def wiki_dump(pages):
    body = "".join(f"<page><title>Article {i}</title><ns>0</ns><id>{i + 1}</id><revision><id>{i + 10}</id>"
                   f"<text>'''Article {i}''' is about [[rivers|a river]]. {GOOD_TEXT}</text></revision></page>"
                   for i in range(pages))
    return ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><siteinfo><sitename>W</sitename>'
            f"</siteinfo>{body}</mediawiki>")


@pytest.fixture
def bad_inputs(tmp_path):
    root = tmp_path / "in"
    for d in ("jsonl", "cc", "wiki", "arxiv/paper", "arxiv/broken", "arxiv/junk", "se/site.example", "github/repo", "books/shelf"):
        (root / d).mkdir(parents=True)
    # jsonl: good lines around bad ones; a cut gzip; binary junk; an empty file; a 20 MB line; a bomb
    (root / "jsonl/good.jsonl").write_text("".join(json.dumps({"text": f"{GOOD_TEXT} {i}"}) + "\n" for i in range(3)))
    data = gzip.compress("".join(json.dumps({"text": f"{GOOD_TEXT} {i}"}) + "\n" for i in range(300)).encode())
    (root / "jsonl/cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    # a decompression bomb: 4 MB of the same line in a few KB of gzip
    (root / "jsonl/bomb.jsonl.gz").write_bytes(gzip.compress(
        "".join(json.dumps({"text": "spam " * 20_000}) + "\n" for _ in range(40)).encode(), 9))
    (root / "jsonl/junk.jsonl").write_bytes(junk())
    (root / "jsonl/empty.jsonl").write_bytes(b"")
    (root / "jsonl/latin1.jsonl").write_bytes('{"text": "café crème"}\n'.encode("latin-1"))
    (root / "jsonl/giant.jsonl").write_bytes(b'{"text": "' + b"a" * (20 << 20) + b'"}\n')
    # commoncrawl: a good WARC, a truncated one, junk named .warc.gz, an empty .warc
    good = warc_bytes([page(i) for i in range(3)])
    (root / "cc/good.warc.gz").write_bytes(good)
    (root / "cc/cut.warc.gz").write_bytes(good[: len(good) - 100])  # inside the last record
    (root / "cc/junk.warc.gz").write_bytes(junk(seed=1))
    (root / "cc/empty.warc").write_bytes(b"")
    # wikipedia: a good dump, malformed XML, a corrupt bz2, an empty file
    (root / "wiki/good.xml.bz2").write_bytes(bz2.compress(wiki_dump(2).encode()))
    (root / "wiki/malformed.xml").write_text(wiki_dump(2)[:-300] + "<page><title>broken</tit")
    (root / "wiki/corrupt.xml.bz2").write_bytes(bz2.compress(wiki_dump(2).encode())[:200] + junk(500, 2))
    (root / "wiki/empty.xml").write_bytes(b"")
    # arxiv: a good paper; one with unbalanced braces and a missing \input; junk and empty .tex files
    (root / "arxiv/paper/main.tex").write_text(
        "\\documentclass{article}\\begin{document}\\section{Intro}" + GOOD_TEXT + "\n\\end{document}\n")
    (root / "arxiv/broken/main.tex").write_text(
        "\\documentclass{article}\\begin{document}\\section{Intro}" + GOOD_TEXT + " {unclosed \\input{missing}\n")
    (root / "arxiv/junk/junk.tex").write_bytes(junk(seed=3))
    (root / "arxiv/junk/empty.tex").write_bytes(b"")
    # stackexchange: a malformed Posts.xml (a row cut in the middle)
    (root / "se/site.example/Posts.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n'
        f'  <row Id="1" PostTypeId="1" Score="3" Title="Q" Body="&lt;p&gt;{GOOD_TEXT}&lt;/p&gt;" />\n'
        '  <row Id="2" PostTypeId="2" ParentId="1" Score="1" Body="&lt;p&gt;An answer.&lt;/p&gt;" />\n'
        '  <row Id="3" PostTypeId="1" Score="1" Title="cut" Body="&lt;p\n')
    # github: a permissive repo with one good file, binary junk, invalid UTF-8 and a giant line
    (root / "github/repo/Cargo.toml").write_text('[package]\nname = "repo"\nlicense = "MIT"\n')
    (root / "github/repo/good.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "github/repo/junk.py").write_bytes(junk(seed=4))
    (root / "github/repo/latin1.py").write_bytes("s = 'café'\n".encode("latin-1"))
    (root / "github/repo/giant.js").write_text("var x = '" + "a" * 5000 + "';\n")
    # books: one good book, binary junk, an empty file
    (root / "books/shelf/good.txt").write_text("\n\n".join(GOOD_TEXT for _ in range(20)))
    (root / "books/shelf/junk.txt").write_bytes(junk(seed=5))
    (root / "books/shelf/empty.txt").write_bytes(b"")
    return root


def test_bad_inputs_of_every_source_are_rejected_with_reasons_and_the_books_balance(ray_local, bad_inputs, tmp_path):
    inputs = [
        {"source": "jsonl", "paths": ["in/jsonl/*"], "domain": "c4", "options": {"max_line_bytes": 1 << 20}},
        {"source": "commoncrawl", "paths": ["in/cc/*"], "domain": "commoncrawl"},
        {"source": "wikipedia", "paths": ["in/wiki/*"], "domain": "wikipedia"},
        {"source": "arxiv", "paths": ["in/arxiv/*"], "domain": "arxiv"},
        {"source": "stackexchange", "paths": ["in/se/*/Posts.xml"], "domain": "stackexchange"},
        {"source": "github", "paths": ["in/github/*"], "domain": "github"},
        {"source": "books", "paths": ["in/books/*"], "domain": "books"},
    ]
    spec = parse_job({"name": "bad", "output": str(tmp_path / "out"), "inputs": inputs,
                      "runtime": {"workers": 2, "max_retries": 0},
                      "phases": [{"name": "read", "stages": ["normalize", "length"]}]},
                     base_dir=str(tmp_path), output_override=True)
    result = run_job(spec, progress=False)  # raises ConservationError if the books do not balance
    phase = result.phases[0]
    assert result.exit_code == 0 and phase.quarantined == []
    rejected = pq.read_table(os.path.join(phase.phase_dir, "rejected")).to_pylist()
    kept = pq.read_table(result.final_data).to_pylist()
    assert phase.totals["rows_in"] == len(kept) + len(rejected)
    assert all(r["drop_reason"] and r["drop_stage"] == "read" for r in rejected)

    def file_of(row):
        """The input file a row comes from: `path#offset`, or for a folder shard `folder#member`."""
        where, _, offset = row["source"].partition("#")
        return f"{where}/{offset}" if (tmp_path / where).is_dir() else where

    reasons = {}
    for r in rejected:
        reasons.setdefault(file_of(r), set()).add(r["drop_reason"])
    # Each bad file, on its own, with its own reasons: a folder's other bad files cannot stand in for it.
    assert reasons == BAD_FILES
    kept_files = {file_of(k) for k in kept}
    for good in GOOD_FILES:
        assert good in kept_files, f"{good}: its good documents were lost"
    assert sum(file_of(k) == "in/jsonl/good.jsonl" for k in kept) == 3
    bomb_text = sum(len(k["text"]) for k in kept if file_of(k) == "in/jsonl/bomb.jsonl.gz")
    assert bomb_text <= max(LIMIT_FLOOR, (bad_inputs / "jsonl/bomb.jsonl.gz").stat().st_size * MAX_EXPANSION)


# Every bad input, and the reasons of its rejected rows: exactly these.
BAD_FILES = {
    "in/jsonl/cut.jsonl.gz": {"corrupt_compressed_stream"}, "in/jsonl/junk.jsonl": {"invalid_utf8"},
    "in/jsonl/empty.jsonl": {"empty_file"}, "in/jsonl/latin1.jsonl": {"invalid_utf8"},
    "in/jsonl/giant.jsonl": {"line_too_long"}, "in/jsonl/bomb.jsonl.gz": {"decompression_limit"},
    "in/cc/cut.warc.gz": {"truncated_record", "truncated_archive"}, "in/cc/junk.warc.gz": {"corrupt_archive"},
    "in/cc/empty.warc": {"empty_file"},
    "in/wiki/malformed.xml": {"malformed_xml"}, "in/wiki/corrupt.xml.bz2": {"corrupt_compressed_stream"},
    "in/wiki/empty.xml": {"empty_file"},
    "in/arxiv/junk/junk.tex": {"invalid_utf8"}, "in/arxiv/junk/empty.tex": {"empty_file"},
    "in/arxiv/broken/main.tex": {"malformed_latex"},
    "in/se/site.example/Posts.xml": {"malformed_xml"},
    "in/github/repo/junk.py": {"binary_file"}, "in/github/repo/latin1.py": {"invalid_utf8"},
    "in/github/repo/giant.js": {"line_too_long"},
    "in/books/shelf/junk.txt": {"invalid_utf8"}, "in/books/shelf/empty.txt": {"empty_file"},
}
# Inputs with good documents, each of which must reach the output (some also hold bad parts).
GOOD_FILES = ("in/jsonl/good.jsonl", "in/jsonl/cut.jsonl.gz", "in/jsonl/bomb.jsonl.gz", "in/cc/good.warc.gz",
              "in/cc/cut.warc.gz", "in/wiki/good.xml.bz2", "in/wiki/malformed.xml", "in/arxiv/paper/main.tex",
              "in/se/site.example/Posts.xml", "in/github/repo/good.py", "in/books/shelf/good.txt")
