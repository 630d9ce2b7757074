"""Language ID + quality classifier against raw fastText and datatrove's LanguageFilter, per core.

    .venv/bin/python benchmarks/bench_langid_quality.py [--rounds 5] [--batch 1000] [--sets mixed,web]

Four real data sets, each read once, the same list of texts for every contender:
- mixed: bench_quality_stages.py's list (1,500 Wikipedia leads + the pages of the first 100 files of
  each web sample), on which benchmarks/README.md gave 670 documents/s for language ID + quality;
- web: every web page of the samples as Common-Crawl-WET-like visible text (python-doc, newspaper4k,
  chardet, the CC WARC's HTML pages);
- wiki-leads: 1,500 English Wikipedia lead sections (wiki-summaries);
- enwiki: the 106 articles of gensim's enwiki dump excerpt as the `wikipedia` reader writes them (long).
Contenders, alternating within each round (so load on a shared machine hits all alike):
- fastText: lid.176.ftz's own `predict(text with newlines as spaces)`, one call per document: the peer,
  and the floor for any exact language ID with this model;
- datatrove: LanguageFilter(languages=[en]) on the same model file (when datatrove is installed);
- refinery langid / quality / langid + quality: the stages at `--batch` rows, as a shard runs them;
- quality, sklearn features: the same model scored through scikit-learn's HashingVectorizer.transform
  (the stage's feature code up to 2026-11-29), to show what corpus/quality/features.py saves.
Figures: documents per CPU-second of this process (time.process_time; BLAS pinned to one thread), best
and median round, and documents per wall-second (best). Checks printed below each table: refinery's
labels and scores against fastText's on the stage's one-line text (CCNet: whitespace runs, newlines
included, become one space), its labels against the peer's (newlines as spaces: the two differ where a
text holds non-ASCII spaces such as U+00A0, which Python splits on and fastText does not), and the
quality scores against the sklearn-features path (max absolute difference).
The quality model is trained here as bench_quality_stages.py trains it (800 leads, 40 files per web sample).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the comparison is per core

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


def data_sets(n_leads: int) -> dict[str, list[str]]:
    from bench_quality_stages import load_documents
    from bench_wikipedia import DUMPS, read_dumps
    from corpus.quality.data import WEB_SAMPLES, iter_web_pages, page_text, read_wiki_positives
    from corpus.samples import sample_path

    web = [t for _, raw in iter_web_pages({name: sample_path(name) for name in WEB_SAMPLES}, None)
           if (t := page_text(raw)).strip()]
    leads = [e.text for e in read_wiki_positives(sample_path("wiki-summaries"), n_leads)]
    enwiki = list(read_dumps([os.path.join(sample_path("gensim-wiki"), "dumps", DUMPS[0])]).values())
    mixed = load_documents(n_leads, 100)
    return {"mixed": mixed, "web": web, "wiki-leads": leads, "enwiki": enwiki}


def train_quality_model(folder: str) -> tuple[str, str]:
    from corpus.quality.data import sample_examples
    from corpus.quality.train import TrainSettings, save_model, train

    examples, folders = sample_examples(max_positives=800, max_pages=40)
    settings = TrainSettings()
    pipeline, metrics = train(examples, settings)
    path = os.path.join(folder, "quality_v1.npz")
    return path, save_model(pipeline, path, settings, metrics, {"samples": folders})["sha256"]


class Contender:
    def __init__(self, name: str, run):
        self.name, self.run, self.cpu, self.wall, self.result = name, run, [], [], None

    def time(self) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        self.result = self.run()
        self.cpu.append(time.process_time() - cpu)
        self.wall.append(time.perf_counter() - wall)


def contenders(texts: list[str], batch: int, model_path: str, quality_path: str, quality_sha: str) -> list[Contender]:
    import fasttext

    from corpus.stages.langid import LangIdConfig, LangIdScorer
    from corpus.stages.quality import QualityConfig, QualityScorer

    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.string())})
    slices = [table.slice(i, batch) for i in range(0, table.num_rows, batch)]
    fast_text = fasttext.load_model(model_path)
    langid = LangIdScorer(LangIdConfig())
    quality = QualityScorer(QualityConfig(model_path=quality_path, model_sha256=quality_sha, pareto_alpha=9.0))
    sklearn_features = quality.model.vectorizer()  # HashingVectorizer: has the same transform()
    out = [
        Contender("fastText predict (peer)", lambda: [fast_text.predict(t.replace("\n", " ")) for t in texts]),
        Contender("refinery langid", lambda: pa.concat_tables([langid(s) for s in slices])),
        Contender("refinery quality", lambda: np.concatenate([quality.score(s.column("text").to_pylist())
                                                              for s in slices])),
        Contender("quality, sklearn features", lambda: np.concatenate(
            [quality.model.score(s.column("text").to_pylist(), sklearn_features) for s in slices])),
        Contender("refinery langid + quality", lambda: pa.concat_tables([quality(langid(s)) for s in slices])),
    ]
    out[0].predict = fast_text.predict
    try:
        from bench_quality_stages import datatrove_language_filter
        from datatrove.data import Document

        language_filter = datatrove_language_filter(model_path)
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
        out.insert(1, Contender("datatrove LanguageFilter", lambda: [language_filter.filter(d) for d in docs]))
    except ImportError:
        print("(datatrove is not installed: `pip install -c constraints.txt -c benchmarks/constraints-bench.txt "
              "datatrove` adds its LanguageFilter)")
    return out


def report(name: str, texts: list[str], runs: list[Contender], fastText_result) -> None:
    n = len(texts)
    print(f"\n{name}: {n} documents, {sum(len(t.split()) for t in texts) / n:.0f} words and "
          f"{sum(map(len, texts)) / n:.0f} characters per document")
    print(f"  {'':28s} {'docs/CPU-s':>10s} {'median':>8s} {'docs/wall-s':>11s} {'CPU vs fastText':>15s}")
    peer = min(runs[0].cpu)
    for c in runs:
        best = min(c.cpu)
        print(f"  {c.name:28s} {n / best:10.0f} {n / statistics.median(c.cpu):8.0f} {n / min(c.wall):11.0f} "
              f"{peer / best:14.2f}x")
    by_name = {c.name: c for c in runs}
    ours = by_name["refinery langid"].result
    langs, scores = ours.column("lang_v1").to_pylist(), ours.column("lang_score_v1").to_pylist()
    predict = runs[0].predict
    exact = same_label = judged = 0
    for text, lang, score, (peer_labels, _) in zip(texts, langs, scores, fastText_result):
        line = " ".join(text.split())
        if len(line) - line.count(" ") < 10:  # the stage's min_chars: no label
            exact += lang is None and score == 0.0
            continue
        judged += 1
        labels, probs = predict(line)
        exact += (lang, score) == (labels[0].removeprefix("__label__"), min(float(probs[0]), 1.0))
        same_label += lang == peer_labels[0].removeprefix("__label__")
    print(f"  langid: label and score = fastText's on the same line for {exact} of {n}; label = the peer's "
          f"for {same_label} of the {judged} long enough to judge")
    q_new, q_old = by_name["refinery quality"].result, by_name["quality, sklearn features"].result
    print(f"  quality: max |refinery - sklearn features| = {np.max(np.abs(q_new - q_old)):.1e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds; the contenders alternate within each")
    ap.add_argument("--batch", type=int, default=1000, help="refinery batch rows")
    ap.add_argument("--leads", type=int, default=1500, help="Wikipedia leads")
    ap.add_argument("--sets", default="mixed,web,wiki-leads,enwiki", help="comma-separated data sets")
    args = ap.parse_args(argv)

    from corpus.stages.langid import default_model_path

    wanted = args.sets.split(",")
    sets = {name: texts for name, texts in data_sets(args.leads).items() if name in wanted}
    if unknown := set(wanted) - set(sets):
        ap.error(f"unknown data sets {sorted(unknown)}; known: mixed, web, wiki-leads, enwiki")
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds, batch {args.batch}; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        quality_path, quality_sha = train_quality_model(tmp)
        for name, texts in sets.items():
            runs = contenders(texts, args.batch, default_model_path(), quality_path, quality_sha)
            for c in runs:  # warm-up: first calls, lazy imports
                c.run()
            for _ in range(args.rounds):
                for c in runs:
                    c.time()
            report(name, texts, runs, runs[0].result)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}; target: language ID + quality >= 1,500 documents "
          f"per CPU-second on web-length documents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
