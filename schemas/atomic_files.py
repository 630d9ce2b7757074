"""Atomic publication of files and folders, for both halves (corpus and training do not import each
other; both import schemas/): write under a temporary name, flush to stable storage, rename.

A reader never sees half a file, and a crash leaves only a `*.tmp-*` file (or the caller's staging
folder) that the next run removes. A rename is durable only once the folder holding the new name is
fsynced, and a new folder only once its parent is: `make_dirs` and `publish` do both, so a power loss
after a ledger entry or a `latest` marker cannot lose the file it names. Paths may be fsspec URIs
(s3://, gs://): object stores publish a whole object when it is closed, so there the rename is a copy.
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
        fsync_dir(os.path.dirname(new))


def publish(tmp_path: str, final_path: str) -> None:
    """fsync the finished temp file, then rename it over the final name."""
    fs, tmp = filesystem(tmp_path)
    _, final = filesystem(final_path)
    if is_local(fs):
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(os.path.dirname(os.path.abspath(final)))
    else:  # object stores publish a whole object at close; the rename is a copy
        fs.mv(tmp, final)


def fsync_dir(folder: str) -> None:
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


def publish_dir(staging: str, final: str) -> None:
    """Rename a finished local folder into place: every file and folder in `staging` is fsynced first;
    an existing `final` is moved aside and removed once the new one is in (a reader sees the old folder
    or the new one, and only between the two renames neither)."""
    for dirpath, _, files in os.walk(staging, topdown=False):
        for name in files:
            with open(os.path.join(dirpath, name), "rb+") as f:
                os.fsync(f.fileno())
        fsync_dir(dirpath)
    rename_into_place(staging, final)


def rename_into_place(ready: str, final: str) -> None:
    """Rename the local folder `ready` (already durable) to `final`, replacing what `final` held."""
    import shutil

    old = f"{final}.old-{uuid.uuid4().hex}" if os.path.exists(final) else None
    if old:
        os.rename(final, old)
    os.rename(ready, final)
    fsync_dir(os.path.dirname(os.path.abspath(final)))
    if old:
        shutil.rmtree(old)


def move_aside(folder: str, wanted: str) -> str:
    """Rename the local `folder` to `wanted`, or to `wanted-2`, `wanted-3`, ... when that name is taken: a
    folder kept aside is never replaced (rename_into_place would delete what held the name). Returns the
    name it got."""
    target, n = wanted, 1
    while os.path.lexists(target):
        n += 1
        target = f"{wanted}-{n}"
    os.rename(folder, target)
    fsync_dir(os.path.dirname(os.path.abspath(target)))
    return target
