"""Atomic writes for the training half: temp file, fsync, rename, so a reader never sees half a file.
(corpus/io/files.py does the same for the corpus half; the two halves do not import each other.)"""

from __future__ import annotations

import json
import os
from typing import Any


def write_text_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str, doc: Any) -> None:
    write_text_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
