"""Strict loading of frozen config dataclasses from YAML mappings (job files and training configs).

Every config in refinery is a frozen, keyword-only, slotted dataclass whose fields are declared with
`setting(...)`: a default, a docstring, a unit and an allowed range. `config_from_dict` builds one
from a plain mapping and refuses anything doubtful (an unknown key, a wrong type, a value out of range)
with a message that names the field, the value and the fix, so a typo in a job file fails before Ray
starts instead of hours into a run.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import yaml


class ConfigError(ValueError):
    """A job spec or stage config that cannot be used as written."""


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    unit: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A config field with its documentation and allowed range (bounds are inclusive for ge/le)."""
    meta = {"doc": doc, "unit": unit, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple (or a default_factory) for container defaults")
    return dataclasses.field(default=default, metadata=meta)


def describe_config(cls: type) -> list[dict[str, Any]]:
    """One row per field (name, type, default, unit, doc): used by docs and `refinery validate`."""
    rows = []
    for f in dataclasses.fields(cls):
        default = None if f.default is dataclasses.MISSING else f.default
        rows.append({"name": f.name, "type": _type_name(_resolved_hints(cls)[f.name]),
                     "default": default, "unit": f.metadata.get("unit", ""),
                     "doc": f.metadata.get("doc", "")})
    return rows


def config_from_dict(cls: type, data: Any, where: str) -> Any:
    """Build `cls` from `data`, raising ConfigError that names `where.field`, the value and the fix."""
    if data is None:
        data = {}
    if dataclasses.is_dataclass(data) and isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {data!r}. "
                          f"Fix: write it as `key: value` lines; known keys: {_known(cls)}.")
    hints = _resolved_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: unknown key '{key}'.{hint} Fix: remove it or use one of: "
                          f"{_known(cls)}.")
    values = {}
    for name, f in fields.items():
        path = f"{where}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{path}: required setting is missing. Fix: add `{name}:` "
                                  f"({f.metadata.get('doc', '')}).")
            continue
        value = _coerce(hints[name], data[name], path)
        _check_range(f, value, path)
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a __post_init__ check across fields
        raise ConfigError(f"{where}: {exc}") from exc


def _known(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        k, v = get_args(tp)
        return f"mapping {_type_name(k)} -> {_type_name(v)}"
    if dataclasses.is_dataclass(tp):
        return f"mapping ({tp.__name__})"
    return {type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, path)
            except ConfigError:
                continue
        raise _type_error(path, value, tp)
    if origin is Literal:
        if value in get_args(tp):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in get_args(tp)], n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{path}: {value!r} is not allowed.{hint} Fix: use one of "
                          f"{', '.join(repr(a) for a in get_args(tp))}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _type_error(path, value, tp)
        item = get_args(tp)[0]
        return tuple(_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(path, value, tp)
        kt, vt = get_args(tp)
        return {_coerce(kt, k, f"{path}.<key>"): _coerce(vt, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(path, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # YAML reads 1e6 as a float
        raise _type_error(path, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(path, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(path, value, tp)
    if isinstance(value, tp):
        return value
    raise _type_error(path, value, tp)


def _type_error(path: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{path}: got {value!r} ({type(value).__name__}); expected {_type_name(tp)}. "
                       f"Fix: write a value of type {_type_name(tp)}.")


def _check_range(f: dataclasses.Field, value: Any, path: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    m = f.metadata
    unit = f" {m['unit']}" if m.get("unit") else ""
    checks = [("ge", value >= m["ge"] if m.get("ge") is not None else True, ">="),
              ("gt", value > m["gt"] if m.get("gt") is not None else True, ">"),
              ("le", value <= m["le"] if m.get("le") is not None else True, "<="),
              ("lt", value < m["lt"] if m.get("lt") is not None else True, "<")]
    for key, ok, sign in checks:
        if not ok:
            raise ConfigError(f"{path}: {value!r}{unit} is out of range. Fix: use a value "
                              f"{sign} {m[key]}{unit} ({m.get('doc', '')}).")


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """`a.b.0.c=value`: walk mappings by key and lists by index (the list's length as the last part appends);
    the value is parsed as YAML."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value. Fix: e.g. --set runtime.workers=4")
        node: Any = data
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                # The index one past the end appends (`phases.0.stages.6={...}` adds a 7th stage), so a
                # pipeline step can add a stage to a job file without copying it.
                if not part.isdigit() or int(part) > len(node) or (int(part) == len(node) and not last):
                    raise ConfigError(f"--set {key}: '{part}' is not an index of the list at {where} "
                                      f"(length {len(node)}). Fix: use 0..{len(node) - 1}, or {len(node)} "
                                      f"to append a value.")
                part = int(part)
                if part == len(node):
                    node.append(None)
            elif not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {where} is a value, not a mapping or list.")
            if last:
                node[part] = yaml.safe_load(raw)
            else:
                if isinstance(node, dict) and part not in node:
                    node[part] = {}
                node = node[part]
    return data


# JSON Schema of a config dataclass: generated, so that it can never drift from the dataclasses.

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
            default = f.default
            if dataclasses.is_dataclass(default):
                default = dataclasses.asdict(default)
            prop["default"] = list(default) if isinstance(default, tuple) else default
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
