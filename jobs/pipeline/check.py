"""Checking a pipeline file before anything runs (`refinery validate PIPELINE.yaml`).

Every command line must parse as a refinery command, and every job file or training config a step names
must load strictly with the step's --set flags (an unknown key, a wrong type or a value out of range is
reported with the step's name). Upstream folders do not exist yet, so ${step} becomes the folder the step
will write and ${sha256:...} a stand-in digest; files those paths name are not opened.
"""

from __future__ import annotations

import contextlib
import io
from typing import Callable

from jobs.pipeline.spec import PipelineSpec
from schemas.config import ConfigError


def _loaders() -> dict[tuple[str, ...], Callable]:
    from corpus.runtime.spec import load_job
    from training.align.config import RMConfig, SFTConfig, load_align_config
    from training.align.ppo_config import load_ppo_config
    from training.loop.config import load_pretrain_config
    from training.mixture.config import load_doremi_config

    return {("build",): load_job, ("train", "pretrain"): load_pretrain_config,
            ("train", "sft"): lambda p, o: load_align_config(SFTConfig, p, o),
            ("train", "rm"): lambda p, o: load_align_config(RMConfig, p, o),
            ("train", "ppo"): load_ppo_config, ("mix", "doremi"): load_doremi_config}


def check_pipeline(spec: PipelineSpec) -> list[str]:
    """The steps' commands as they would run (placeholders filled with stand-ins); raises ConfigError naming
    the step and the problem."""
    from jobs.cli import build_parser
    from jobs.pipeline.runner import step_commands

    loaders = _loaders()
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
            loader = next((f for k, f in loaders.items() if tuple(argv[:len(k)]) == k), None)
            if loader is not None:
                path = args.job if argv[0] == "build" else args.config
                try:
                    loader(path, list(args.overrides))
                except FileNotFoundError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {exc}") from None
            lines.append(f"  {step.name:<14} refinery {' '.join(argv)}")
    return lines
