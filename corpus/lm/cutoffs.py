"""Per-language perplexity cut-offs and the head / middle / tail buckets (CCNet's PerplexityBucket).

A document whose perplexity is below the language's head cut-off (30th percentile by default) is
`head`, below the tail cut-off (60th percentile) `middle`, else `tail`; CCNet's defaults, which
LLaMA-1's CCNet pipeline inherited. The cut-offs come from a sample of the data being filtered (`refinery
lm cutoffs`), since the same model gives very different perplexities on web text and on its own
reference text. A document without a perplexity, or in a language without cut-offs, gets no bucket.

File format (JSON): {"format": "refinery-lm-cutoffs/1", "percentiles": [30, 60],
"languages": {"en": {"head": 512.3, "tail": 987.6, "n_docs": 5000, "source": "...", "created": "..."}}}
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa

from corpus.io.files import write_atomic

FORMAT = "refinery-lm-cutoffs/1"
DEFAULT_PERCENTILES = (30.0, 60.0)
BUCKETS = ("head", "middle", "tail")


def compute_cutoffs(ppl, percentiles: tuple[float, float] = DEFAULT_PERCENTILES) -> dict:
    """Head and tail cut-offs (linear-interpolated percentiles) of the finite perplexities given."""
    values = np.asarray([p for p in ppl if p is not None], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no perplexities to compute cut-offs from")
    head, tail = np.percentile(values, percentiles)
    return {"head": float(head), "tail": float(tail), "n_docs": int(values.size)}


def read_cutoffs(path: str) -> dict:
    """Read a cut-offs file from a local path or an fsspec URI (s3://, gs://)."""
    from corpus.io.files import read_json

    data = read_json(path if "://" in path else os.path.expanduser(path))
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a cut-offs file (format {data.get('format')!r}, expected {FORMAT!r})")
    return data


def write_cutoffs(path: str, lang: str, cutoffs: dict, percentiles: tuple[float, float]) -> dict:
    """Set one language's cut-offs in `path` (other languages are kept), written atomically."""
    path = os.path.expanduser(path)
    data = {"format": FORMAT, "percentiles": list(percentiles), "languages": {}}
    if os.path.exists(path):
        data = read_cutoffs(path)
        if list(data["percentiles"]) != list(percentiles):
            raise ValueError(f"{path} holds cut-offs at percentiles {data['percentiles']}, not "
                             f"{list(percentiles)}: write to another file")
    data["languages"][lang] = cutoffs
    write_atomic(os.path.abspath(path), json.dumps(data, indent=2, sort_keys=True))
    return data


def assign_buckets(ppl: list[float | None], langs: list[str | None], cutoffs: dict) -> pa.Array:
    """head / middle / tail per document (null without a perplexity or cut-offs for its language)."""
    per_lang = cutoffs.get("languages", {})
    out = []
    for p, lang in zip(ppl, langs):
        c = per_lang.get(lang)
        if p is None or c is None:
            out.append(None)
        elif p < c["head"]:
            out.append("head")
        elif p < c["tail"]:
            out.append("middle")
        else:
            out.append("tail")
    return pa.array(out, type=pa.string())


def sample_texts(paths: list[str], *, lang: str, lang_column: str = "lang_v1", n: int = 10_000,
                 seed: int = 0) -> tuple[list[str], int]:
    """A uniform sample (reservoir, seeded) of up to `n` texts in `lang` from Parquet files.

    Files that have the language column contribute only their rows in `lang`; files without it are
    taken to be in `lang`. Returns (sample, number of candidate rows seen).
    """
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    reservoir: list[str] = []
    seen = 0
    for path in paths:
        pf = pq.ParquetFile(path)
        has_lang = lang_column in pf.schema_arrow.names
        columns = ["text", lang_column] if has_lang else ["text"]
        for batch in pf.iter_batches(columns=columns, batch_size=4096):
            texts = batch.column(0).to_pylist()
            langs = batch.column(1).to_pylist() if has_lang else [lang] * len(texts)
            for text, doc_lang in zip(texts, langs):
                if not text or doc_lang != lang:
                    continue
                seen += 1
                if len(reservoir) < n:
                    reservoir.append(text)
                else:
                    j = int(rng.integers(seen))  # Algorithm R: keep with probability n / seen
                    if j < n:
                        reservoir[j] = text
    return reservoir, seen


def web_sample_texts(lang: str, n: int = 10_000, seed: int = 0) -> tuple[list[str], int]:
    """A seeded sample of up to `n` whole web pages in `lang` (all visible text, like a WET record) from the
    sample corpus's web samples (corpus/quality/data.py), and how many pages in `lang` there were."""
    from corpus.quality.data import iter_web_pages, page_text, web_sample_folders
    from corpus.stages.langid import LangIdConfig, LangIdScorer

    texts = [t for _, raw in iter_web_pages(web_sample_folders()) if (t := page_text(raw)).strip()]
    if not texts:
        return [], 0
    langs, scores = LangIdScorer(LangIdConfig()).predict(texts)
    # cc_net's language filter: the page's top language, with a score of 0.5 or more
    pages = [t for t, code, score in zip(texts, langs, scores) if code == lang and score >= 0.5]
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(len(pages), size=min(n, len(pages)), replace=False)) if pages else []
    return [pages[i] for i in keep], len(pages)


def run_parquet_files(run_dir: str, phase: str | None = None) -> list[str]:
    """The kept-document Parquet files of one map phase of a run (default: its first), from the phase
    folders the run's stats.json records (corpus.runtime.layout): an old phase folder of another
    configuration left in the run is never picked."""
    from corpus.runtime.layout import phase_data_files

    return phase_data_files(os.path.expanduser(run_dir), phase)
