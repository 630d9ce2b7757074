"""The normalize stage with its ftfy check (new path) against the same stage running ftfy on every text
(old path), on the same real documents, interleaved in one process; both outputs are checked equal.

    .venv/bin/python benchmarks/bench_normalize.py [--docs web,plays,pydoc,books] [--rounds 3] [--block 1]

Document sets (benchmarks/real_documents.py): `web`, every page of the web samples as visible text
(web-length); `plays`, the 78 Gutenberg Shakespeare plays whole (book-length, ~22,000 words); `pydoc`
and `books`, the Python docs pages and the plays cut into 500-6,000-word pieces. Both paths take an
Arrow batch of 1,000 documents and return it with the text column rewritten, default NormalizeConfig
(ftfy, control characters, NFC, strip). Old path: `ftfy.fix_text(text, **FTFY_SETTINGS)` on every text,
then the stage's other steps (what the stage did before the check). Rates are documents per CPU second
of this process (time.process_time; single-threaded); rounds alternate old and new, each running
`block` times with its best run counting, and the ratio is taken per round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import pyarrow as pa

BATCH_ROWS = 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", default="web,plays,pydoc,books", help="comma-separated document sets")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds")
    ap.add_argument("--block", type=int, default=1, help="runs of each path per round (its best counts)")
    args = ap.parse_args()

    import ftfy
    from real_documents import documents

    from corpus.stages.ftfy_triggers import FTFY_SETTINGS, ftfy_may_change
    from corpus.stages.normalize import NormalizeConfig, normalize, normalize_text

    cfg, rest = NormalizeConfig(), NormalizeConfig(fix_mojibake=False)

    def old_path(batch: pa.Table) -> pa.Table:
        texts = [normalize_text(ftfy.fix_text(t, **FTFY_SETTINGS), rest) for t in batch.column("text").to_pylist()]
        return batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts, pa.string()))

    def new_path(batch: pa.Table) -> pa.Table:
        return normalize(batch, cfg)

    summary = {}
    for name in args.docs.split(","):
        texts = documents(name)
        batches = [pa.table({"text": pa.array(texts[i:i + BATCH_ROWS], pa.string())})
                   for i in range(0, len(texts), BATCH_ROWS)]
        n_words = sorted(len(t.split()) for t in texts)
        checked = sum(ftfy_may_change(t) for t in texts)
        changed = sum(ftfy.fix_text(t, **FTFY_SETTINGS) != t for t in texts)
        print(f"{name}: {len(texts)} documents, {sum(map(len, texts)) / 1e6:.1f} M characters, words per document "
              f"median {n_words[len(n_words) // 2]:,} max {n_words[-1]:,}; the check sends {checked} to ftfy, "
              f"which changes {changed}")
        for b in batches:  # the contract: same output
            assert old_path(b).column("text").equals(new_path(b).column("text")), name
        rates = {"old": [], "new": []}
        for _ in range(args.rounds):
            for key, fn in (("old", old_path), ("new", new_path)):
                best = float("inf")
                for _ in range(args.block):
                    c0 = time.process_time()
                    for b in batches:
                        fn(b)
                    best = min(best, time.process_time() - c0)
                rates[key].append(len(texts) / best)
        ratios = [n / o for n, o in zip(rates["new"], rates["old"])]
        print(f"  old path (ftfy on every text)  docs / CPU s: median {statistics.median(rates['old']):9,.0f}")
        print(f"  new path (check, then ftfy)    docs / CPU s: median {statistics.median(rates['new']):9,.0f}")
        print(f"  new / old per round: median {statistics.median(ratios):.1f}x  min {min(ratios):.1f}x  "
              f"max {max(ratios):.1f}x")
        summary[name] = {"documents": len(texts), "to_ftfy": checked, "ftfy_changed": changed,
                         "old_docs_per_cpu_s": round(statistics.median(rates["old"])),
                         "new_docs_per_cpu_s": round(statistics.median(rates["new"])),
                         "ratio_median": round(statistics.median(ratios), 1), "ratio_min": round(min(ratios), 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
