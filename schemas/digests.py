"""sha256 of a file, local or on object storage (fsspec): the one helper both halves use to pin models,
samples, wheels and the files a pipeline step reads."""

from __future__ import annotations

import hashlib

import fsspec


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with fsspec.open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
