"""Checking a pipeline file before anything runs (`refinery validate PIPELINE.yaml`).

Every command line must parse as a refinery command, and every job file or training config a step names
must load strictly with the step's --set flags, through the loader the command itself uses (the table of
jobs/commands/_configs.py): an unknown key, a wrong type or a value out of range is reported with the
step's name. Upstream folders do not exist yet, so ${step} becomes the folder the step will write and
${sha256:...} a stand-in digest; files those paths name are not opened, nor is a config file inside the
run folder (an earlier step writes it: the command checks it when it runs).

`refinery run` makes the same check before its first step, so a typo in the last step does not wait for
all the others to finish.
"""

from __future__ import annotations

import contextlib
import io
import os

from jobs.commands._configs import loader_for
from jobs.pipeline.spec import PipelineSpec
from schemas.config import ConfigError


def check_pipeline(spec: PipelineSpec) -> list[str]:
    """The steps' commands as they would run (placeholders filled with stand-ins); raises ConfigError naming
    the step and the problem."""
    from jobs.cli import build_parser
    from jobs.pipeline.runner import step_commands

    lines = []
    for step in spec.steps:
        for argv in step_commands(step, spec, preview=True):
            where = f"pipeline step {step.name!r}: refinery {' '.join(argv[:3])}"
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err):
                    args = build_parser().parse_args(argv)
            except SystemExit:
                raise ConfigError(f"{where}: {err.getvalue().strip().splitlines()[-1]}") from None
            loader = loader_for(argv)
            if loader is not None and not _inside(getattr(args, loader.path_arg), spec.run_dir):
                try:
                    loader.load(getattr(args, loader.path_arg), list(args.overrides))
                except FileNotFoundError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
            lines.append(f"  {step.name:<14} refinery {' '.join(argv)}")
    return lines


def _inside(path: str, folder: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(folder) + os.sep)
