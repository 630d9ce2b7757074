"""Per-rule keep/drop agreement of refinery's heuristic stages with datatrove's filters, same documents.

    .venv/bin/python benchmarks/bench_heuristics_agreement.py [--wiki 1500] [--pages 0]

Each Gopher rule is run alone on both sides: refinery with every other threshold of its config
switched off, datatrove with every other argument of its filter set to None (or an empty n-gram
list). A rule's agreement is the share of documents on which both sides make the same decision
(fails the rule, or not); the counts show who drops what. C4's rules interact (a page-level rule only
sees the lines the line rules keep), so C4 is compared whole and with one rule switched off at a time
on both sides. The last rows are the whole chain (Gopher quality + repetition + C4), as the demo job
runs it, so the per-rule rows explain the chain's figure.

datatrove runs twice: with its default English word tokenizer (spaCy, which makes every punctuation
mark a word) and with a whitespace word tokenizer (`str.split`, the words refinery and the Gopher paper
count), like for like. Sentences (C4) are spaCy's in both runs. Documents: the same list as
bench_quality_stages.py (English Wikipedia leads + every web page of the samples as full visible text).
Peers' versions: benchmarks/constraints-bench.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys

import numpy as np
import pyarrow as pa

from bench_quality_stages import load_documents, require_datatrove, whitespace_words


def memoize_word_split() -> None:
    """Every single-rule filter tokenizes every document: tokenize each document once per tokenizer
    instead. Only the agreement is measured here, never the time, so the cache changes no figure."""
    import datatrove.pipeline.filters.gopher_quality_filter as gq
    import datatrove.pipeline.filters.gopher_repetition_filter as gr

    split = gq.split_into_words

    @functools.lru_cache(maxsize=None)
    def cached(text: str, language) -> tuple[str, ...]:
        return tuple(split(text, language))

    gq.split_into_words = gr.split_into_words = lambda text, language: list(cached(text, language))


def datatrove_fails(filt, texts: list[str]) -> np.ndarray:
    from datatrove.data import Document

    out = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        try:
            result = filt.filter(Document(text=text, id=str(i)))
        except ZeroDivisionError:  # a rule alone on a document without words: it has nothing to pass
            result = False
        out[i] = not (result if isinstance(result, bool) else result[0])
    return out


def refinery_fails(fn, cfg, column: str, table: pa.Table, batch: int = 1000) -> np.ndarray:
    parts = [fn(table.slice(i, batch), cfg).column(column) for i in range(0, table.num_rows, batch)]
    return np.array([r is not None for p in parts for r in p.to_pylist()], dtype=bool)


def quality_rules():
    from corpus.stages.gopher_quality import GopherQualityConfig

    off = GopherQualityConfig(min_words=0, max_words=10**15, min_mean_word_len=0.0, max_mean_word_len=1e18,
                              max_hash_word_ratio=1e18, max_ellipsis_word_ratio=1e18, max_bullet_lines=1.0,
                              max_ellipsis_lines=1.0, min_alpha_words=0.0, min_stop_words=0)
    dt_off = dict(min_doc_words=None, max_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
                  max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
                  max_non_alpha_words_ratio=None, min_stop_words=None)
    # (name, refinery fields taken from the defaults, datatrove arguments left at their defaults)
    return off, dt_off, [
        ("word count (50..100,000)", ("min_words", "max_words"), ("min_doc_words", "max_doc_words")),
        ("mean word length (3..10)", ("min_mean_word_len", "max_mean_word_len"),
         ("min_avg_word_length", "max_avg_word_length")),
        ("'#' and ellipsis per word (0.1)", ("max_hash_word_ratio", "max_ellipsis_word_ratio"),
         ("max_symbol_word_ratio",)),
        ("bullet lines (0.9)", ("max_bullet_lines",), ("max_bullet_lines_ratio",)),
        ("ellipsis-ending lines (0.3)", ("max_ellipsis_lines",), ("max_ellipsis_lines_ratio",)),
        ("alphabetic words (0.8)", ("min_alpha_words",), ("max_non_alpha_words_ratio",)),
        ("stop words (2)", ("min_stop_words",), ("min_stop_words",)),
    ], GopherQualityConfig()


def repetition_rules():
    from corpus.stages.gopher_repetition import GopherRepetitionConfig

    d = GopherRepetitionConfig()
    off = GopherRepetitionConfig(dup_line_frac=1.0, dup_line_char_frac=1.0, dup_para_frac=1.0,
                                 dup_para_char_frac=1.0, top_ngram_char_frac={}, dup_ngram_char_frac={})
    dt_off = dict(dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=None, dup_para_char_frac=None,
                  top_n_grams=(), dup_n_grams=())
    names = {"dup_line_frac": "duplicate lines", "dup_line_char_frac": "duplicate line characters",
             "dup_para_frac": "duplicate paragraphs", "dup_para_char_frac": "duplicate paragraph characters"}
    rules = [(f"{name} ({getattr(d, k)})", {k: getattr(d, k)}, {k: getattr(d, k)}) for k, name in names.items()]
    rules += [(f"top {n}-gram characters ({f})", {"top_ngram_char_frac": {n: f}}, {"top_n_grams": ((n, f),)})
              for n, f in d.top_ngram_char_frac.items()]
    rules += [(f"duplicate {n}-gram characters ({f})", {"dup_ngram_char_frac": {n: f}}, {"dup_n_grams": ((n, f),)})
              for n, f in d.dup_ngram_char_frac.items()]
    return off, dt_off, rules


def row(name: str, ours: np.ndarray, theirs: dict[str, np.ndarray]) -> None:
    line = f"{name:38s} {int(ours.sum()):7d}"
    for fails in theirs.values():
        both = int((ours & fails).sum())
        line += (f" | {int(fails.sum()):7d} {float(np.mean(ours == fails)):7.3f}"
                 f" {int((ours & ~fails).sum()):6d} {int((~ours & fails).sum()):6d} {both:6d}")
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wiki", type=int, default=1500, help="Wikipedia leads")
    ap.add_argument("--pages", type=int, default=0, help="files per web sample (0 = all)")
    ap.add_argument("--no-c4-ablations", action="store_true",
                    help="C4 whole only (each ablation is a full spaCy pass on datatrove's side)")
    args = ap.parse_args(argv)
    require_datatrove()
    memoize_word_split()

    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter
    from datatrove.utils.typeshelper import Languages

    from corpus.stages.c4_rules import C4RulesConfig, score_c4_rules
    from corpus.stages.gopher_quality import score_gopher_quality
    from corpus.stages.gopher_repetition import score_gopher_repetition

    texts = load_documents(args.wiki, args.pages or None)
    table = pa.table({"text": pa.array(texts, pa.string())})
    tokenizers = {"spaCy": Languages.english, "whitespace": whitespace_words()}
    print(f"{len(texts)} documents ({args.wiki} Wikipedia leads + {len(texts) - args.wiki} web pages); "
          f"python {sys.version.split()[0]}")
    head = f"{'rule (alone)':38s} {'ours':>7s}"
    for tok in tokenizers:
        head += f" | {'dt ' + tok[:6]:>7s} {'agree':>7s} {'only us':>6s} {'only dt':>6s} {'both':>6s}"
    print("drops per rule: refinery ('ours') and datatrove ('dt') with each word tokenizer\n" + head)

    off, dt_off, rules, defaults = quality_rules()
    for name, ours_fields, dt_fields in rules:
        cfg = dataclasses.replace(off, **{f: getattr(defaults, f) for f in ours_fields})
        ours = refinery_fails(score_gopher_quality, cfg, "gopher_quality_reason_v2", table)
        dt_args = {k: v for k, v in dt_off.items() if k not in dt_fields}
        row("quality: " + name, ours, {t: datatrove_fails(GopherQualityFilter(language=lang, **dt_args), texts)
                                       for t, lang in tokenizers.items()})

    off, dt_off, rules = repetition_rules()
    for name, ours_fields, dt_fields in rules:
        cfg = dataclasses.replace(off, **ours_fields)
        ours = refinery_fails(score_gopher_repetition, cfg, "gopher_repetition_reason_v2", table)
        dt_args = {**dt_off, **dt_fields}
        row("repetition: " + name, ours, {t: datatrove_fails(GopherRepetitionFilter(language=lang, **dt_args),
                                                             texts) for t, lang in tokenizers.items()})

    # C4: whole, then one rule off on both sides (sentences are spaCy's for both datatrove runs).
    d = C4RulesConfig()
    c4_variants = [
        ("all rules", {}, {}),
        ("without min. sentences", {"min_sentences": 0}, {"min_num_sentences": -1}),
        ("without min. words per line", {"min_words_per_line": 0}, {"min_words_per_line": -1}),
        ("without long-word lines", {"max_word_length": 10**9}, {"max_word_length": -1}),
        ("without lorem ipsum", {"drop_lorem_ipsum": False}, {"filter_lorem_ipsum": False}),
        ("without curly bracket", {"drop_curly_bracket": False}, {"filter_curly_bracket": False}),
        ("without policy lines", {"policy_phrases": ()}, {"filter_policy": False}),
    ]
    c4_ours = {}
    for name, ours_args, dt_args in c4_variants[:1] if args.no_c4_ablations else c4_variants:
        ours = refinery_fails(score_c4_rules, dataclasses.replace(d, **ours_args), "c4_drop_reason_v1", table)
        theirs = datatrove_fails(C4QualityFilter(**dt_args), texts)
        c4_ours.setdefault("all", (ours, theirs))
        row("C4: " + name, ours, {t: theirs for t in tokenizers})

    # The chain as the demo job runs it: a document is kept when it passes all three stages.
    from corpus.stages.gopher_quality import GopherQualityConfig
    from corpus.stages.gopher_repetition import GopherRepetitionConfig

    ours = (refinery_fails(score_gopher_quality, GopherQualityConfig(), "gopher_quality_reason_v2", table)
            | refinery_fails(score_gopher_repetition, GopherRepetitionConfig(), "gopher_repetition_reason_v2", table)
            | c4_ours["all"][0])
    chain = {t: datatrove_fails(GopherQualityFilter(language=lang), texts)
             | datatrove_fails(GopherRepetitionFilter(language=lang), texts) | c4_ours["all"][1]
             for t, lang in tokenizers.items()}
    row("chain: quality + repetition + C4", ours, chain)
    kept = {t: int((~f).sum()) for t, f in chain.items()}
    print(f"kept by the chain: refinery {int((~ours).sum())}, "
          + ", ".join(f"datatrove ({t}) {k}" for t, k in kept.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
