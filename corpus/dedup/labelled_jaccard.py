"""A labelled near-duplicate set whose truth is the measured Jaccard, for `refinery dedup eval`.

The provenance set (corpus.dedup.labelled) calls every edited copy a duplicate of its original, however
far the edit took it; no threshold on Jaccard can find most of its copies below 0.8, so its recall says
little about a Jaccard-threshold dedup. Here the truth of a pair is the exact Jaccard of its word 5-gram
sets, measured with the shingles the dedup itself uses (corpus.dedup.minhash.shingle), so a pair is a
near-duplicate at threshold t exactly when its measured Jaccard is >= t.

Documents: long technical and book text, 300-6,000 words: the pages of the Python 3.11 documentation
(sample `python-doc`, PSF license; main text by resiliparse) and 3,000-word pieces of the Gutenberg
editions of Shakespeare's plays (sample `shakespeare`, public domain). Originals sharing a Jaccard of
0.3 or more with an earlier one are left out, so documents of different families are far apart.
A seeded share of originals gets 1-3 copies by controlled word edits: at a rate drawn uniformly in
[0, MAX_EDIT_RATE] of the words, each edit replaces, inserts or deletes one word at a random place
(inserted words come from other documents); a copy is made from the original or, one time in three,
from an earlier copy (a chain, where A~B and B~C need not give A~C). Documents are then shuffled, so an
original is not always first. Each record holds `jaccard`: the measured Jaccard with every other
document of its family. Written to the cache, never to the repository.
"""

from __future__ import annotations

import glob
import json
import os
import random

import numpy as np
import pyarrow as pa

from corpus.io.files import write_atomic

MIN_WORDS, MAX_WORDS, PIECE_WORDS = 300, 6000, 3000
MAX_EDIT_RATE = 0.08
"""Scattered word edits at 8% take word 5-gram Jaccard to about 0.45; at 2% it is about 0.8."""
FAR_APART = 0.3


def technical_texts(python_doc: str, shakespeare: str | None) -> list[tuple[str, str, str]]:
    """(name, source, text) of the originals' candidates, in a fixed order."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    out = []
    for path in sorted(glob.glob(os.path.join(python_doc, "**", "*.html"), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = extract_plain_text(HTMLTree.parse(f.read()), main_content=True, alt_texts=False).strip()
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            out.append((os.path.relpath(path, python_doc), "python-doc", text))
    if shakespeare:
        for path in sorted(glob.glob(os.path.join(shakespeare, "*_gut.txt"))):  # modern editions only
            with open(path, encoding="utf-8", errors="replace") as f:
                words = f.read().split()
            for k in range(0, len(words) - MIN_WORDS, PIECE_WORDS):
                out.append((f"{os.path.basename(path)}#{k}", "shakespeare", " ".join(words[k:k + PIECE_WORDS])))
    return out


def shingle_sets(texts: list[str], ngram: int = 5) -> list[np.ndarray]:
    """Sorted unique word n-gram hashes of each text, as the minhash_dedup phase shingles it."""
    from corpus.dedup.minhash import shingle

    sh = shingle(pa.array(texts, pa.string()), ngram=ngram, mode="word")
    return [np.unique(sh.hashes[sh.offsets[i]:sh.offsets[i + 1]]) for i in range(len(texts))]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def far_apart(sets: list[np.ndarray], limit: float = FAR_APART) -> list[int]:
    """Indexes of the sets kept in order, each with Jaccard < limit to every earlier kept one. Only pairs
    sharing a tenth of the smaller set's shingles among those in at most 50 documents are measured: a
    pair at `limit` shares at least that share, and a shingle in more documents (a stock phrase) adds at
    most one to a pair's count."""
    doc = np.concatenate([np.full(len(s), i, np.int64) for i, s in enumerate(sets)])
    hashes = np.concatenate(sets)
    order = np.lexsort((doc, hashes))
    hashes, doc = hashes[order], doc[order]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
    sizes = np.diff(np.r_[starts, len(hashes)])
    end = np.repeat(starts + sizes, sizes)
    rare = np.repeat(sizes <= 50, sizes)
    idx = np.arange(len(hashes))
    codes = [doc[i] * len(sets) + doc[i + k] for k in range(1, 50) for i in [idx[rare & (idx + k < end)]]]
    pair, count = np.unique(np.concatenate(codes), return_counts=True) if codes else (np.zeros(0, np.int64), [])
    small = np.array([len(s) for s in sets])
    related: dict[int, list[int]] = {}
    for code, c in zip(pair.tolist(), np.asarray(count).tolist()):
        a, b = divmod(code, len(sets))
        if c >= 0.1 * min(small[a], small[b]):
            related.setdefault(b, []).append(a)  # a < b: b is checked against the earlier a
    kept_set: set[int] = set()
    for i in range(len(sets)):
        if all(jaccard(sets[i], sets[j]) < limit for j in related.get(i, ()) if j in kept_set):
            kept_set.add(i)
    return sorted(kept_set)


def edit_words(words: list[str], rate: float, rng: random.Random, vocab: list[str]) -> list[str]:
    words = list(words)
    for _ in range(round(rate * len(words))):
        op, at = rng.randrange(3), rng.randrange(len(words))
        if op == 0:
            words[at] = rng.choice(vocab)
        elif op == 1:
            words.insert(at, rng.choice(vocab))
        elif len(words) > 1:
            del words[at]
    return words


def jaccard_records(originals: list[tuple[str, str, str]], *, families: int, seed: int = 17) -> list[dict]:
    """Records of `families` originals with copies and as many originals alone (fewer if short)."""
    rng = random.Random(seed)
    keep = far_apart(shingle_sets([t for _, _, t in originals]))
    chosen = [originals[i] for i in keep]
    rng.shuffle(chosen)
    with_copies = min(families, len(chosen) // 2)
    chosen = chosen[: 2 * with_copies]
    vocab = [w for _, _, t in rng.sample(chosen, min(50, len(chosen))) for w in t.split()[:400]]
    records = []
    for f, (name, source, text) in enumerate(chosen):
        family = [{"id": f"{source}/{f:04d}", "text": text, "cluster": f"{source}:{name}", "source": source,
                   "edit": ""}]
        if f < with_copies:
            for c in range(rng.randint(1, 3)):
                base = family[rng.randrange(len(family))] if c and rng.random() < 1 / 3 else family[0]
                rate = rng.uniform(0.0, MAX_EDIT_RATE)
                words = edit_words(base["text"].split(" "), rate, rng, vocab)
                how = f"{rate:.3f} of {'a copy' if base is not family[0] else 'the original'}"
                family.append({"id": f"{source}/{f:04d}-{c + 1}", "text": " ".join(words),
                               "cluster": family[0]["cluster"], "source": source, "edit": how})
        sets = shingle_sets([r["text"] for r in family])
        for i, r in enumerate(family):
            r["jaccard"] = {o["id"]: round(jaccard(sets[i], sets[j]), 4) for j, o in enumerate(family) if j != i}
        records += family
    rng.shuffle(records)
    return records


def build_labelled_jaccard(out_path: str, families: int = 300, seed: int = 17) -> dict:
    from corpus.samples import sample_path

    originals = technical_texts(os.path.join(sample_path("python-doc"), "html"),
                                os.path.join(sample_path("shakespeare"), "texts"))
    records = jaccard_records(originals, families=families, seed=seed)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    write_atomic(out_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    pairs = [j for r in records for j in r["jaccard"].values()]
    return {"documents": len(records), "families": len({r["cluster"] for r in records}),
            "pairs_at_0.8_or_more": sum(j >= 0.8 for j in pairs) // 2, "pairs": len(pairs) // 2, "path": out_path}
