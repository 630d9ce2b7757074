"""Unicode clean-up of the text column: mojibake repair, NFC, control characters removed.

Mojibake repair is ftfy's (a well-kept library that undoes UTF-8 decoded as Latin-1/cp1252 and friends),
run only on texts that it could change (corpus/stages/ftfy_triggers.py: a sound test, same output);
NFC and control-character removal follow what CCNet and most LLM pipelines do before any hashing or
scoring, so that the same text always hashes and scores the same.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Literal

import pyarrow as pa

from corpus.config import setting
from corpus.stages.base import BuildContext, StageSpec, fixed

# C0 and C1 control characters except tab and newline, plus the zero-width and BOM characters that
# survive decoding but carry no text. Carriage returns become newlines first (CRLF -> LF).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u2060\ufeff]")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class NormalizeConfig:
    form: Literal["NFC", "NFKC", "none"] = setting("NFC", doc="Unicode normalization form applied to text")
    fix_mojibake: bool = setting(True, doc="repair mis-decoded text (UTF-8 read as cp1252 ...) with ftfy")
    remove_control: bool = setting(True, doc="drop control characters other than tab and newline")
    strip: bool = setting(True, doc="strip leading and trailing whitespace of the whole document")


def normalize_text(text: str, cfg: NormalizeConfig) -> str:
    if cfg.fix_mojibake:
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
    texts = [normalize_text(t, cfg) for t in batch.column("text").to_pylist()]
    return batch.set_column(batch.schema.get_field_index("text"),
                            batch.schema.field("text"), pa.array(texts, pa.string()))


SPEC = StageSpec(
    name="normalize",
    config=NormalizeConfig,
    kind="transform",
    build=lambda cfg, _ctx: lambda batch: normalize(batch, cfg),
    reads=fixed("text"),
    writes=fixed("text"),
)
