"""Run a dedup phase kind in this process, without Ray: for `refinery dedup eval`, benchmarks and tests.

The context implements corpus.dedup.kind.PhaseContext as the runtime does and writes the same ledger
files, one item after another with one worker, so results are those of the distributed run (which tests
check), and a rerun resumes.
"""

from __future__ import annotations

import dataclasses
import os

import pyarrow as pa

from corpus.io.files import join, read_json_entries, write_json_atomic
from corpus.io.parquet import partition_path


@dataclasses.dataclass
class LocalContext:
    phase_dir: str
    parts: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    upstream_dir: str = ""
    phase: str = "local"

    def upstream_parts(self) -> dict[str, list[str]]:
        return dict(sorted(self.parts.items()))

    def run_on_actors(self, step, items, factory) -> list[str]:
        step_dir = join(self.phase_dir, step)
        done = self.committed(step)
        worker = None
        for item in items:
            if item.key in done:
                continue
            worker = worker or factory()
            entry = worker.run(item, 1)
            write_json_atomic(join(step_dir, "ledger", f"{item.key}.json"), entry)
        return []

    def committed(self, step: str) -> dict[str, dict]:
        return read_json_entries(join(self.phase_dir, step, "ledger"))


def write_shards(table: pa.Table, folder: str, shards: int, domain: str = "web") -> dict[str, list[str]]:
    """Split a table of documents (id, text, ...) into `shards` Parquet part files as a map phase writes
    them; returns shard key -> part files."""
    from corpus.dedup.layout import write_table_atomic

    os.makedirs(folder, exist_ok=True)
    out = {}
    size = -(-table.num_rows // shards)
    for i in range(shards):
        key = f"{i:05d}"
        path = partition_path(join(folder, "data"), domain, key)
        write_table_atomic(path, table.slice(i * size, size))
        out[key] = [path]
    return out


def run_kind(kind, cfg, phase_dir: str, parts: dict[str, list[str]]) -> dict:
    return kind.run(cfg, LocalContext(phase_dir=phase_dir, parts=parts))
