"""WARC -> main text: refinery's `commoncrawl` reader vs. datatrove's WarcReader + Trafilatura, one WARC, one run.

    .venv/bin/python benchmarks/bench_warc_extract.py [--repeat 4] [--dest SAMPLES_DIR]

Input: the 30 real news pages of newspaper4k 0.9.6 (tests/data/html) written `--repeat` times as WARC
response records (warcio, gzip per record, with WARC-Identified-Payload-Type as modern Common Crawl
WARCs carry it), plus nothing else, so every record is an HTML page. 23 of the pages have newspaper4k's
gold article text (tests/data/txt); token F1 against it (corpus/sources/text_overlap.py: bag of tokens,
per character for CJK/Thai/Burmese) is measured on the reader's output, so charset handling counts too.

Contenders, each single-process (one core) on the same file:
  refinery trafilatura   read_commoncrawl, extractor=trafilatura (fast mode; the default)
  refinery resiliparse   read_commoncrawl, extractor=resiliparse (main content)
  refinery full_text     read_commoncrawl, extractor=full_text (all visible text, like WET; no boilerplate removal)
  datatrove trafilatura  datatrove WarcReader -> Trafilatura() with datatrove's defaults (favour_precision,
                         deduplicate, 1 s timeout in a sandbox process)
Prints pages/s, MB/s of WARC, mean token F1 (and P/R) vs. gold, and each speed's ratio to datatrove's.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from corpus.sources.base import Shard  # noqa: E402
from corpus.sources.commoncrawl import CommonCrawlConfig, read_commoncrawl  # noqa: E402
from corpus.samples import sample_path  # noqa: E402
from corpus.sources.text_overlap import token_prf  # noqa: E402

URL = "http://newspaper4k.sample/{name}?copy={copy}"


def build_warc(html_dir: str, path: str, repeat: int) -> int:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    names = sorted(n[:-5] for n in os.listdir(html_dir) if n.endswith(".html"))
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for copy in range(repeat):
            for name in names:
                with open(os.path.join(html_dir, name + ".html"), "rb") as page:
                    payload = page.read()
                http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
                record = writer.create_warc_record(URL.format(name=name, copy=copy), "response",
                                                   payload=io.BytesIO(payload), http_headers=http,
                                                   warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"})
                writer.write_record(record)
    return len(names) * repeat


def run_refinery(path: str, extractor: str) -> dict[str, str]:
    shard = Shard(key="0", source="commoncrawl", path=path, relpath=os.path.basename(path), domain="commoncrawl",
                  size=os.path.getsize(path))
    out = {}
    for batch in read_commoncrawl(shard, CommonCrawlConfig(extractor=extractor), batch_rows=1000):
        for url, text in zip(batch.documents.column("url").to_pylist(), batch.documents.column("text").to_pylist()):
            out[url] = text
        for row, _ in batch.rejected:
            out[row["url"]] = ""
    return out


def run_datatrove(path: str) -> dict[str, str]:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    reader = WarcReader(os.path.dirname(path), glob_pattern=os.path.basename(path))
    extractor = Trafilatura()
    return {doc.metadata["url"]: doc.text for doc in extractor.run(reader.run(None, 0, 1), 0, 1)}


def gold_scores(out: dict[str, str], txt_dir: str) -> tuple[float, float, float, int]:
    prf = []
    for name in sorted(n[:-4] for n in os.listdir(txt_dir) if n.endswith(".txt")):
        url = URL.format(name=name, copy=0)
        if url in out or os.path.exists(os.path.join(txt_dir, "..", "html", name + ".html")):
            with open(os.path.join(txt_dir, name + ".txt"), encoding="utf-8") as f:
                prf.append(token_prf(out.get(url, ""), f.read()))
    n = len(prf)
    return sum(p for p, _, _ in prf) / n, sum(r for _, r, _ in prf) / n, sum(f for _, _, f in prf) / n, n


def _cpu_seconds() -> float:
    """This process plus its reaped children (datatrove extracts in a sandbox process)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=4, help="copies of the 30 pages in the WARC")
    ap.add_argument("--dest", default=None, help="sample cache (default ~/.cache/refinery/samples)")
    args = ap.parse_args()
    news = sample_path("newspaper4k", args.dest)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "news.warc.gz")
        pages = build_warc(os.path.join(news, "html"), path, args.repeat)
        mb = os.path.getsize(path) / 1e6
        with open(path, "rb") as f:
            raw_mb = len(gzip.decompress(f.read())) / 1e6
        print(f"WARC: {pages} HTML responses, {mb:.2f} MB gzipped ({raw_mb:.1f} MB raw)")
        run_refinery(path, "trafilatura")  # warm-up: imports and lazy initialisation of both extractors
        run_refinery(path, "resiliparse")
        contenders = [("refinery trafilatura", lambda: run_refinery(path, "trafilatura")),
                      ("refinery resiliparse", lambda: run_refinery(path, "resiliparse")),
                      ("refinery full_text", lambda: run_refinery(path, "full_text"))]
        try:
            import datatrove  # noqa: F401

            contenders.append(("datatrove trafilatura", lambda: run_datatrove(path)))
        except ImportError:
            print("datatrove is not installed (pip install 'refinery[bench]'): peer skipped")
        results = {}
        for name, fn in contenders:
            start, cpu = time.perf_counter(), _cpu_seconds()
            out = fn()
            results[name] = (time.perf_counter() - start, _cpu_seconds() - cpu, out)
        peer = results.get("datatrove trafilatura")
        print(f"{'extractor':24s} {'pages/s':>8s} {'MB/s':>6s} {'cpu s':>6s} {'kept':>5s} {'P':>6s} {'R':>6s} "
              f"{'F1':>6s} {'speed vs datatrove (wall, cpu)':>31s}")
        for name, (seconds, cpu, out) in results.items():
            p, r, f1, n = gold_scores(out, os.path.join(news, "txt"))
            kept = sum(1 for t in out.values() if t)
            ratio = f"{peer[0] / seconds:.2f}x, {peer[1] / cpu:.2f}x" if peer else "-"
            print(f"{name:24s} {pages / seconds:8.1f} {mb / seconds:6.2f} {cpu:6.1f} {kept:5d} {p:6.3f} {r:6.3f} "
                  f"{f1:6.3f} {ratio:>31s}")
        print(f"(MB/s of gzipped WARC, wall clock; cpu s: CPU seconds of this process and its finished children, "
              f"robust to other load; P/R/F1: mean token precision/recall/F1 vs. newspaper4k gold, {n} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
