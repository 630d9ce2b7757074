"""Removes the repeated lines a `line_dedup` phase marked (CCNet), and flags documents left empty.

Rewrites `text` without the marked lines and adds `line_dedup_removed_v1` (lines removed) and
`line_dedup_empty_v1` (true when only blank lines are left). The job's `select` drops the empty ones:
`{column: line_dedup_empty_v1, op: "==", value: true, reason: empty_after_line_dedup}`.
Line indexes refer to the upstream text split on "\\n", so this stage must come before any other stage
of its phase that changes `text`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import ConfigError, setting
from corpus.dedup.layout import read_table
from corpus.dedup.lines import split_lines
from corpus.dedup.results import results_path, upstream_key
from corpus.io.files import filesystem, join
from corpus.sources.base import Shard
from corpus.stages.base import BuildContext, StageSpec


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LineDedupStageConfig:
    index_phase: str = setting(doc="name of the line_dedup phase of this job whose marks to apply")


class LineRemover:
    def __init__(self, cfg: LineDedupStageConfig, ctx: BuildContext):
        if cfg.index_phase not in ctx.phase_dirs:
            raise ConfigError(f"line_dedup.index_phase: no earlier phase named '{cfg.index_phase}'. "
                              f"Fix: name the line_dedup phase.")
        self.dir = ctx.phase_dirs[cfg.index_phase]
        self.marks: pa.Table | None = None

    def start_shard(self, shard: Shard) -> None:
        path = results_path(self.dir, upstream_key(shard))
        fs, p = filesystem(path)
        if not fs.exists(p):
            raise FileNotFoundError(f"line_dedup: no marks for this shard at {path}")
        self.marks = read_table(path)

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        lines = split_lines(batch.column("text")) if n else pa.array([], pa.list_(pa.string()))
        offsets = lines.offsets.to_numpy()[: n + 1] - (lines.offsets[0].as_py() if n else 0)
        drop = np.zeros(int(offsets[-1]) if n else 0, bool)
        if n and self.marks is not None and self.marks.num_rows:
            row = pc.index_in(self.marks.column("id"), value_set=batch.column("id"))
            valid = pc.is_valid(row).to_numpy(zero_copy_only=False)
            r = pc.fill_null(row, 0).to_numpy(zero_copy_only=False)[valid]
            ln = self.marks.column("line").to_numpy()[valid]
            drop[offsets[r] + ln] = True
        flat = lines.flatten() if n else pa.array([], pa.string())
        kept_per_doc = np.add.reduceat(~drop, offsets[:-1]) if len(drop) else np.zeros(n, np.int64)
        kept_per_doc = np.where(np.diff(offsets) > 0, kept_per_doc, 0)
        new_offsets = np.zeros(n + 1, np.int32)
        np.cumsum(kept_per_doc, out=new_offsets[1:])
        kept = pa.ListArray.from_arrays(pa.array(new_offsets, pa.int32()), flat.filter(pa.array(~drop)))
        removed = (np.diff(offsets) - kept_per_doc).astype(np.int32)
        text = pc.binary_join(kept, "\n") if n else pa.array([], pa.string())
        text = pc.if_else(pa.array(removed > 0), text, batch.column("text"))
        empty = (removed > 0) & (pc.utf8_length(pc.utf8_trim_whitespace(text)).to_numpy(zero_copy_only=False) == 0) \
            if n else np.zeros(0, bool)
        batch = batch.set_column(batch.column_names.index("text"), batch.schema.field("text"), text)
        return batch.append_column(pa.field("line_dedup_removed_v1", pa.int32()), pa.array(removed, pa.int32())) \
            .append_column(pa.field("line_dedup_empty_v1", pa.bool_()), pa.array(empty, pa.bool_()))


SPEC = StageSpec(
    name="line_dedup",
    config=LineDedupStageConfig,
    kind="transform",
    build=lambda cfg, ctx: LineRemover(cfg, ctx),
    reads=lambda cfg: ("id", "text"),
    writes=lambda cfg: ("text", "line_dedup_removed_v1", "line_dedup_empty_v1"),
    types=lambda _cfg: {"line_dedup_removed_v1": pa.int32(), "line_dedup_empty_v1": pa.bool_()},
)
