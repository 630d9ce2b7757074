"""The plan check: before Ray starts, every stage's input columns must exist in what comes before it.

Columns flow through a job: the reader's core columns, then whatever each stage adds; columns written
in one phase are in its Parquet output, so later phases see them. A scorer may only add new
versioned columns (`ppl_v1`); a transform may only rewrite columns that exist. Select's
`drop_stage`/`drop_reason` columns leave the batch with the rejected rows.
"""

from __future__ import annotations

import dataclasses

from corpus.config import ConfigError
from corpus.dedup.kinds import PHASE_KINDS
from corpus.runtime.spec import JobSpec
from corpus.stages import STAGES
from schemas.arrow import CORE_COLUMNS, DOCUMENT_V1, versioned_column_ok


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PhasePlan:
    index: int
    name: str
    column_origin: dict[str, str]
    """Every column available at the end of the phase -> the stage (or 'source') that wrote it last."""
    origin_before: tuple[dict[str, str], ...]
    """For each stage: the column origins it sees (used to name drop_stage)."""


def check_plan(job: JobSpec) -> list[PhasePlan]:
    origin = {c: "source" for c in CORE_COLUMNS}
    types = {f.name: f.type for f in DOCUMENT_V1}  # what select rules are tried against (known ones only)
    plans = []
    for pi, phase in enumerate(job.phases):
        if phase.kind != "map":
            if pi == 0:
                raise ConfigError(f"job.phases[0] ({phase.name}): a {phase.kind} phase needs a map phase "
                                  f"before it to read from. Fix: put a map phase (e.g. normalize) first.")
            missing = [c for c in PHASE_KINDS[phase.kind].reads(phase.settings) if c not in origin]
            if missing:
                raise ConfigError(f"job.phases[{pi}] ({phase.name}): reads column '{missing[0]}', which no "
                                  f"earlier stage writes. Fix: add a stage that writes it before this phase.")
            plans.append(PhasePlan(index=pi, name=phase.name, column_origin=dict(origin), origin_before=()))
            continue
        befores = []
        for si, entry in enumerate(phase.stages):
            spec = STAGES[entry.name]
            where = f"job.phases[{pi}] ({phase.name}).stages[{si}] ({entry.name})"
            missing = [c for c in spec.reads(entry.config) if c not in origin]
            if missing:
                producers = _producers(job, missing[0])
                fix = (f"move it after {producers[0]}" if producers
                       else f"add a stage that writes '{missing[0]}' before it")
                raise ConfigError(f"{where}: reads column '{missing[0]}', which no earlier stage writes "
                                  f"(available: {', '.join(sorted(origin))}). Fix: {fix}.")
            befores.append(dict(origin))
            if spec.kind == "select":
                from corpus.stages.select import check_rule_types

                check_rule_types(entry.config, types, f"{where}.select")
            writes = spec.writes(entry.config)
            if spec.kind == "score":
                for column in writes:
                    if not versioned_column_ok(column):
                        raise ConfigError(f"{where}: scoring column '{column}' has no version suffix "
                                          f"(_v1). Fix: rename it in the stage.")
                    if column in origin:
                        raise ConfigError(f"{where}: column '{column}' is already written by "
                                          f"{origin[column]}. Fix: remove one of the two stages.")
            elif spec.kind == "transform":
                for column in writes:  # a transform may also add versioned columns (what it changed)
                    if column not in origin and not versioned_column_ok(column):
                        raise ConfigError(f"{where}: rewrites column '{column}' that does not exist.")
            if spec.kind != "select":
                for column in writes:
                    origin[column] = entry.name
                    types.pop(column, None)  # a rewrite may change the type: unknown unless declared
                types.update(spec.types(entry.config))
        plans.append(PhasePlan(index=pi, name=phase.name, column_origin=dict(origin),
                               origin_before=tuple(befores)))
    return plans


def _producers(job: JobSpec, column: str) -> list[str]:
    found = []
    for phase in job.phases:
        for entry in phase.stages:
            spec = STAGES[entry.name]
            if spec.kind != "select" and column in spec.writes(entry.config):
                found.append(f"{phase.name}.{entry.name}")
    return found
