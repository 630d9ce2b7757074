"""The one-block dedup of a job file: `- dedup: {method: minhash, threshold: 0.8}` in `phases:`.

A dedup is three coordinated parts: a cross-shard index phase (`kind: minhash_dedup`), a map phase whose
marking stage joins the index's results (`minhash_dedup: {index_phase: ...}`), and a `select` rule that
drops the marked documents. The block names the method and its knobs once; `expand_dedup_blocks` turns
it into exactly that three-part form before the spec is parsed, so the plan, the phase folders and the
output are those of the hand-written form (the three-part form stays for jobs that need something else,
such as other select rules in the marking phase).

Consecutive blocks that name the same marking phase share it: their index phases all read the map phase
before them, and one marking phase applies every marker and one select step drops in block order. That
is how exact and MinHash dedup read the same documents (the default: both mark in `remove`). Line dedup
rewrites text, so it marks in a phase of its own (`apply-lines`) unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any

from corpus.config import ConfigError, config_from_dict
from corpus.dedup.kinds import PHASE_KINDS


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DedupMethod:
    kind: str
    """The cross-shard phase kind that builds the index."""
    marker: str
    """The per-document stage that joins the index's results (it takes `index_phase`)."""
    column: str
    """The column the marker sets to true on documents to drop."""
    reason: str
    """The drop_reason the select rule writes."""
    index_phase: str
    """Default name of the index phase."""
    mark_phase: str
    """Default name of the marking phase."""


METHODS: dict[str, DedupMethod] = {
    "exact": DedupMethod(kind="exact_dedup", marker="exact_dedup", column="exact_duplicate_v1",
                         reason="exact_duplicate", index_phase="exact", mark_phase="remove"),
    "minhash": DedupMethod(kind="minhash_dedup", marker="minhash_dedup", column="minhash_duplicate_v2",
                           reason="near_duplicate", index_phase="minhash", mark_phase="remove"),
    "lines": DedupMethod(kind="line_dedup", marker="line_dedup", column="line_dedup_empty_v1",
                         reason="empty_after_line_dedup", index_phase="lines", mark_phase="apply-lines"),
}

BLOCK_KEYS = ("method", "name", "mark_phase")
"""Keys of a block besides the index kind's settings."""


def is_block(phase: Any) -> bool:
    return isinstance(phase, dict) and "dedup" in phase


def expand_dedup_blocks(phases: Any, names: re.Pattern, where: str = "job.phases") -> Any:
    """`phases` with every dedup block replaced by its index phase, and each run of consecutive blocks that
    share a marking phase followed by that one phase. Anything that is not a list is returned unchanged
    (the spec parser reports it). `names`: what a phase name must match. Errors name the block as the user
    wrote it (`job.phases[3].dedup`), not the phases it expands to."""
    if not isinstance(phases, list) or not any(is_block(p) for p in phases):
        return phases
    taken = {p.get("name") for p in phases if isinstance(p, dict) and not is_block(p)}
    out: list[Any] = []
    group: _MarkPhase | None = None  # the marking phase the current run of blocks adds to
    for i, item in enumerate(phases):
        if not is_block(item):
            if group is not None:
                out.append(group.phase())
                group = None
            out.append(item)
            continue
        at = f"{where}[{i}].dedup"
        method, knobs, index_name, mark_name = _read_block(item, at, names)
        if not out:
            raise ConfigError(f"{at}: a dedup needs a map phase before it to read from. Fix: put a map "
                              f"phase (e.g. normalize) first.")
        if index_name in taken:
            raise ConfigError(f"{at}.name: a phase is already named '{index_name}'. Fix: give this dedup "
                              f"another name: (the name of its index phase).")
        taken.add(index_name)
        if group is not None and group.name != mark_name:
            out.append(group.phase())
            group = None
        if group is None:
            if mark_name in taken:
                raise ConfigError(f"{at}.mark_phase: a phase is already named '{mark_name}'. Fix: give "
                                  f"this dedup another mark_phase:.")
            taken.add(mark_name)
            group = _MarkPhase(mark_name)
        out.append({"name": index_name, "kind": method.kind, "settings": knobs})
        group.markers.append({method.marker: {"index_phase": index_name}})
        group.rules.append({"column": method.column, "op": "==", "value": True, "reason": method.reason})
    if group is not None:
        out.append(group.phase())
    return out


class _MarkPhase:
    """The map phase a run of blocks shares: every marker, then one select with a rule per block."""

    def __init__(self, name: str):
        self.name = name
        self.markers: list[dict] = []
        self.rules: list[dict] = []

    def phase(self) -> dict:
        return {"name": self.name, "stages": [*self.markers, {"select": {"rules": self.rules}}]}


def _read_block(item: dict, at: str, names: re.Pattern) -> tuple[DedupMethod, dict, str, str]:
    extra = sorted(set(item) - {"dedup"})
    if extra:
        raise ConfigError(f"{at}: a dedup block is `- dedup: {{method: ..., ...}}` alone; unknown key "
                          f"'{extra[0]}' beside it. Fix: move it inside the dedup mapping.")
    block = item["dedup"]
    if not isinstance(block, dict):
        raise ConfigError(f"{at}: expected a mapping such as {{method: minhash, threshold: 0.8}}, got "
                          f"{block!r}.")
    name = block.get("method")
    if name not in METHODS:
        close = difflib.get_close_matches(str(name), METHODS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{at}.method: {name!r} is not a dedup method.{hint} Fix: use one of "
                          f"{', '.join(METHODS)}.")
    method = METHODS[name]
    knobs = {k: v for k, v in block.items() if k not in BLOCK_KEYS}
    config_from_dict(PHASE_KINDS[method.kind].config, knobs, at)  # knob errors name the block, not the expansion
    chosen = []
    for key, default in (("name", method.index_phase), ("mark_phase", method.mark_phase)):
        value = block.get(key, default)
        if not isinstance(value, str) or not names.match(value):
            raise ConfigError(f"{at}.{key}: {value!r} must be a phase name: lowercase letters, digits, _ "
                              f"or -. Fix: {key}: {default}")
        chosen.append(value)
    return method, knobs, chosen[0], chosen[1]
