"""A labelled near-duplicate set from real text, for `refinery dedup eval`.

Two parts, each document carrying `cluster` (documents of one cluster are duplicates of each other),
`source` and `edit`:
- wikipedia: lead sections of English Wikipedia articles (sample `wiki-summaries`, CC-BY-SA). A seeded
  choice of articles gets one edited copy each, by one controlled edit (see EDITS); as many other
  articles are left alone as negatives (each its own cluster).
- shakespeare: every play present in both the Project Gutenberg modern edition and the First Folio
  edition (sample `shakespeare`, public domain): the two editions form a cluster. Folio spelling
  ("vnfold", "liue") changes many words, so these are hard positives for word shingles.
The set is written to the cache, never to the repository (Wikipedia text is CC-BY-SA).
"""

from __future__ import annotations

import difflib
import json
import os
import random
import re

EDITS = ("sub-01", "sub-03", "sub-05", "sub-10", "drop-sentence", "add-boilerplate", "format")
"""sub-NN: NN% of words replaced by words of other articles; drop-sentence: one sentence removed;
add-boilerplate: a 12-word sentence appended; format: case, punctuation and whitespace changed only."""

_BOILERPLATE = "This article is licensed under the terms of the free documentation license."


def edit_text(text: str, edit: str, rng: random.Random, vocab: list[str]) -> str:
    words = text.split()
    if edit.startswith("sub-"):
        rate = int(edit[4:]) / 100
        for i in rng.sample(range(len(words)), max(1, round(rate * len(words)))):
            words[i] = rng.choice(vocab)
        return " ".join(words)
    if edit == "drop-sentence":
        sentences = re.split(r"(?<=[.!?])\s+", text)
        if len(sentences) > 2:
            del sentences[rng.randrange(1, len(sentences))]
        return " ".join(sentences)
    if edit == "add-boilerplate":
        return text + " " + _BOILERPLATE
    if edit == "format":
        return "\n".join(w.upper() if i % 7 == 0 else w.strip(",.;") for i, w in enumerate(words))
    raise ValueError(edit)


def wikipedia_records(path: str, pairs: int, negatives: int, seed: int = 13) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        articles = json.load(f)
    texts = sorted((k, v["extract"]) for k, v in articles.items() if len(v.get("extract", "").split()) >= 80)
    rng = random.Random(seed)
    chosen = rng.sample(texts, pairs + negatives)
    vocab = [w for _, t in rng.sample(texts, 200) for w in t.split()]
    out = []
    for i, (title, text) in enumerate(chosen):
        cluster = f"wiki:{title}"
        out.append({"id": f"wiki/{i:05d}", "text": text, "cluster": cluster, "source": "wikipedia", "edit": ""})
        if i < pairs:
            edit = EDITS[i % len(EDITS)]
            out.append({"id": f"wiki/{i:05d}-{edit}", "text": edit_text(text, edit, rng, vocab),
                        "cluster": cluster, "source": "wikipedia", "edit": edit})
    return out


def shakespeare_records(folder: str) -> list[dict]:
    files = sorted(os.listdir(folder))
    modern = [f[: -len("_gut.txt")] for f in files if f.endswith("_gut.txt")]
    folio = [f[: -len("_gut_f.txt")] for f in files if f.endswith("_gut_f.txt")]
    out = []
    for name in modern:
        match = difflib.get_close_matches(name, folio, n=1, cutoff=0.75)
        if not match:
            continue
        for stem, suffix in ((name, "_gut.txt"), (match[0], "_gut_f.txt")):
            with open(os.path.join(folder, stem + suffix), encoding="utf-8", errors="replace") as f:
                text = f.read()
            out.append({"id": f"shakespeare/{stem}{suffix[:-4]}", "text": text, "cluster": f"play:{name}",
                        "source": "shakespeare", "edit": "folio" if suffix == "_gut_f.txt" else ""})
    return out


def build_labelled(out_path: str, pairs: int = 700, negatives: int = 1400, seed: int = 13) -> dict:
    from corpus.samples import sample_path

    records = wikipedia_records(os.path.join(sample_path("wiki-summaries"), "data", "summaries_en-us.json"),
                                pairs, negatives, seed)
    records += shakespeare_records(os.path.join(sample_path("shakespeare"), "texts"))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    clusters = {r["cluster"] for r in records}
    return {"documents": len(records), "clusters": len(clusters), "path": out_path}
