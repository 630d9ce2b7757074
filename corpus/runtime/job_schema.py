"""The job spec's JSON Schema, generated from the config dataclasses so it can never drift from them.

`schemas/job_spec_v1.schema.json` is this function's output, committed for editors, CI linters and
other tools (a test regenerates it and compares). Refresh it with
`python -m corpus.runtime.job_schema > schemas/job_spec_v1.schema.json`.
refinery itself validates with corpus.runtime.spec, whose messages name the field, value and fix.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from corpus.runtime.spec import InputSpec, RuntimeSpec
from corpus.sources import SOURCES
from corpus.stages import STAGES
from schemas.arrow import DOMAINS


def dataclass_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props = {}
    required = []
    for f in dataclasses.fields(cls):
        prop = type_schema(hints[f.name])
        m = f.metadata
        if m.get("doc"):
            prop["description"] = m["doc"] + (f" ({m['unit']})" if m.get("unit") else "")
        for key, js in (("ge", "minimum"), ("le", "maximum"), ("gt", "exclusiveMinimum"), ("lt", "exclusiveMaximum")):
            if m.get(key) is not None:
                prop[js] = m[key]
        if f.default is not dataclasses.MISSING:
            prop["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        elif f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        props[f.name] = prop
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (Union, types.UnionType):
        return {"anyOf": [type_schema(a) for a in get_args(tp)]}
    if origin is tuple:
        return {"type": "array", "items": type_schema(get_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(get_args(tp)[1])}
    if dataclasses.is_dataclass(tp):
        return dataclass_schema(tp)
    return {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
            str: {"type": "string"}, type(None): {"type": "null"}}[tp]


def job_json_schema() -> dict[str, Any]:
    from corpus.phase_kinds import PHASE_KINDS

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
            "phases": {"type": "array", "minItems": 1, "items": {"anyOf": [map_phase, *cross]}},
        },
    }


if __name__ == "__main__":
    print(json.dumps(job_json_schema(), indent=2))
