"""The shard ledger of a phase: `ledger/<key>.json` per committed shard, `quarantine/<key>.json` per
shard that kept failing. An entry exists only after all of the shard's files are published."""

from __future__ import annotations

import time
import traceback
from typing import Any

from corpus.io.files import filesystem, join, read_json_entries, write_json_atomic
from corpus.runtime import layout


def committed(phase_dir: str, verify: bool = False) -> dict[str, dict[str, Any]]:
    """key -> ledger entry of every committed shard.

    `verify`: also check that every part file an entry names is there with the size it was published
    with. An entry whose file has gone (deleted by hand, lost with a disk) commits nothing any more: it
    is removed, so the shard is redone like one that never committed, instead of the phase failing when
    it counts the rows of a file that is not there."""
    entries = read_json_entries(join(phase_dir, layout.LEDGER))
    if verify:
        for key in [k for k, e in entries.items() if not _files_intact(phase_dir, e)]:
            fs, p = filesystem(layout.ledger_entry(phase_dir, key))
            fs.rm(p)
            del entries[key]
    return entries


def _files_intact(phase_dir: str, entry: dict[str, Any]) -> bool:
    for kind, files in entry.get("files", {}).items():
        for f in files:
            fs, p = filesystem(join(phase_dir, kind, f["path"]))
            if not fs.exists(p) or ("bytes" in f and fs.size(p) != f["bytes"]):
                return False
    return True


def quarantined(phase_dir: str) -> dict[str, dict[str, Any]]:
    return read_json_entries(join(phase_dir, layout.QUARANTINE))


def quarantine(phase_dir: str, key: str, inputs: list[str], attempts: int, error: BaseException | str) -> None:
    if isinstance(error, BaseException):
        detail = "".join(traceback.format_exception(error))
        message = f"{type(error).__name__}: {error}"
    else:
        detail = message = error
    write_json_atomic(layout.quarantine_entry(phase_dir, key),
                      {"key": key, "inputs": inputs, "attempts": attempts, "error": message.strip()[:4000],
                       "traceback": detail[-20000:], "quarantined_at": time.time()})


def clear_quarantine(phase_dir: str, key: str) -> None:
    fs, p = filesystem(layout.quarantine_entry(phase_dir, key))
    if fs.exists(p):
        fs.rm(p)
