"""`refinery lm train` and `refinery lm cutoffs`: the perplexity stage's language models.

    refinery lm train --lang en [--corpus PATH ...] [--out DIR] [--vocab-size N] [--order 5]
    refinery lm cutoffs (--run RUN_DIR [--phase NAME] | --parquet PATH ... | --web-samples) --lang en [--out FILE]

`train` writes `<lang>.sp.model`, `<lang>.kenlm` and `<lang>.json` (sha256s, corpus, settings, date)
into --out; by default it trains on the sample corpus's Wikipedia summaries. `cutoffs` scores a sample
of the user's documents with that model and writes the 30th / 60th percentiles to a cut-offs file that
the perplexity stage's `cutoffs` setting names.
"""

from __future__ import annotations

import json
import os
import sys
import time

DEFAULT_MODEL_DIR = os.path.join("~", ".cache", "refinery", "lm")


def register(subparsers) -> None:
    lm = subparsers.add_parser("lm", help="train KenLM perplexity models and their bucket cut-offs")
    actions = lm.add_subparsers(dest="lm_command", required=True)

    train = actions.add_parser("train", help="train SentencePiece + KenLM for one language")
    train.add_argument("--lang", required=True, help="language code, e.g. en")
    train.add_argument("--corpus", nargs="+", default=None, metavar="PATH",
                       help=".txt, .jsonl[.gz] ('text') or .parquet ('text') files; default: the "
                            "Wikipedia summaries of the sample corpus (en, fr, es)")
    train.add_argument("--out", default=DEFAULT_MODEL_DIR, help=f"model folder (default {DEFAULT_MODEL_DIR})")
    train.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary (default 8000)")
    train.add_argument("--order", type=int, default=5, help="n-gram order (default 5)")
    train.add_argument("--memory", default="1G", help="lmplz -S memory for sorting (default 1G)")
    train.add_argument("--bin-dir", default=None,
                       help="folder of lmplz/build_binary (default: the venv's bin, then PATH)")
    train.set_defaults(handler=_train)

    cut = actions.add_parser("cutoffs", help="percentile cut-offs of perplexity on a sample of your data")
    where = cut.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", default=None, help="run folder (<output>/<job name>); uses a phase's data/")
    where.add_argument("--parquet", nargs="+", default=None, metavar="PATH", help="Parquet files with `text`")
    where.add_argument("--web-samples", action="store_true",
                       help="the web pages of the sample corpus (its Common Crawl WARC, news and documentation "
                            "pages; the quality classifier's negatives), before any run: cc_net likewise "
                            "ships cut-offs computed once on a sample of a crawl")
    cut.add_argument("--phase", default=None, help="with --run: phase name (default: the first phase)")
    cut.add_argument("--lang", required=True)
    cut.add_argument("--lang-column", default="lang_v1", help="rows of other languages are skipped")
    cut.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    cut.add_argument("--out", default=None, help="cut-offs JSON (default <model-dir>/cutoffs.json)")
    cut.add_argument("--sample", type=int, default=10_000, help="documents sampled (default 10000)")
    cut.add_argument("--seed", type=int, default=0)
    cut.add_argument("--percentiles", default="30,60", help="head,tail percentiles (default 30,60)")
    cut.set_defaults(handler=_cutoffs)


def _train(args) -> int:
    from corpus.lm.tools import ToolMissing
    from corpus.lm.train import read_corpus, read_reference, train_language_model

    if args.corpus:
        docs, source = read_corpus(args.corpus), {"files": [os.path.abspath(p) for p in args.corpus]}
    else:
        from corpus.lm.train import REFERENCE_SAMPLE
        from jobs.commands.samples import samples_dest_for

        docs, source = read_reference(args.lang, samples_dest_for(REFERENCE_SAMPLE))
    start = time.perf_counter()
    try:
        meta = train_language_model(docs, lang=args.lang, out_dir=args.out, source=source,
                                    vocab_size=args.vocab_size, order=args.order, memory=args.memory,
                                    bin_dir=args.bin_dir)
    except ToolMissing as exc:
        print(f"refinery lm train: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    files = meta["files"]
    t = meta["training"]
    print(f"{args.lang}: {t['n_docs']} docs, {t['n_lines']} lines, {t['n_pieces']} pieces, "
          f"{t['n_heldout_docs']} held out; trained in {seconds:.1f} s")
    for role, f in files.items():
        print(f"  {role:13s} {os.path.join(os.path.expanduser(args.out), f['path'])} "
              f"({f['bytes'] / 1e6:.2f} MB, sha256 {f['sha256'][:12]}...)")
    if "heldout_ppl" in meta:
        print(f"  held-out perplexity quantiles: {json.dumps(meta['heldout_ppl'])}")
    return 0


def _cutoffs(args) -> int:
    from corpus.lm.cutoffs import compute_cutoffs, run_parquet_files, sample_texts, write_cutoffs
    from corpus.lm.model import LanguageModel, metadata_path

    percentiles = tuple(float(p) for p in args.percentiles.split(","))
    if len(percentiles) != 2 or not 0 < percentiles[0] < percentiles[1] < 100:
        print("refinery lm cutoffs: --percentiles takes head,tail with 0 < head < tail < 100",
              file=sys.stderr)
        return 2
    if args.web_samples:
        from corpus.lm.cutoffs import web_sample_texts
        from corpus.samples import SampleUnavailable

        try:
            texts, seen, paths = *web_sample_texts(args.lang, n=args.sample, seed=args.seed), ["web samples"]
        except SampleUnavailable as exc:
            print(f"refinery lm cutoffs: {exc}. Fix: `refinery samples fetch`", file=sys.stderr)
            return 1
    else:
        try:
            paths = run_parquet_files(args.run, args.phase) if args.run else args.parquet
        except FileNotFoundError as exc:
            print(f"refinery lm cutoffs: {exc}", file=sys.stderr)
            return 2
        texts, seen = sample_texts(paths, lang=args.lang, lang_column=args.lang_column, n=args.sample,
                                   seed=args.seed)
    if not texts:
        print(f"refinery lm cutoffs: no {args.lang!r} document in {len(paths)} files", file=sys.stderr)
        return 1
    model_file = metadata_path(args.model_dir, args.lang)
    model = LanguageModel(model_file)
    cutoffs = compute_cutoffs(model.score_texts(texts), percentiles)
    cutoffs.update(source="web samples" if args.web_samples else args.run or "parquet files", n_files=len(paths), n_candidates=seen,
                   model=model.metadata["files"]["kenlm"]["sha256"], seed=args.seed,
                   created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    out = args.out or os.path.join(args.model_dir, "cutoffs.json")
    write_cutoffs(out, args.lang, cutoffs, percentiles)
    print(f"{args.lang}: head < {cutoffs['head']:.1f} <= middle < {cutoffs['tail']:.1f} <= tail "
          f"(percentiles {percentiles[0]:g}/{percentiles[1]:g} of {cutoffs['n_docs']} sampled "
          f"of {seen}) -> {out}")
    return 0
