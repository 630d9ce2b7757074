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
                         deduplicate, no comments, 1 s timeout in a sandbox process)
  datatrove trafilatura, refinery's settings
                         the same, with the very call refinery makes (`trafilatura.extract(html, fast=True)`)
                         and a 60 s timeout (refinery has none): like for like, only the pipelines differ
Every contender runs once untimed on a 30-page WARC first (imports, lazy initialisation, datatrove's
sandbox process). Prints pages/s, MB/s of WARC, CPU seconds, mean token F1 (and P/R) vs. gold, and each
speed's ratio to datatrove's like-for-like run. Peers' versions: benchmarks/constraints-bench.txt.
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


def same_settings_extractor():
    """datatrove's Trafilatura step making refinery's call (corpus/sources/html_text.py), so that both
    sides extract with the same trafilatura settings; the timeout is raised so no page is lost to it."""
    from datatrove.pipeline.extractors import Trafilatura

    class RefinerySettings(Trafilatura):
        def extract(self, text: str) -> str:
            import trafilatura

            return trafilatura.extract(text, fast=True) or ""

    return RefinerySettings(timeout=60)


def run_datatrove(path: str, same_settings: bool = False) -> dict[str, str]:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader

    reader = WarcReader(os.path.dirname(path), glob_pattern=os.path.basename(path))
    extractor = same_settings_extractor() if same_settings else Trafilatura()
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
        warm = os.path.join(tmp, "warm-up.warc.gz")
        build_warc(os.path.join(news, "html"), warm, 1)
        contenders = [("refinery trafilatura", lambda p: run_refinery(p, "trafilatura")),
                      ("refinery resiliparse", lambda p: run_refinery(p, "resiliparse")),
                      ("refinery full_text", lambda p: run_refinery(p, "full_text"))]
        try:
            import datatrove  # noqa: F401

            contenders.append(("datatrove trafilatura", run_datatrove))
            contenders.append(("datatrove, refinery's settings", lambda p: run_datatrove(p, same_settings=True)))
        except ImportError:
            print("datatrove is not installed (pip install -c constraints.txt -c benchmarks/constraints-bench.txt "
                  "datatrove): peer skipped")
        for _, fn in contenders:
            fn(warm)
        results = {}
        for name, fn in contenders:
            start, cpu = time.perf_counter(), _cpu_seconds()
            out = fn(path)
            results[name] = (time.perf_counter() - start, _cpu_seconds() - cpu, out)
        peer = results.get("datatrove, refinery's settings")
        print(f"{'extractor':31s} {'pages/s':>8s} {'MB/s':>6s} {'cpu s':>6s} {'kept':>5s} {'P':>6s} {'R':>6s} "
              f"{'F1':>6s} {'speed vs datatrove like for like (wall, cpu)':>45s}")
        for name, (seconds, cpu, out) in results.items():
            p, r, f1, n = gold_scores(out, os.path.join(news, "txt"))
            kept = sum(1 for t in out.values() if t)
            ratio = f"{peer[0] / seconds:.2f}x, {peer[1] / cpu:.2f}x" if peer else "-"
            print(f"{name:31s} {pages / seconds:8.1f} {mb / seconds:6.2f} {cpu:6.1f} {kept:5d} {p:6.3f} {r:6.3f} "
                  f"{f1:6.3f} {ratio:>45s}")
        print(f"(MB/s of gzipped WARC, wall clock; cpu s: CPU seconds of this process and its finished children, "
              f"robust to other load; P/R/F1: mean token precision/recall/F1 vs. newspaper4k gold, {n} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
