"""Precision, recall and F1 of duplicate detection against a labelled set (pairs or clusters).

Scores are pairwise: a pair of documents is a true duplicate pair when the labels put them in one
cluster, a predicted pair when the dedup put them in one cluster. From the contingency table of
(predicted cluster, true cluster) sizes, TP = sum C(n_ij, 2), predicted = sum C(n_i., 2), true =
sum C(n_.j, 2), without enumerating pairs. Recall is also given per `edit` kind of the labelled set
(the share of an edited copy's pairs with its original that were found).
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
from typing import Iterable

import pyarrow as pa


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def pairwise_scores(predicted: dict[str, object], truth: dict[str, object]) -> dict:
    """predicted, truth: id -> cluster label (ids missing from `predicted` are singletons)."""
    cell = collections.Counter((predicted.get(i, ("single", i)), t) for i, t in truth.items())
    pred_sizes = collections.Counter(predicted.get(i, ("single", i)) for i in truth)
    true_sizes = collections.Counter(truth.values())
    tp = sum(_pairs(n) for n in cell.values())
    pp = sum(_pairs(n) for n in pred_sizes.values())
    tt = sum(_pairs(n) for n in true_sizes.values())
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "true_pairs": tt, "predicted_pairs": pp, "correct_pairs": tp}


def recall_by_edit(predicted: dict[str, object], records: Iterable[dict]) -> dict[str, dict]:
    """For each edit kind: how many edited copies landed in their original's predicted cluster."""
    records = list(records)
    originals = {r["cluster"]: r["id"] for r in records if not r.get("edit")}
    found, total = collections.Counter(), collections.Counter()
    for r in records:
        if r.get("edit") and r["cluster"] in originals:
            total[r["edit"]] += 1
            a, b = originals[r["cluster"]], r["id"]
            found[r["edit"]] += a in predicted and predicted.get(a) == predicted.get(b)
    return {e: {"found": found[e], "total": total[e], "recall": round(found[e] / total[e], 4)} for e in sorted(total)}


def read_labelled(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def minhash_clusters(records: list[dict], cfg, shards: int = 4, work_dir: str | None = None) -> dict[str, int]:
    """Runs the minhash_dedup phase kind in this process on the records; id -> predicted cluster."""
    from corpus.dedup import fuzzy
    from corpus.dedup.layout import read_table
    from corpus.dedup.local import run_kind, write_shards

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        table = pa.table({"id": [r["id"] for r in records], "text": [r["text"] for r in records]})
        parts = write_shards(table, os.path.join(tmp, "upstream"), shards)
        phase_dir = os.path.join(tmp, "fuzzy")
        summary = run_kind(fuzzy.KIND, cfg, phase_dir, parts)
        out = {}
        for key in parts:
            t = read_table(os.path.join(phase_dir, "results", f"{key}.parquet"))
            out.update(zip(t.column("id").to_pylist(), t.column("cluster").to_pylist()))
    out["__summary__"] = summary  # type: ignore[assignment]
    return out


def evaluate(records: list[dict], predicted: dict[str, object]) -> dict:
    truth = {r["id"]: r["cluster"] for r in records}
    report = {"all": pairwise_scores(predicted, truth), "recall_by_edit": recall_by_edit(predicted, records)}
    for source in sorted({r.get("source", "") for r in records}):
        sub = {r["id"]: r["cluster"] for r in records if r.get("source", "") == source}
        report[source or "unlabelled"] = pairwise_scores(predicted, sub)
    return report
