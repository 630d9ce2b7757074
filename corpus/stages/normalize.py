"""Unicode clean-up of the text column: mojibake repair, NFC, control characters removed.

Mojibake repair is ftfy's (a well-kept library that undoes UTF-8 decoded as Latin-1/cp1252 and friends),
run only on texts that it could change (corpus/stages/ftfy_triggers.py: a sound test, same output);
NFC and control-character removal follow what CCNet and most LLM pipelines do before any hashing or
scoring, so that the same text always hashes and scores the same.

Most documents are left as they are, so the batch function first finds, with Arrow kernels over the whole
column, the texts that could change at all, and runs the per-text Python steps on those only
(`_ASCII_MAY_CHANGE`); the others keep their Arrow values untouched.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import setting
from corpus.stages.base import BuildContext, StageSpec, fixed

# C0 and C1 control characters except tab and newline, plus the zero-width and BOM characters that
# survive decoding but carry no text. Carriage returns become newlines first (CRLF -> LF).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u2060\ufeff]")

# What can make `normalize_text` change an all-ASCII text (RE2 syntax, for Arrow's regex kernels); any
# other ASCII text comes out as it went in, whatever the settings:
# - a C0 control other than tab and newline, or DEL: `_CONTROL` removes them, CR becomes LF, and ftfy's
#   triggers (corpus/stages/ftfy_triggers.py) among ASCII characters are these too;
# - an HTML entity shape, ftfy's other ASCII trigger (`ftfy_triggers._ENTITY`);
# - leading or trailing whitespace as `str.strip` sees it among ASCII characters: \t-\r, \x1c-\x1f, space.
# ftfy's mojibake repair needs a non-ASCII character, and NFC and NFKC leave ASCII alone, so a non-ASCII
# text always takes the per-text path. tests/corpus/stages/test_normalize_length_select.py checks every
# ASCII character at the start, inside and at the end of a text against `normalize_text`.
_ASCII_MAY_CHANGE = r"[\x00-\x08\x0b-\x1f\x7f]|&#?[0-9A-Za-z]+;|^[\t-\r\x1c-\x20]|[\t-\r\x1c-\x20]$"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NormalizeConfig:
    form: Literal["NFC", "NFKC", "none"] = setting("NFC", doc="Unicode normalization form applied to text")
    fix_mojibake: bool = setting(True, doc="repair mis-decoded text (UTF-8 read as cp1252 ...) with ftfy")
    remove_control: bool = setting(True, doc="drop control characters other than tab and newline")
    strip: bool = setting(True, doc="strip leading and trailing whitespace of the whole document")


def normalize_text(text: str, cfg: NormalizeConfig, *, ftfy_possible: bool = True) -> str:
    """`ftfy_possible=False`: the caller knows ftfy could not change `text` (ftfy_may_change_batch)."""
    if cfg.fix_mojibake and ftfy_possible:
        import ftfy  # imported here: a core dependency, but only this stage needs it

        from corpus.stages.ftfy_triggers import FTFY_SETTINGS, ftfy_may_change

        # ftfy only where it could change something: same output, ftfy was 98% of the time on clean text
        if ftfy_may_change(text):
            text = ftfy.fix_text(text, **FTFY_SETTINGS)
    if cfg.remove_control:
        text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if cfg.form != "none":
        text = unicodedata.normalize(cfg.form, text)
    return text.strip() if cfg.strip else text


def normalize(batch: pa.Table, cfg: NormalizeConfig) -> pa.Table:
    # Chunk by chunk: a column over 2 GiB of text cannot be one chunk.
    chunks = [_normalize_chunk(chunk, cfg) for chunk in batch.column("text").chunks]
    return batch.set_column(batch.schema.get_field_index("text"), batch.schema.field("text"),
                            pa.chunked_array(chunks, pa.string()))


def _normalize_chunk(text: pa.Array, cfg: NormalizeConfig) -> pa.Array:
    # Null texts (not valid in DOCUMENT_V1) take the per-text path, which fails on them as before.
    may_change = pc.fill_null(pc.or_(pc.invert(pc.string_is_ascii(text)),
                                     pc.match_substring_regex(text, _ASCII_MAY_CHANGE)), True)
    if not pc.any(may_change).as_py():
        return text
    candidates = text.filter(may_change)
    if cfg.fix_mojibake:
        from corpus.stages.ftfy_triggers import ftfy_may_change_batch

        ftfy_possible = ftfy_may_change_batch(candidates).to_pylist()
    else:
        ftfy_possible = [False] * len(candidates)
    changed = [normalize_text(t, cfg, ftfy_possible=f) for t, f in zip(candidates.to_pylist(), ftfy_possible)]
    return pc.replace_with_mask(text, may_change, pa.array(changed, pa.string()))


SPEC = StageSpec(
    name="normalize",
    config=NormalizeConfig,
    kind="transform",
    build=lambda cfg, _ctx: lambda batch: normalize(batch, cfg),
    reads=fixed("text"),
    writes=fixed("text"),
)
