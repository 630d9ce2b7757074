"""Bag-of-tokens similarity between an extracted text and a reference text.

Token F1 over multisets of tokens is the measure of the Article Extraction Benchmark (Zyte, 2019) and
of trafilatura's own evaluation: order-insensitive, so a paragraph moved by the extractor is not
penalised, but missing text lowers recall and kept boilerplate lowers precision. Scripts written
without spaces (Chinese, Japanese, Thai, Burmese) are tokenised per character, others per word.
"""

from __future__ import annotations

import collections
import re

_TOKEN = re.compile(r"[\u0e00-\u0e7f\u1000-\u109f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|\w+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def token_prf(predicted: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of predicted tokens against reference tokens; all 0 when nothing overlaps."""
    pred, ref = collections.Counter(tokens(predicted)), collections.Counter(tokens(reference))
    overlap = sum((pred & ref).values())
    if overlap == 0:
        return 0.0, 0.0, 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(ref.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def token_f1(predicted: str, reference: str) -> float:
    return token_prf(predicted, reference)[2]
