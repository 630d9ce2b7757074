"""The job spec: YAML -> frozen, validated objects, before anything starts.

A job reads one or more inputs and runs a list of phases; each phase is a fused chain of per-document
stages. Everything is checked here: unknown keys, types and ranges (corpus.config), stage and source
names, and the stage settings themselves, so a wrong job fails in a second with a message that names
the field, the value and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from typing import Any

import yaml

from corpus.config import ConfigError, config_from_dict, setting
from corpus.dedup.block import expand_dedup_blocks
from corpus.dedup.kinds import PHASE_KINDS
from corpus.io.files import filesystem, is_local
from schemas.config import apply_overrides
from corpus.sources import SOURCES
from corpus.stages import STAGES
from schemas.arrow import DOMAINS

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")

# The only URL schemes a job file may give as its output root: object stores, reached through fsspec
# (the s3fs / gcsfs packages). Every other scheme, file:// aside, can name a place on this machine.
OBJECT_STORES = ("s3", "gs")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class InputSpec:
    source: str = setting(doc="reader name: " + ", ".join(SOURCES))
    paths: tuple[str, ...] = setting(doc="files, folders or glob patterns; relative ones are read from the job file's folder")
    domain: str = setting(doc="domain of these documents: " + ", ".join(DOMAINS))
    options: dict[str, Any] | None = setting(None, doc="settings of the reader (see its XConfig)")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class StageEntry:
    name: str
    """Stage name in the job (also the key in STAGES)."""
    config: Any
    """The stage's validated XConfig."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PhaseSpec:
    name: str
    stages: tuple[StageEntry, ...] = ()
    """For `map` phases: the fused per-document stages."""
    kind: str = "map"
    """`map`, or a cross-shard kind from corpus.dedup.kinds (dedup indexes, components ...)."""
    settings: Any = None
    """For cross-shard kinds: the kind's validated config."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RuntimeSpec:
    workers: int = setting(2, doc="Ray actors running shards at once (one CPU each)", unit="actors", ge=1)
    max_retries: int = setting(2, doc="extra attempts for a failed shard before it is quarantined",
                               unit="attempts", ge=0, le=20)
    batch_rows: int = setting(1000, doc="documents per batch inside a shard", unit="rows", ge=1)
    row_group_bytes: int = setting(64 << 20, doc="Parquet row group size target", unit="bytes", ge=1 << 16)
    shard_timeout_s: float = setting(0.0, doc="a shard running longer is failed and retried (0 = no limit)",
                                     unit="seconds", ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    name: str
    inputs: tuple[InputSpec, ...]
    output: str
    """Output root; the job writes `<output>/<name>/`."""
    runtime: RuntimeSpec
    phases: tuple[PhaseSpec, ...]
    base_dir: str
    """Folder of the job file: relative input paths are read from there."""
    raw: dict
    """The spec as a plain mapping with every default filled in: written next to the output."""


_TOP_KEYS = ("name", "inputs", "output", "runtime", "phases")


def load_job(path: str, overrides: list[str] = (), output: str | None = None) -> JobSpec:
    """Read a YAML job file, apply `--set key=value` overrides and `--output`, validate everything."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    data = apply_overrides(data if data is not None else {}, overrides)
    if output is not None:
        data["output"] = output
    return parse_job(data, base_dir=os.path.dirname(os.path.abspath(path)), output_override=output is not None)


def parse_job(data: Any, base_dir: str, output_override: bool = False) -> JobSpec:
    """Validate a job mapping. `output_override`: the output root came from the operator (--output),
    not from the job file, so it may be absolute."""
    if not isinstance(data, dict):
        raise ConfigError("job: expected a mapping with keys " + ", ".join(_TOP_KEYS))
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), _TOP_KEYS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"job: unknown key '{unknown[0]}'.{hint} Fix: use only {', '.join(_TOP_KEYS)}.")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"job.name: {name!r} must be 1-63 lowercase letters, digits, _ or -. Fix: name: my-job")
    output = data.get("output", "runs")
    if not isinstance(output, str) or not output:
        raise ConfigError(f"job.output: {output!r} must be a path or URI. Fix: output: runs")
    if not output_override:
        output = job_file_output(output)
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ConfigError("job.inputs: at least one input is needed. Fix: inputs: [{source: jsonl, paths: "
                          "[data/*.jsonl], domain: c4}]")
    parsed_inputs = tuple(_parse_input(x, f"job.inputs[{i}]") for i, x in enumerate(inputs))
    runtime = config_from_dict(RuntimeSpec, data.get("runtime"), "job.runtime")
    phases = data.get("phases")
    if not isinstance(phases, list) or not phases:
        raise ConfigError("job.phases: at least one phase is needed. Fix: phases: [{name: clean, stages: [...]}]")
    # `- dedup: {method: ...}` blocks become their index and marking phases here, so everything after
    # (plan, phase folders, job.resolved.yaml) sees only the three-part form.
    phases = expand_dedup_blocks(phases, _NAME)
    parsed_phases = tuple(_parse_phase(p, f"job.phases[{i}]") for i, p in enumerate(phases))
    seen = set()
    for p in parsed_phases:
        if p.name in seen:
            raise ConfigError(f"job.phases: two phases are named '{p.name}'. Fix: give each a unique name.")
        seen.add(p.name)
    raw = {"name": name, "output": output,
           "inputs": [dataclasses.asdict(i) for i in parsed_inputs],
           "runtime": dataclasses.asdict(runtime),
           "phases": [{"name": p.name, "stages": [{s.name: _plain(s.config)} for s in p.stages]}
                      if p.kind == "map" else {"name": p.name, "kind": p.kind, "settings": _plain(p.settings)}
                      for p in parsed_phases]}
    return JobSpec(name=name, inputs=parsed_inputs, output=output, runtime=runtime, phases=parsed_phases,
                   base_dir=base_dir, raw=raw)


def job_file_output(output: str) -> str:
    """The output root a job file asks for, if a job file may choose it (else ConfigError).

    A job file may be someone else's: it must not pick where on this machine it writes. It may name a
    folder below the working folder, or an object store; any other place needs --output. A `file://`
    URL is a local path under the same rule (returned without its scheme). fsspec, which does the
    writing, reads more than plain paths (`~` expansion, `local://`, `memory://`, chained
    `simplecache::file:///...`), so the local answer is also checked against where fsspec would write.
    """
    fix = ("Fix: use a relative path without '..' or '~' (or an " + " / ".join(f"{s}://" for s in OBJECT_STORES)
           + " URL) in the job file, or choose the folder on the command line with --output.")
    scheme, sep, rest = output.partition("://")
    if "::" in output:
        raise ConfigError(f"job.output: {output!r} chains fsspec file systems. {fix}")
    if sep and scheme in OBJECT_STORES:
        return output
    if sep and scheme != "file":
        raise ConfigError(f"job.output: {output!r}: a job file may not write to {scheme}://. {fix}")
    local = rest if sep else output
    if not local.strip("/"):
        raise ConfigError(f"job.output: {output!r} names no folder. {fix}")
    if local.startswith("~") or os.path.isabs(local) or ".." in local.split("/"):
        raise ConfigError(f"job.output: {output!r} leaves the working folder. {fix}")
    fs, where = filesystem(local)
    if not is_local(fs) or os.path.normpath(where) != os.path.abspath(local):
        raise ConfigError(f"job.output: {output!r} is not a plain relative path (fsspec would write to "
                          f"{fs.protocol}:{where}). {fix}")
    return local


def _plain(cfg: Any) -> Any:
    """A config dataclass as plain YAML-able data (tuples -> lists)."""
    def conv(x):
        if isinstance(x, (list, tuple)):
            return [conv(v) for v in x]
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        return x
    return conv(dataclasses.asdict(cfg))


def _parse_input(data: Any, where: str) -> InputSpec:
    spec = config_from_dict(InputSpec, data, where)
    if spec.source not in SOURCES:
        close = difflib.get_close_matches(spec.source, SOURCES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{where}.source: unknown reader '{spec.source}'.{hint} Fix: use one of "
                          f"{', '.join(SOURCES)}.")
    if spec.domain not in DOMAINS:
        raise ConfigError(f"{where}.domain: '{spec.domain}' is not a domain. Fix: use one of {', '.join(DOMAINS)}.")
    if not spec.paths:
        raise ConfigError(f"{where}.paths: empty. Fix: list at least one file, folder or glob.")
    options = config_from_dict(SOURCES[spec.source].config, spec.options or {}, f"{where}.options")
    return dataclasses.replace(spec, options=_plain(options))


def _parse_phase(data: Any, where: str) -> PhaseSpec:
    kind = data.get("kind", "map") if isinstance(data, dict) else "map"
    allowed = {"name", "stages"} if kind == "map" else {"name", "kind", "settings"}
    if kind == "map":
        allowed.add("kind")
    if not isinstance(data, dict) or set(data) - allowed:
        extra = sorted(set(data) - allowed) if isinstance(data, dict) else []
        raise ConfigError(f"{where}: a {kind} phase is a mapping with {', '.join(sorted(allowed))}"
                          + (f"; unknown key '{extra[0]}'" if extra else "") + ".")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}.name: {name!r} must be lowercase letters, digits, _ or -. Fix: name: clean")
    if kind != "map":
        if kind not in PHASE_KINDS:
            options = ["map", *PHASE_KINDS]
            close = difflib.get_close_matches(str(kind), options, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{where}.kind: unknown phase kind {kind!r}.{hint} Fix: use one of {', '.join(options)}.")
        settings = config_from_dict(PHASE_KINDS[kind].config, data.get("settings") or {}, f"{where}.settings")
        return PhaseSpec(name=name, kind=kind, settings=settings)
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{where}.stages: at least one stage is needed. Fix: stages: [normalize: {{}}]")
    entries = []
    for i, item in enumerate(stages):
        at = f"{where}.stages[{i}]"
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{at}: write a stage as `- name: {{settings}}`, got {item!r}.")
        (stage_name, settings), = item.items()
        if stage_name not in STAGES:
            close = difflib.get_close_matches(str(stage_name), STAGES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{at}: unknown stage '{stage_name}'.{hint} Fix: use one of {', '.join(STAGES)}.")
        if any(e.name == stage_name for e in entries):
            raise ConfigError(f"{at}: stage '{stage_name}' appears twice in phase '{name}'. Fix: put the "
                              f"second one in its own phase.")
        cfg = config_from_dict(STAGES[stage_name].config, settings, f"{at}.{stage_name}")
        entries.append(StageEntry(name=stage_name, config=cfg))
    return PhaseSpec(name=name, stages=tuple(entries))
