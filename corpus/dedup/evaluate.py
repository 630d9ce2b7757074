"""Precision, recall and F1 of duplicate detection against a labelled set (pairs or clusters).

Scores are pairwise: a pair of documents is a true duplicate pair when the labels put them in one
cluster, a predicted pair when the dedup put them in one cluster. From the contingency table of
(predicted cluster, true cluster) sizes, TP = sum C(n_ij, 2), predicted = sum C(n_i., 2), true =
sum C(n_.j, 2), without enumerating pairs. Recall is also given per `edit` kind of the labelled set
(the share of an edited copy's pairs with its original that were found).

On a set whose truth is the measured Jaccard (corpus.dedup.labelled_jaccard: each record's `jaccard`
with the others of its family), a pair is a true pair at threshold t when its Jaccard is >= t, and
`jaccard_scores` adds what a dedup that removes documents must get right: removal precision (a removed
document's Jaccard with the kept document it was removed for is >= t) and document recall (a document
with a true near-duplicate is handled: removed, or kept with none of its true near-duplicates kept
beside it; a document kept because its only near-duplicate was removed for a third is right). On any set,
`recall_by_jaccard` gives the share of labelled pairs put in one cluster per bin of measured Jaccard;
`best_clustering_f1` bounds the pairwise F1 that any clustering can reach on a Jaccard-labelled set.
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


JACCARD_BINS = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def _bin_name(j: float) -> str:
    for lo, hi in zip(JACCARD_BINS, JACCARD_BINS[1:]):
        if j < hi or hi == JACCARD_BINS[-1]:
            return f"{lo:.2f}-{hi:.2f}"
    raise AssertionError(j)


def recall_by_jaccard(predicted: dict[str, object], pairs: Iterable[tuple[str, str, float]]) -> dict[str, dict]:
    """pairs: (id, id, measured Jaccard) -> per Jaccard bin, how many pairs share a predicted cluster."""
    found, total = collections.Counter(), collections.Counter()
    for a, b, j in pairs:
        name = _bin_name(j)
        total[name] += 1
        found[name] += a in predicted and predicted[a] == predicted.get(b)
    return {k: {"found": found[k], "total": total[k], "rate": round(found[k] / total[k], 4)} for k in sorted(total)}


def family_pairs(records: list[dict]) -> list[tuple[str, str, float]]:
    """(a, b, jaccard) once per pair of a Jaccard-labelled set."""
    return [(r["id"], o, j) for r in records for o, j in r["jaccard"].items() if r["id"] < o]


def cluster_pair_jaccards(records: list[dict]) -> list[tuple[str, str, float]]:
    """(a, b, measured Jaccard of word 5-grams) for every pair of a labelled cluster (provenance set)."""
    from corpus.dedup.labelled_jaccard import jaccard, shingle_sets

    by_cluster = collections.defaultdict(list)
    for r in records:
        by_cluster[r["cluster"]].append(r)
    members = [rs for rs in by_cluster.values() if len(rs) > 1]
    flat = [r for rs in members for r in rs]
    sets = dict(zip((r["id"] for r in flat), shingle_sets([r["text"] for r in flat])))
    return [(a["id"], b["id"], jaccard(sets[a["id"]], sets[b["id"]]))
            for rs in members for i, a in enumerate(rs) for b in rs[i + 1:]]


def jaccard_scores(records: list[dict], predicted: dict[str, object], removed: set[str], threshold: float) -> dict:
    """Scores against measured-Jaccard truth (see the module doc); ids missing from `predicted` are kept
    singletons."""
    jac = {}
    for a, b, j in family_pairs(records):
        jac[a, b] = jac[b, a] = j
    ids = [r["id"] for r in records]
    cluster_of = {i: predicted.get(i, ("single", i)) for i in ids}
    members = collections.defaultdict(list)
    for i in ids:
        members[cluster_of[i]].append(i)
    true_pairs = {(a, b) for (a, b), j in jac.items() if a < b and j >= threshold}
    predicted_pairs = {(a, b) if a < b else (b, a) for ms in members.values() for k, a in enumerate(ms) for b in ms[k + 1:]}
    tp = len(true_pairs & predicted_pairs)
    precision = tp / len(predicted_pairs) if predicted_pairs else 1.0
    recall = tp / len(true_pairs) if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    right = 0
    for i in removed:
        kept = [m for m in members[cluster_of[i]] if m not in removed]
        right += len(kept) == 1 and jac.get((i, kept[0]), 0.0) >= threshold
    near = collections.defaultdict(list)
    for a, b in true_pairs:
        near[a].append(b)
        near[b].append(a)
    handled = sum(i in removed or all(o in removed for o in near[i]) for i in near)
    return {"threshold": threshold, "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "true_pairs": len(true_pairs), "predicted_pairs": len(predicted_pairs), "correct_pairs": tp,
            "removed": len(removed), "removal_precision": round(right / len(removed), 4) if removed else 1.0,
            "documents_with_a_near_duplicate": len(near),
            "document_recall": round(handled / len(near), 4) if near else 1.0}


MAX_FAMILY_FOR_BEST = 9
"""best_clustering_f1 tries every partition of a family: Bell(9) = 21,147 of them at most."""


def _partitions(items: list) -> Iterable[list[list]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for p in _partitions(rest):
        yield [[first], *p]
        for k in range(len(p)):
            yield [*p[:k], [first, *p[k]], *p[k + 1:]]


def best_clustering_f1(records: list[dict], threshold: float) -> dict:
    """The highest pairwise F1 (as jaccard_scores counts it) that any partition of a Jaccard-labelled set
    reaches, knowing the truth: an upper bound for every dedup's clusters. Where a family's pairs at the
    threshold do not chain (A~B, A~C, B !~ C), no partition holds exactly its true pairs. Pairs of
    different families are never true, so the best partition keeps families apart; inside each, every
    partition is tried, and F1 = 2 TP / (predicted + true), a ratio of sums over families, is maximized
    by Dinkelbach's iteration (each step picks, per family, the partition maximizing 2 TP - f * predicted)."""
    by_family = collections.defaultdict(list)
    for r in records:
        by_family[r["cluster"]].append(r)
    options, total_true = [], 0
    for rs in by_family.values():
        if len(rs) > MAX_FAMILY_FOR_BEST:
            raise ValueError(f"family {rs[0]['cluster']!r} has {len(rs)} documents; best_clustering_f1 tries "
                             f"every partition and takes families of up to {MAX_FAMILY_FOR_BEST}")
        true = {frozenset((r["id"], o)) for r in rs for o, j in r["jaccard"].items() if j >= threshold}
        total_true += len(true)
        opts = set()
        for p in _partitions([r["id"] for r in rs]):
            pairs = [frozenset((a, b)) for c in p for k, a in enumerate(c) for b in c[k + 1:]]
            opts.add((sum(q in true for q in pairs), len(pairs)))
        options.append(sorted(opts))
    if not total_true:
        return {"f1": 1.0, "correct_pairs": 0, "predicted_pairs": 0, "true_pairs": 0}
    f = 0.0
    while True:
        choice = [max(o, key=lambda tp_pp: 2 * tp_pp[0] - f * tp_pp[1]) for o in options]
        tp, pp = sum(c[0] for c in choice), sum(c[1] for c in choice)
        better = 2 * tp / (pp + total_true)
        if better <= f + 1e-12:
            return {"f1": round(f, 4), "correct_pairs": tp, "predicted_pairs": pp, "true_pairs": total_true}
        f = better


def minhash_results(records: list[dict], cfg, shards: int = 4, work_dir: str | None = None
                    ) -> tuple[dict[str, int], set[str], dict]:
    """Runs the minhash_dedup phase kind in this process on the records: (id -> predicted cluster, ids
    of removed documents, the phase's summary)."""
    from corpus.dedup import fuzzy
    from corpus.dedup.layout import read_table
    from corpus.dedup.local import run_kind, write_shards

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        table = pa.table({"id": [r["id"] for r in records], "text": [r["text"] for r in records]})
        parts = write_shards(table, os.path.join(tmp, "upstream"), shards)
        phase_dir = os.path.join(tmp, "fuzzy")
        summary = run_kind(fuzzy.KIND, cfg, phase_dir, parts)
        out, removed = {}, set()
        for key in parts:
            t = read_table(os.path.join(phase_dir, "results", f"{key}.parquet"))
            ids = t.column("id").to_pylist()
            out.update(zip(ids, t.column("cluster").to_pylist()))
            removed.update(i for i, d in zip(ids, t.column("duplicate").to_pylist()) if d)
    return out, removed, summary


def minhash_clusters(records: list[dict], cfg, shards: int = 4, work_dir: str | None = None) -> dict[str, int]:
    """id -> predicted cluster of the minhash_dedup phase kind run in this process (plus `__summary__`)."""
    out, _, summary = minhash_results(records, cfg, shards, work_dir)
    out["__summary__"] = summary  # type: ignore[assignment]
    return out


def evaluate(records: list[dict], predicted: dict[str, object], removed: set[str] | None = None,
             threshold: float = 0.8) -> dict:
    """The report of `refinery dedup eval`: on a Jaccard-labelled set, jaccard_scores and recall per
    Jaccard bin of its pairs; on a provenance set, pairwise scores against its clusters, recall per edit
    kind and per bin of the measured Jaccard of its labelled pairs. `removed` (ids a dedup removed)
    defaults to every member of a predicted cluster but its first id."""
    if removed is None:
        seen: set = set()
        removed = set()
        for i in sorted(predicted):
            c = predicted[i]
            (removed.add(i) if c in seen else seen.add(c))
    if records and "jaccard" in records[0]:
        return {"jaccard_truth": jaccard_scores(records, predicted, removed, threshold),
                "recall_by_jaccard": recall_by_jaccard(predicted, family_pairs(records))}
    truth = {r["id"]: r["cluster"] for r in records}
    report = {"all": pairwise_scores(predicted, truth), "recall_by_edit": recall_by_edit(predicted, records)}
    for source in sorted({r.get("source", "") for r in records}):
        sub = {r["id"]: r["cluster"] for r in records if r.get("source", "") == source}
        report[source or "unlabelled"] = pairwise_scores(predicted, sub)
    report["recall_by_jaccard"] = recall_by_jaccard(predicted, cluster_pair_jaccards(records))
    return report
