"""The job spec's JSON Schema, generated from the config dataclasses so it can never drift from them.

`schemas/job_spec_v1.schema.json` is this function's output, committed for editors, CI linters and
other tools (a test regenerates it and compares). Refresh it with
`python -m corpus.runtime.job_schema > schemas/job_spec_v1.schema.json`.
refinery itself validates with corpus.runtime.spec, whose messages name the field, value and fix.
"""

from __future__ import annotations

import json
from typing import Any

from corpus.dedup.block import METHODS
from corpus.dedup.kinds import PHASE_KINDS
from corpus.runtime.spec import InputSpec, RuntimeSpec
from corpus.sources import SOURCES
from corpus.stages import STAGES
from schemas.arrow import DOMAINS
from schemas.config import dataclass_schema


def job_json_schema() -> dict[str, Any]:

    inputs = []
    for name, spec in SOURCES.items():
        s = dataclass_schema(InputSpec)
        s["properties"]["source"] = {"const": name}
        s["properties"]["domain"] = {"enum": list(DOMAINS)}
        s["properties"]["options"] = dataclass_schema(spec.config)
        inputs.append(s)
    stage_items = [{"type": "object", "properties": {name: dataclass_schema(spec.config)},
                    "required": [name], "additionalProperties": False} for name, spec in STAGES.items()]
    stage_items.append({"enum": list(STAGES)})
    name_pattern = "^[a-z0-9][a-z0-9_\\-]{0,62}$"
    map_phase = {"type": "object", "additionalProperties": False, "required": ["name", "stages"],
                 "properties": {"name": {"type": "string", "pattern": name_pattern}, "kind": {"const": "map"},
                                "stages": {"type": "array", "minItems": 1, "items": {"anyOf": stage_items}}}}
    cross = [{"type": "object", "additionalProperties": False, "required": ["name", "kind"],
              "properties": {"name": {"type": "string", "pattern": name_pattern}, "kind": {"const": kind},
                             "settings": dataclass_schema(spec.config)}} for kind, spec in PHASE_KINDS.items()]
    blocks = []
    for method, m in METHODS.items():
        b = dataclass_schema(PHASE_KINDS[m.kind].config)
        b["properties"] = {"method": {"const": method},
                           "name": {"type": "string", "pattern": name_pattern, "default": m.index_phase},
                           "mark_phase": {"type": "string", "pattern": name_pattern, "default": m.mark_phase},
                           **b["properties"]}
        b["required"] = ["method", *b.get("required", [])]
        blocks.append(b)
    dedup = {"type": "object", "additionalProperties": False, "required": ["dedup"],
             "properties": {"dedup": {"anyOf": blocks}}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "refinery/job_spec_v1",
        "title": "refinery job spec, version 1",
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "inputs", "phases"],
        "properties": {
            "name": {"type": "string", "pattern": name_pattern},
            "output": {"type": "string", "default": "runs", "description": "output root; the job writes <output>/<name>/"},
            "inputs": {"type": "array", "minItems": 1, "items": {"anyOf": inputs}},
            "runtime": dataclass_schema(RuntimeSpec),
            "phases": {"type": "array", "minItems": 1, "items": {"anyOf": [map_phase, *cross, dedup]}},
        },
    }


if __name__ == "__main__":
    print(json.dumps(job_json_schema(), indent=2))
