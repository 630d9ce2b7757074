"""C4's line removal: keep only the lines of each document that the C4 rules keep.

A transform stage: it rewrites `text`, joining the kept lines (whitespace-trimmed, as TFDS and datatrove
emit them) with newlines. Put it after the select step that drops on `c4_drop_reason_v1`, so the pages
C4 drops leave with their original text (the rejected output shows what was dropped) and the pages that
stay lose their navigation, cookie-notice and javascript lines, as in C4. The rules and their settings
are those of corpus/stages/c4_rules.py; a page with no kept line becomes an empty text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.stages.base import StageSpec, fixed
from corpus.stages.c4_rules import C4RulesConfig, judge_lines


def c4_lines(batch: pa.Table, cfg: C4RulesConfig) -> pa.Table:
    v = judge_lines(batch.column("text"), cfg)
    keep = np.flatnonzero(v.kept)
    offsets = np.concatenate(([0], np.cumsum(np.bincount(v.seg.doc[keep], minlength=batch.num_rows))))
    lines = pc.utf8_trim_whitespace(v.seg.items.take(pa.array(keep, pa.int64())))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), lines.cast(pa.string()))
    text = pc.binary_join(lists, "\n").cast(pa.string())
    i = batch.schema.get_field_index("text")
    return batch.set_column(i, batch.schema.field(i), text)


SPEC = StageSpec(
    name="c4_lines",
    config=C4RulesConfig,
    kind="transform",
    build=lambda cfg, _ctx: lambda batch: c4_lines(batch, cfg),
    reads=fixed("text"),
    writes=fixed("text"),
)
