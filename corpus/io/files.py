"""Paths and URIs through fsspec: listing inputs, atomic publication of finished files and folders.

Atomic publication is the base of exactly-once commits: a file is written under a temporary name,
flushed to stable storage, then renamed. The helpers that do it live in schemas/atomic_files.py, shared
with the training half, and every corpus module reaches them through this module. Corpus code writes
no file any other way that a reader could see half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import fsspec

from schemas.atomic_files import (filesystem, fsync_dir, is_local, make_dirs, publish, publish_dir,
                                  rename_into_place, temp_name, write_atomic, write_json_atomic)

__all__ = ["filesystem", "is_local", "join", "expand_paths", "temp_name", "make_dirs", "publish", "publish_dir",
           "write_atomic", "write_json_atomic", "publish_folder", "read_json", "read_json_entries",
           "remove_temp_files"]


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


def publish_folder(files: dict[str, str], folder: str) -> None:
    """Make `folder` hold exactly `files` (relative name -> existing file), replacing what it held.

    Locally the files are hard links (no bytes copied; copies where the filesystem has no links) in a
    temporary sibling folder that is fsynced and renamed into place, so a reader sees the old folder or
    the new one. Between moving the old folder aside and renaming the new one in, `folder` is briefly
    absent; a crash there leaves it absent (and the next publication removes the leftovers), never
    half-built. On object stores, which cannot rename a folder, the files are copied into `folder` after
    its old objects are removed: there a reader must wait for the file that names the folder (stats.json).
    """
    fs, root = filesystem(folder)
    parent, name = root.rstrip("/").rsplit("/", 1)
    for leftover in fs.glob(f"{parent}/{name}.tmp-*") + fs.glob(f"{parent}/{name}.old-*"):
        fs.rm(leftover, recursive=True)
    if not is_local(fs):
        if fs.exists(root):
            fs.rm(root, recursive=True)
        for rel, src in sorted(files.items()):
            fs.copy(filesystem(src)[1], f"{root}/{rel}")
        return
    tmp = temp_name(root)
    make_dirs(tmp)
    for rel, src in sorted(files.items()):
        dst = os.path.join(tmp, *rel.split("/"))
        if not os.path.isdir(os.path.dirname(dst)):
            make_dirs(os.path.dirname(dst))
        try:
            os.link(src, dst)
        except OSError:  # no hard links here (or another device): a durable copy
            shutil.copyfile(src, dst)
            with open(dst, "rb+") as f:
                os.fsync(f.fileno())
    for dirpath, _, _ in os.walk(tmp, topdown=False):
        fsync_dir(dirpath)
    rename_into_place(tmp, root)


def read_json(path: str) -> Any:
    with fsspec.open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def read_json_entries(folder: str) -> dict[str, Any]:
    """`key` -> entry of every published `*.json` in `folder` (none if it does not exist): the ledger
    files of a phase or of a dedup step, whose writers put the key inside each entry."""
    fs, p = filesystem(folder)
    if not fs.exists(p):
        return {}
    out = {}
    for f in sorted(fs.ls(p, detail=False)):
        name = os.path.basename(f)
        if name.endswith(".json") and ".tmp-" not in name:
            entry = read_json(join(folder, name))
            out[entry["key"]] = entry
    return out


def remove_temp_files(folder: str) -> int:
    """Delete leftovers of writes that never published (a killed worker); returns how many."""
    fs, p = filesystem(folder)
    if not fs.exists(p):
        return 0
    leftovers = [f for f in fs.find(p) if ".tmp-" in os.path.basename(f)]
    for f in leftovers:
        fs.rm(f)
    return len(leftovers)
