"""Paths and URIs through fsspec: listing inputs, atomic publication of finished files.

Atomic publication is the base of exactly-once commits: a file is written under a temporary name,
flushed to stable storage, then renamed. A reader never sees half a file, and a crash leaves only a
`*.tmp-*` file that the next run removes.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import fsspec
from fsspec.core import url_to_fs


def filesystem(path: str):
    """(fs, path without protocol) for a local path or any fsspec URI (s3://, gs://, memory://)."""
    return url_to_fs(path)


def is_local(fs) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts])


def expand_paths(patterns: list[str], walk_folders: bool = True) -> list[str]:
    """Sorted, de-duplicated paths matching the glob patterns: files, and folders walked into their
    files unless `walk_folders` is False (then a matched folder is returned as itself)."""
    found: set[str] = set()
    for pattern in patterns:
        fs, _ = filesystem(pattern)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        prefix = "" if is_local(fs) else f"{protocol}://"
        for p in fs.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]:
            if fs.isdir(p):
                found.update(prefix + f for f in fs.find(p)) if walk_folders else found.add(prefix + p.rstrip("/"))
            elif fs.exists(p):
                found.add(prefix + p)
    return sorted(found)


def temp_name(final_path: str) -> str:
    return f"{final_path}.tmp-{uuid.uuid4().hex}"


def publish(tmp_path: str, final_path: str) -> None:
    """fsync the finished temp file, then rename it over the final name."""
    fs, tmp = filesystem(tmp_path)
    _, final = filesystem(final_path)
    if is_local(fs):
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(os.path.dirname(final))
    else:  # object stores publish a whole object at close; the rename is a copy
        fs.mv(tmp, final)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: str, obj: Any) -> None:
    fs, p = filesystem(path)
    fs.makedirs(os.path.dirname(p), exist_ok=True)
    tmp = temp_name(path)
    with fsspec.open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    publish(tmp, path)


def read_json(path: str) -> Any:
    with fsspec.open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def remove_temp_files(folder: str) -> int:
    """Delete leftovers of writes that never published (a killed worker); returns how many."""
    fs, p = filesystem(folder)
    if not fs.exists(p):
        return 0
    leftovers = [f for f in fs.find(p) if ".tmp-" in os.path.basename(f)]
    for f in leftovers:
        fs.rm(f)
    return len(leftovers)
