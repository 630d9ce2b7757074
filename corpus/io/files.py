"""Paths and URIs through fsspec: listing inputs, atomic publication of finished files and folders.

Atomic publication is the base of exactly-once commits: a file is written under a temporary name,
flushed to stable storage, then renamed. A reader never sees half a file, and a crash leaves only a
`*.tmp-*` file that the next run removes. A rename is durable only once the folder holding the new name
is fsynced, and a new folder only once its parent is: `make_dirs` and `publish` do both, so a power
loss after a ledger entry cannot lose the part file (or the partition folder) it names.
"""

from __future__ import annotations

import json
import os
import shutil
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


def make_dirs(folder: str) -> None:
    """Create `folder` and its missing parents; locally, each new folder's parent is fsynced so that the
    new entry survives a crash (object stores have no folders to make durable)."""
    fs, p = filesystem(folder)
    if not is_local(fs):
        fs.makedirs(p, exist_ok=True)
        return
    missing = []
    p = os.path.abspath(p)
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for new in reversed(missing):
        try:
            os.mkdir(new)
        except FileExistsError:  # another worker made it: it made it durable too
            continue
        _fsync_dir(os.path.dirname(new))


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


def write_atomic(path: str, data: bytes | str) -> None:
    """Write a whole small file under a temp name, then publish it: readers see the old bytes or the new."""
    make_dirs(path.rsplit("/", 1)[0] if "/" in path else ".")
    tmp = temp_name(path)
    with fsspec.open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    publish(tmp, path)


def write_json_atomic(path: str, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


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
        _fsync_dir(dirpath)
    old = f"{root}.old-{uuid.uuid4().hex}" if os.path.exists(root) else None
    if old:
        os.rename(root, old)
    os.rename(tmp, root)
    _fsync_dir(parent)
    if old:
        shutil.rmtree(old)


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
