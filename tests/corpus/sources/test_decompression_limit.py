"""One limit on decompression for every reader: an input that expands past 250x its size (all its
streams, members and records together) is stopped with one `decompression_limit` reject row.

Each bomb below keeps every line, page, member, record and row under that reader's own per-item
caps: only the total gives it away. Each is about 8 MB of repeated text in a file of a few KB.
"""

import bz2
import gzip
import io
import json
import os
import tarfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.sources import SOURCES
from corpus.sources.base import Shard
from corpus.sources.open_input import LIMIT_FLOOR, MAX_EXPANSION

TOTAL = 8 << 20
LINE = "spam "  # a short period and long lines: deflate gets past 500x (a sentence in short lines: ~250x)


def paragraphs(n_bytes, width=100_000):
    """Text of about n_bytes in lines of `width` characters."""
    line = (LINE * (width // len(LINE) + 1))[:width] + "\n"
    return line * (n_bytes // len(line) + 1)


def jsonl_bomb(d):
    path = d / "bomb.jsonl.gz"
    with gzip.open(path, "wt", compresslevel=9) as f:
        f.writelines(json.dumps({"text": paragraphs(100_000)}) + "\n" for _ in range(TOTAL // 100_000))
    return path


def wikipedia_bomb(d):
    pages = "".join(f"<page><title>P{i}</title><ns>0</ns><id>{i + 1}</id><revision><id>{i}</id><text>"
                    f"{paragraphs(40_000)}</text></revision></page>" for i in range(TOTAL // 40_000))
    path = d / "bomb.xml.bz2"
    path.write_bytes(bz2.compress(f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">{pages}'
                                  "</mediawiki>".encode()))
    return path


def stackexchange_bomb(d):
    body = paragraphs(100_000).replace("\n", " ")
    rows = "".join(f'  <row Id="{i}" PostTypeId="1" Score="1" Title="Q{i}" Body="{body}" />\n'
                   for i in range(1, TOTAL // 100_000))
    site = d / "dump" / "bomb.example"
    site.mkdir(parents=True)
    path = site / "Posts.xml.gz"
    path.write_bytes(gzip.compress(f'<?xml version="1.0" encoding="utf-8"?>\n<posts>\n{rows}</posts>\n'.encode(), 9))
    return path


def arxiv_bomb(d):
    path = d / "main.tex.gz"
    path.write_bytes(gzip.compress(("\\documentclass{article}\\begin{document}\\section{A}\n" + paragraphs(TOTAL)
                                    + "\\end{document}\n").encode(), 9))
    return path


def _members(kind):
    """(name, bytes): an MIT package file, then files of 200 KB each (under every reader's per-file cap)."""
    text = paragraphs(200_000).encode()
    files = [("repo/Cargo.toml", b'[package]\nname = "repo"\nlicense = "MIT"\n')]
    if kind == "github":
        files += [(f"repo/src/m{i}.py", text.replace(b"The same", b"# The same")) for i in range(TOTAL // 200_000)]
    elif kind == "books":
        files += [(f"repo/book{i}.txt", text) for i in range(TOTAL // 200_000)]
    else:
        files += [(f"repo/paper{i}.tex", b"\\documentclass{article}\\begin{document}\\section{A}\n" + text)
                  for i in range(TOTAL // 200_000)]
    return files


def tar_bomb(kind):
    def make(d):
        path = d / "repo.tar.gz"
        with tarfile.open(path, "w:gz", compresslevel=9) as tar:
            for name, data in _members(kind):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path
    return make


def zip_bomb(kind):
    def make(d):
        path = d / "repo.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for name, data in _members(kind):
                zf.writestr(name, data)
        return path
    return make


def warc_bomb(d):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = d / "bomb.warc.gz"
    page = f"<html><body><article><p>{paragraphs(400_000)}</p></article></body></html>".encode()
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for i in range(TOTAL // 400_000):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
            writer.write_record(writer.create_warc_record(f"http://example.org/{i}", "response",
                                                          payload=io.BytesIO(page), http_headers=headers))
    return path


def parquet_bomb(d):
    # Dictionary encoding stores the one value once: 2000 rows of 100 KB in a file of a few KB.
    path = d / "bomb.parquet"
    pq.write_table(pa.table({"text": [paragraphs(100_000)] * 2000}), path)
    return path


BOMBS = {
    "jsonl": ("jsonl", jsonl_bomb), "wikipedia": ("wikipedia", wikipedia_bomb),
    "stackexchange": ("stackexchange", stackexchange_bomb), "arxiv-gz": ("arxiv", arxiv_bomb),
    "github-tar": ("github", tar_bomb("github")), "github-zip": ("github", zip_bomb("github")),
    "books-tar": ("books", tar_bomb("books")), "books-zip": ("books", zip_bomb("books")),
    "arxiv-tar": ("arxiv", tar_bomb("arxiv")), "commoncrawl": ("commoncrawl", warc_bomb),
    "parquet": ("parquet", parquet_bomb),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_every_reader_stops_a_decompression_bomb_with_one_reason(case, tmp_path):
    source, make = BOMBS[case]
    path = make(tmp_path)
    size = os.path.getsize(path)
    assert size * MAX_EXPANSION < TOTAL and LIMIT_FLOOR < TOTAL, "not a bomb: the test data is wrong"
    shard = Shard(key="00000", source=source, path=str(path), relpath=path.name, domain="c4", size=size)
    spec = SOURCES[source]
    docs, reasons, text = 0, [], 0
    for batch in spec.read(shard, spec.config(), 16):
        docs += batch.documents.num_rows
        text += sum(len(t) for t in batch.documents.column("text").to_pylist())
        reasons += [reason for _, reason in batch.rejected]
    assert reasons.count("decompression_limit") == 1, reasons
    assert not {"corrupt_compressed_stream", "corrupt_archive", "invalid_parquet"} & set(reasons), reasons
    # the documents read before the limit, and no more (a WARC record is checked as a whole: 400 KB)
    assert text <= max(LIMIT_FLOOR, size * MAX_EXPANSION) + 400_000
