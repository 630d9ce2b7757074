"""The one declarative drop step: ordered rules over columns decide which documents leave, and why.

Scoring stages only add columns; a select step turns thresholds from the job spec into drops, so a
changed threshold re-runs only this step. The first rule that matches a row names its `drop_reason`;
`drop_stage` is the stage that wrote the rule's column (the select step itself for core columns).
A comparison with a null value never matches: write an explicit `is_null` rule to drop nulls.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from corpus.config import ConfigError, setting
from corpus.stages.base import BuildContext, StageSpec

_COMPARE = {"<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal",
            "==": "equal", "!=": "not_equal"}
_REASON = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RuleConfig:
    column: str = setting(doc="column the rule looks at")
    op: Literal["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "is_null", "not_null"] = setting(
        doc="comparison; a row matching the rule is dropped")
    value: Any = setting(None, doc="number, string, bool, or a list for in / not_in")
    reason: str | None = setting(None, doc="drop_reason written for matching rows (lowercase, digits, _ . -)")
    reason_from_column: bool = setting(
        False, doc="the column itself holds a reason string per row (null = keep); op must be not_null")
    domains: tuple[str, ...] = setting((), doc="apply the rule only to documents of these domains (empty = all); "
                                           "e.g. web-text heuristics for commoncrawl and c4 only")

    def __post_init__(self) -> None:
        if self.reason_from_column:
            if self.op != "not_null" or self.reason is not None:
                raise ConfigError(f"rule on '{self.column}': reason_from_column needs op: not_null and no "
                                  f"reason. Fix: write {{column: {self.column}, op: not_null, "
                                  f"reason_from_column: true}}.")
        elif self.reason is None or not _REASON.match(self.reason):
            raise ConfigError(f"rule on '{self.column}': reason {self.reason!r} must be a short lowercase "
                              f"name such as too_short. Fix: set reason.")
        needs_list = self.op in ("in", "not_in")
        needs_scalar = self.op in _COMPARE
        if needs_list and not isinstance(self.value, (list, tuple)):
            raise ConfigError(f"rule on '{self.column}': op {self.op} needs a list value, got "
                              f"{self.value!r}. Fix: value: [a, b].")
        if needs_scalar and (self.value is None or isinstance(self.value, (list, tuple, dict))):
            raise ConfigError(f"rule on '{self.column}': op {self.op} needs one number, string or bool, "
                              f"got {self.value!r}. Fix: set value.")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SelectConfig:
    rules: tuple[RuleConfig, ...] = setting(doc="drop rules, first match wins")

    def __post_init__(self) -> None:
        if not self.rules:
            raise ConfigError("select.rules: at least one rule is needed. Fix: add a rule or remove the step.")


def rule_matches(batch: pa.Table, rule: RuleConfig) -> pa.Array:
    """Boolean mask of rows the rule drops; never null."""
    mask = _column_matches(batch, rule)
    if rule.domains:
        mask = pc.and_(mask, pc.is_in(batch.column("domain"), value_set=pa.array(list(rule.domains), pa.string())))
    return mask


def _column_matches(batch: pa.Table, rule: RuleConfig) -> pa.Array:
    col = batch.column(rule.column)
    if rule.op == "is_null":
        return pc.is_null(col)
    if rule.op == "not_null":
        return pc.is_valid(col)
    if rule.op in ("in", "not_in"):
        hit = pc.is_in(col, value_set=pa.array(list(rule.value)))
        hit = hit if rule.op == "in" else pc.invert(hit)
        return pc.and_(hit, pc.is_valid(col))
    return pc.fill_null(getattr(pc, _COMPARE[rule.op])(col, rule.value), False)


def check_rule_types(cfg: SelectConfig, column_types: dict[str, pa.DataType], where: str) -> None:
    """Run every rule on an empty batch of the columns' types, so that a value Arrow cannot compare with
    its column (`value: 5O` on a number column) fails now, naming the rule, instead of in a shard's
    compute kernel after the job started. Columns of unknown type are left to run time."""
    for i, rule in enumerate(cfg.rules):
        needed = [rule.column] + (["domain"] if rule.domains else [])
        if any(c not in column_types for c in needed):
            continue
        batch = pa.table({c: pa.array([], column_types[c]) for c in needed})
        problem = None
        try:
            rule_matches(batch, rule)
        except (pa.ArrowException, TypeError, ValueError):
            problem = f"value {rule.value!r} cannot be compared with column '{rule.column}' ({column_types[rule.column]})"
        if rule.reason_from_column and not pa.types.is_string(column_types[rule.column]):
            problem = f"reason_from_column needs a string column; '{rule.column}' is {column_types[rule.column]}"
        if problem:
            kind = column_types[rule.column]
            example = ("a number, e.g. 20" if pa.types.is_integer(kind) else "a number, e.g. 0.5"
                       if pa.types.is_floating(kind) else "true or false" if pa.types.is_boolean(kind) else "a quoted string")
            raise ConfigError(f"{where}.rules[{i}] ({rule.column} {rule.op} {rule.value!r}): {problem}. "
                              f"Fix: write the value as {example}.")


def select(batch: pa.Table, cfg: SelectConfig, drop_stages: tuple[str, ...]) -> pa.Table:
    """Adds `drop_stage` and `drop_reason` (both null for kept rows); `drop_stages[i]` is rule i's stage."""
    n = batch.num_rows
    reason = pa.nulls(n, pa.string())
    stage = pa.nulls(n, pa.string())
    for rule, rule_stage in reversed(list(zip(cfg.rules, drop_stages))):
        mask = rule_matches(batch, rule)
        rule_reason = (batch.column(rule.column).cast(pa.string()) if rule.reason_from_column
                       else pa.scalar(rule.reason, pa.string()))
        reason = pc.if_else(mask, rule_reason, reason)
        stage = pc.if_else(mask, pa.scalar(rule_stage, pa.string()), stage)
    return batch.append_column("drop_stage", stage).append_column("drop_reason", reason)


def _build(cfg: SelectConfig, ctx: BuildContext):
    stages = tuple(ctx.stage if ctx.column_origin.get(r.column, "source") == "source"
                   else ctx.column_origin[r.column] for r in cfg.rules)
    return lambda batch: select(batch, cfg, stages)


SPEC = StageSpec(
    name="select",
    config=SelectConfig,
    kind="select",
    build=_build,
    reads=lambda cfg: tuple(dict.fromkeys([r.column for r in cfg.rules]
                                          + (["domain"] if any(r.domains for r in cfg.rules) else []))),
    writes=lambda cfg: ("drop_stage", "drop_reason"),
)
