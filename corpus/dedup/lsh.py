"""Locality-sensitive hashing over MinHash signatures: bands x rows, and their choice.

Two documents with Jaccard similarity s share at least one band (and become a candidate pair) with
probability P(s) = 1 - (1 - s^r)^b. Given a target threshold t and num_perm, `choose_bands` picks the
(b, r) with b * r <= num_perm minimizing w_fp * integral_0^t P(s) ds + w_fn * integral_t^1 (1 - P(s)) ds,
the false-positive and false-negative areas under the S-curve (Leskovec, Rajaraman, Ullman, Mining of
Massive Datasets, ch. 3.4).

When candidates are verified on their exact Jaccard (`verify: true`, the default), false positives only
cost a check, and false negatives are lost for good: `choose_candidate_bands` then picks the (b, r)
that detects a pair at the threshold with probability >= CANDIDATE_RECALL and has the smallest
false-positive area among those (the S-curve's step set below the threshold).
"""

from __future__ import annotations

import numpy as np

from corpus.dedup.minhash import EMPTY, multipliers
from corpus.dedup.text import U64, splitmix64


def detection_probability(s, bands: int, rows: int):
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def error_areas(threshold: float, bands: int, rows: int, grid: int = 2001) -> tuple[float, float]:
    """(false-positive area below the threshold, false-negative area above it)."""
    lo = np.linspace(0.0, threshold, grid)
    hi = np.linspace(threshold, 1.0, grid)
    fp = np.trapezoid(detection_probability(lo, bands, rows), lo)
    fn = np.trapezoid(1.0 - detection_probability(hi, bands, rows), hi)
    return float(fp), float(fn)


def choose_bands(threshold: float, num_perm: int, fp_weight: float = 0.5,
                 fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimizing the weighted error areas for this threshold."""
    best, best_cost = (1, 1), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp, fn = error_areas(threshold, bands, rows, grid=401)
            cost = fp_weight * fp + fn_weight * fn
            if cost < best_cost - 1e-12:
                best, best_cost = (bands, rows), cost
    return best


CANDIDATE_RECALL = 0.995
"""Detection probability wanted for a pair exactly at the threshold when candidates are verified. At 0.8
and 128 permutations it gives 21 x 6: P(0.8) = 0.998, P(0.7) = 0.93, P(0.5) = 0.28, P(0.3) = 0.015
(detection_probability; tests/corpus/dedup/test_survivors.py); 9 x 13, the error-area choice, finds only 40% of the pairs
at 0.8, and 16 x 8 95%."""


def choose_candidate_bands(threshold: float, num_perm: int, recall: float = CANDIDATE_RECALL) -> tuple[int, int]:
    """(bands, rows) for verified candidates: the most rows per band (fewest pairs below the threshold to
    check) whose detection probability at the threshold is still >= recall."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if detection_probability(threshold, bands, rows) >= recall:
            return bands, rows
    return num_perm, 1


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs, bands) uint64: hash of each band's rows, salted by the band index so that equal rows in
    different bands never share a bucket. Rows of EMPTY signatures get hash 0 (callers skip them)."""
    n = sigs.shape[0]
    view = sigs[:, : bands * rows].reshape(n, bands, rows).astype(U64)
    mults = multipliers(rows, seed=0xBA4D)
    with np.errstate(over="ignore"):
        h = (view * mults).sum(axis=2, dtype=U64)
        h = splitmix64(h ^ (np.arange(bands, dtype=U64) * U64(0x9E3779B97F4A7C15)))
    h[(sigs == EMPTY).all(axis=1)] = 0
    return h
