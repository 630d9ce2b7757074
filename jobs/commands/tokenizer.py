"""`refinery tokenizer train --run RUN_DIR | --parquet PATHS [--vocab-size N] [--sample-docs N] --out DIR`.

Trains a byte-level BPE tokenizer on a deterministic sample of the corpus (training.tokenizer) and
saves tokenizer.json + refinery_tokenizer.json into DIR.
"""

from __future__ import annotations

import sys

from jobs.errors import EXIT_INVALID, CommandError


def register(subparsers) -> None:
    tok = subparsers.add_parser("tokenizer", help="train the byte-level BPE tokenizer on the corpus")
    actions = tok.add_subparsers(dest="tokenizer_command", required=True)
    train = actions.add_parser("train", help="train on a sample of a run's final data or of Parquet files")
    src = train.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", default=None, help="run folder (<output>/<job name>) whose final data to sample")
    src.add_argument("--parquet", nargs="+", default=None, help="Parquet files, folders or globs (id, text columns)")
    train.add_argument("--vocab-size", type=int, default=32000, help="vocabulary size (default 32000)")
    train.add_argument("--sample-docs", type=int, default=100_000, help="documents to sample (default 100000)")
    train.add_argument("--min-frequency", type=int, default=2, help="min pair count to merge (default 2)")
    train.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    train.add_argument("--out", required=True, help="output folder")
    train.set_defaults(handler=_train)


def parquet_inputs(run: str | None, parquet: list[str] | None) -> list[str]:
    from corpus.io.files import expand_paths, join

    if run:
        from jobs.export_megatron import resolve_final_data

        return expand_paths([join(resolve_final_data(run), "*", "*.parquet")])
    return [p for p in expand_paths(parquet) if p.endswith(".parquet")]


def _train(args) -> int:
    from corpus.io.parquet import read_batches
    from training.tokenizer import TokenizerTrainConfig, sample_documents, save_tokenizer, train_bpe

    try:
        cfg = TokenizerTrainConfig(vocab_size=args.vocab_size, sample_docs=args.sample_docs,
                                   min_frequency=args.min_frequency, seed=args.seed)
        paths = parquet_inputs(args.run, args.parquet)
    except (ValueError, FileNotFoundError) as exc:
        print(f"refinery: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print("refinery: no Parquet files to sample", file=sys.stderr)
        return 2
    tables = (t for p in paths for t in read_batches(p, 10_000, columns=["id", "text"]))
    sample = sample_documents(tables, cfg.sample_docs, cfg.seed)
    if not sample.texts and args.run:
        raise CommandError(f"the run kept 0 documents: no text to train a tokenizer on. Fix: see which stage "
                           f"dropped them with `refinery stats {args.run}`, loosen it, and build again", EXIT_INVALID)
    if not sample.texts:
        raise CommandError("the Parquet files hold no documents", EXIT_INVALID)
    tokenizer = train_bpe(sample.texts, cfg)
    config = save_tokenizer(tokenizer, args.out, cfg=cfg, sample=sample, sources=paths)
    print(f"tokenizer: {args.out}/tokenizer.json  vocab {config['vocab_size']}  sha256 {config['tokenizer_sha256'][:16]}"
          f"  sample {len(sample.texts)} of {sample.seen} docs ({sample.chars} chars)")
    return 0
