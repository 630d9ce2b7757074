"""Wikipedia reader speed and text quality on the sample dumps, against the plain mwparserfromhell parse.

    .venv/bin/python benchmarks/bench_wikipedia.py [--repeat 3]

Input: gensim 4.4.0's enwiki excerpt (106 articles + 100 redirects, bz2) and bgwiki excerpt (1 article,
UTF-16), read whole by the `wikipedia` reader (bz2 + XML + wikitext), three ways in one process:
- refinery: the reader as it is (regex pre-pass, then mwparserfromhell, then our renderer);
- before: the same reader with the pre-pass switched off (the reader's output up to 2026-11-29);
- strip_code: the same reader with mwparserfromhell's own `Wikicode.strip_code()` as the renderer (the
  library's plain-text conversion, no section rules).
The three alternate, `--repeat` rounds; figures are articles per CPU-second of this process
(time.process_time: other load on a shared machine barely moves them) and per wall-second, best round.
Text quality: per article, refinery's text against `before` (identical, or the changed lines shown), and
for each output the count of leftover markup: "{{", "}}", "[[", "]]", "<ref", "<!--", "{|", "|}", and lines
that start with "|" (table rows).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from corpus.samples import sample_path  # noqa: E402
from corpus.sources import wikipedia, wikitext  # noqa: E402
from corpus.sources.base import Shard  # noqa: E402
from corpus.sources.wikipedia import WikipediaConfig, read_wikipedia  # noqa: E402

DUMPS = ("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
         "bgwiki-latest-pages-articles-shortened.xml.bz2")
MARKUP = ("{{", "}}", "[[", "]]", "<ref", "<!--", "{|", "|}")


def read_dumps(paths: list[str]) -> dict[str, str]:
    """title -> text of every article the reader keeps."""
    out = {}
    for path in paths:
        shard = Shard(key="00000", source="wikipedia", path=path, relpath=os.path.basename(path),
                      domain="wikipedia", size=os.path.getsize(path))
        for batch in read_wikipedia(shard, WikipediaConfig(), 1000):
            for row in batch.documents.to_pylist():
                out[json.loads(row["meta"])["title"]] = row["text"]
    return out


def strip_code_text(text: str, *, namespaces, drop_sections) -> str:
    return wikitext.require_mwparserfromhell().parse(text).strip_code().strip()


class Variant:
    """Runs the reader with a module's function swapped (module, name, replacement) for one read."""

    def __init__(self, name: str, swap: tuple | None = None):
        self.name, self.swap, self.cpu, self.wall = name, swap, [], []

    def read(self, paths: list[str]) -> dict[str, str]:
        if self.swap:
            module, attr, fn = self.swap
            saved = getattr(module, attr)
            setattr(module, attr, fn)
        try:
            cpu, wall = time.process_time(), time.perf_counter()
            texts = read_dumps(paths)
            self.cpu.append(time.process_time() - cpu)
            self.wall.append(time.perf_counter() - wall)
        finally:
            if self.swap:
                setattr(module, attr, saved)
        return texts


def leftovers(texts: dict[str, str]) -> dict[str, int]:
    joined = "\n".join(texts.values())
    counts = {m: joined.count(m) for m in MARKUP}
    counts["| rows"] = sum(line.startswith("|") for line in joined.split("\n"))
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the three variants alternate in each")
    ap.add_argument("--diffs", type=int, default=20, help="changed lines shown per differing article")
    args = ap.parse_args(argv)

    folder = os.path.join(sample_path("gensim-wiki"), "dumps")
    paths = [os.path.join(folder, name) for name in DUMPS]
    import mwparserfromhell

    # The reader imported wikitext_to_text by name: strip_code is swapped in where the reader looks it up.
    variants = [Variant("refinery"), Variant("before", (wikitext, "strip_dropped_markup", lambda text: text)),
                Variant("strip_code", (wikipedia, "wikitext_to_text", strip_code_text))]
    for v in variants:  # warm-up: imports, regex compilation
        v.read(paths[1:])
        v.cpu.clear(), v.wall.clear()
    outputs = {}
    for _ in range(args.repeat):
        for v in variants:
            outputs[v.name] = v.read(paths)
    n = len(outputs["refinery"])
    mb = sum(os.path.getsize(p) for p in paths) / 1e6
    print(f"{n} articles ({mb:.1f} MB of bz2), mwparserfromhell {mwparserfromhell.__version__} "
          f"(C tokenizer: {mwparserfromhell.parser.use_c}), python {sys.version.split()[0]}, {args.repeat} rounds")
    print(f"{'':12s} {'CPU s best':>10s} {'median':>8s} {'articles/CPU-s':>14s} {'wall s best':>11s} "
          f"{'articles/wall-s':>15s} {'CPU vs before':>13s}")
    base = min(variants[1].cpu)
    for v in variants:
        best = min(v.cpu)
        print(f"{v.name:12s} {best:10.2f} {statistics.median(v.cpu):8.2f} {n / best:14.1f} {min(v.wall):11.2f} "
              f"{n / min(v.wall):15.1f} {base / best:12.2f}x")

    ours, before = outputs["refinery"], outputs["before"]
    same = [t for t in ours if ours[t] == before.get(t)]
    print(f"\ntext vs before: {len(same)} of {len(ours)} articles identical"
          f"{'' if set(ours) == set(before) else f'; articles only in one: {sorted(set(ours) ^ set(before))}'}")
    for title in sorted(set(ours) & set(before)):
        if ours[title] != before[title]:
            diff = [d for d in difflib.unified_diff(before[title].split("\n"), ours[title].split("\n"),
                                                    lineterm="", n=0) if d[:1] in "+-" and d[:3] not in ("+++", "---")]
            print(f"  {title}: {len(diff)} changed lines")
            for line in diff[:args.diffs]:
                print(f"    {line[:160]}")
    print(f"\nleftover markup ({', '.join(repr(m) for m in MARKUP)}, lines starting with '|'):")
    for name in ("refinery", "before", "strip_code"):
        counts = leftovers(outputs[name])
        words = sum(len(t.split()) for t in outputs[name].values())
        print(f"  {name:12s} {sum(counts.values()):6d} total  {json.dumps(counts)}  ({words} words)")
    print("target: >= 50 articles per CPU-second, text identical to before or cleaner")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
