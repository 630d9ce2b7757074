"""The pipeline file (`refinery run PIPELINE.yaml`): named steps, each one or more refinery command lines.

    name: llama-mini          # the run folder is <output>/<name>/; each step writes <output>/<name>/<step>/
    output: runs
    steps:
      - name: tokenizer
        run: tokenizer train --run ${corpus}/demo --vocab-size 8000 --out ${tokenizer}
      - name: pretrain
        run: train pretrain pretrain_tiny.yaml
        set: {data.export_dir: "${export}", output.dir: "${pretrain}"}

A step is a command a user could type. `${step}` is that step's folder (the step itself or an earlier
one: a reference to an earlier step is what makes this step depend on it), `${pipeline}` the run
folder (a step naming it depends on every earlier one), `${sha256:step/file}` the
sha256 of a file in an earlier step's folder (for the settings that pin a model's bytes). `set:` adds
`--set KEY=VALUE` flags to a one-command step. An argument naming a file next to the pipeline file is
read from there (like a job file's relative paths); its bytes are part of the step's fingerprint.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from typing import Any

import yaml

from schemas.config import ConfigError, apply_overrides, config_from_dict, setting

STEP_NAME = re.compile(r"[a-z][a-z0-9-]*")
RUN_FOLDER = "pipeline"
"""`${pipeline}` is the pipeline's run folder (<output>/<name>): a step naming it depends on every earlier step."""
STATE_DIR = "steps"
"""<run>/steps/ holds each step's state and log (jobs/pipeline/runner.py): no step may have that folder."""
PLACEHOLDER = re.compile(r"\$\{(?:(sha256):)?([a-z][a-z0-9-]*)([^}]*)\}")
"""`${step}` / `${step}/rest` (rest stays outside the braces) or `${sha256:step/path/in/its/folder}`."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class StepSpec:
    name: str = setting(doc="the step's name and folder (<output>/<pipeline>/<name>): lower case, digits, '-'")
    run: tuple[str, ...] = setting(doc="refinery command lines (without `refinery`), run in order; "
                                       "${step} is a step's folder, ${sha256:step/file} a file's sha256")
    set: dict[str, Any] | None = setting(None, doc="--set KEY=VALUE flags for a one-command step (YAML values)")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PipelineSpec:
    name: str = setting(doc="the pipeline's name: its run folder is <output>/<name>")
    output: str = setting("runs", doc="where the run folder goes (relative: from the current directory, "
                                      "like a job file's output)")
    steps: tuple[StepSpec, ...] = setting(doc="the steps, in order")
    base_dir: str = setting("", doc="(set by the loader) the pipeline file's folder")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.output, self.name)

    def step_dir(self, name: str) -> str:
        return os.path.join(self.run_dir, name)


def is_pipeline_file(path: str) -> bool:
    """A YAML mapping with `steps:` (a job file has `phases:`)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "steps" in data and "phases" not in data


def load_pipeline(path: str, overrides: list[str] = ()) -> PipelineSpec:
    """Read and check a pipeline file: unknown keys, bad names, unknown or later steps in ${...}."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with name, output and steps")
    if "base_dir" in data:  # the loader's, not the file's: it would be overwritten without a word
        raise ConfigError("pipeline.base_dir: set by refinery to the pipeline file's folder. Fix: remove it "
                          "(relative file names are read from the pipeline file's folder)")
    data = apply_overrides(data, list(overrides))
    steps = data.get("steps")
    if isinstance(steps, list):
        # `run:` may be one command line or a list of them.
        data["steps"] = [dict(s, run=[s["run"]] if isinstance(s.get("run"), str) else s.get("run"))
                         if isinstance(s, dict) and "run" in s else s for s in steps]
    data["base_dir"] = os.path.dirname(os.path.abspath(path))
    spec = config_from_dict(PipelineSpec, data, "pipeline")
    check_steps(spec)
    return spec


def check_steps(spec: PipelineSpec) -> None:
    if not STEP_NAME.fullmatch(spec.name):
        raise ConfigError(f"pipeline.name: {spec.name!r} is not a name. Fix: lower case letters, digits and '-'")
    if not spec.steps:
        raise ConfigError("pipeline.steps: no steps. Fix: list at least one step")
    seen: list[str] = []
    for i, step in enumerate(spec.steps):
        where = f"pipeline.steps[{i}]"
        if not STEP_NAME.fullmatch(step.name) or step.name in (RUN_FOLDER, STATE_DIR):
            raise ConfigError(f"{where}.name: {step.name!r} is not a step name. Fix: lower case letters, digits and "
                              f"'-', other than {RUN_FOLDER!r} (the run folder's placeholder) and {STATE_DIR!r} "
                              f"(the folder of the steps' states and logs)")
        if step.name in seen:
            raise ConfigError(f"{where}.name: {step.name!r} is used twice. Fix: give every step its own name")
        if not step.run or not all(isinstance(c, str) and c.strip() for c in step.run):
            raise ConfigError(f"{where}.run: give a refinery command line (e.g. `build demo.yaml`)")
        if step.set and len(step.run) > 1:
            raise ConfigError(f"{where}.set: only for a step with one command; this one has {len(step.run)}. "
                              f"Fix: put the --set flags in the command lines")
        for text in list(step.run) + [str(v) for v in (step.set or {}).values()]:
            for kind, ref, _ in PLACEHOLDER.findall(text):
                if ref == RUN_FOLDER and kind != "sha256":
                    continue
                if ref != step.name and ref not in seen:
                    later = ref in {s.name for s in spec.steps}
                    raise ConfigError(f"{where}: ${{{kind + ':' if kind else ''}{ref}...}} names "
                                      f"{'a later step' if later else 'no step'}: {ref!r}. Fix: refer to an "
                                      f"earlier step ({', '.join(seen) or 'none yet'})")
                if kind == "sha256" and ref == step.name:
                    raise ConfigError(f"{where}: ${{sha256:{ref}...}} is the step's own file, which does not "
                                      f"exist before it runs. Fix: name a file of an earlier step")
        for c in step.run:
            try:
                shlex.split(c)
            except ValueError as exc:
                raise ConfigError(f"{where}.run: {c!r}: {exc}") from None
        seen.append(step.name)


def dependencies(step: StepSpec, spec: PipelineSpec) -> list[str]:
    """The earlier steps this step's command lines refer to, in order of first mention; ${pipeline} (the run
    folder) refers to every earlier step."""
    earlier = [s.name for s in spec.steps[: [s.name for s in spec.steps].index(step.name)]]
    out: list[str] = []
    for text in list(step.run) + [str(v) for v in (step.set or {}).values()]:
        for _, ref, _ in PLACEHOLDER.findall(text):
            for dep in earlier if ref == RUN_FOLDER else [ref]:
                if dep != step.name and dep not in out:
                    out.append(dep)
    return out
