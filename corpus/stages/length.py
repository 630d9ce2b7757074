"""Length counts of each document: characters, whitespace-separated words, lines.

A scoring stage: it only adds `n_chars_v1`, `n_words_v1`, `n_lines_v1` (all int64), computed with
Arrow kernels over the whole batch. The thresholds live in the job's select rules, so changing a
threshold never recomputes the counts.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.compute as pc

from corpus.stages.base import StageSpec, fixed

COLUMNS = ("n_chars_v1", "n_words_v1", "n_lines_v1")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LengthConfig:
    """No settings: the counts are definitions, not choices."""


def score_length(batch: pa.Table, cfg: LengthConfig) -> pa.Table:
    text = batch.column("text")
    n_chars = pc.utf8_length(text).cast(pa.int64())
    # Split the trimmed text: leading/trailing whitespace would count as empty words, and an empty
    # text splits into one empty word.
    trimmed = pc.utf8_trim_whitespace(text)
    n_words = pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), 0,
                         pc.list_value_length(pc.utf8_split_whitespace(trimmed))).cast(pa.int64())
    # A document with k newline characters has k + 1 lines (an empty text has one empty line).
    n_lines = pc.add(pc.count_substring(text, "\n"), 1).cast(pa.int64())
    for name, values in zip(COLUMNS, (n_chars, n_words, n_lines)):
        batch = batch.append_column(pa.field(name, pa.int64()), values)
    return batch


SPEC = StageSpec(
    name="length",
    config=LengthConfig,
    kind="score",
    build=lambda cfg, _ctx: lambda batch: score_length(batch, cfg),
    reads=fixed("text"),
    writes=fixed(*COLUMNS),
    types=lambda _cfg: dict.fromkeys(COLUMNS, pa.int64()),
)
