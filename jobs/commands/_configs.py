"""Which config file each refinery command reads, and the function that loads it strictly: one table for the
commands themselves (`train ...`, `mix doremi`) and for `refinery validate` of a pipeline file, which loads
every step's config with the step's --set flags before anything runs (jobs/pipeline/check.py).

The loaders import their modules when called: the table is read by every `refinery` start, and the training
modules pull in torch."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class ConfigLoader:
    path_arg: str
    """the command's argument (argparse dest) that names the file: `job` or `config`"""
    load: Callable[[str, list[str]], Any]
    """load(path, overrides): the checked config; ConfigError (naming the field and the fix) otherwise"""


def _job(path: str, overrides: list[str]):
    from corpus.runtime.spec import load_job

    return load_job(path, overrides)


def _pretrain(path: str, overrides: list[str]):
    from training.loop.config import load_pretrain_config

    return load_pretrain_config(path, overrides)


def _sft(path: str, overrides: list[str]):
    from training.align.config import SFTConfig, load_align_config

    return load_align_config(SFTConfig, path, overrides)


def _rm(path: str, overrides: list[str]):
    from training.align.config import RMConfig, load_align_config

    return load_align_config(RMConfig, path, overrides)


def _ppo(path: str, overrides: list[str]):
    from training.align.ppo_config import load_ppo_config

    return load_ppo_config(path, overrides)


def _doremi(path: str, overrides: list[str]):
    from training.mixture.config import load_doremi_config

    return load_doremi_config(path, overrides)


CONFIG_LOADERS: dict[tuple[str, ...], ConfigLoader] = {
    ("build",): ConfigLoader("job", _job),
    ("train", "pretrain"): ConfigLoader("config", _pretrain),
    ("train", "sft"): ConfigLoader("config", _sft),
    ("train", "rm"): ConfigLoader("config", _rm),
    ("train", "ppo"): ConfigLoader("config", _ppo),
    ("mix", "doremi"): ConfigLoader("config", _doremi),
    # every model of a comparison is this pretraining config with one mixture (training/mixture/compare.py)
    ("mix", "compare"): ConfigLoader("config", _pretrain),
}
"""Command (its first words after `refinery`) -> the config it reads."""


def loader_for(argv: list[str]) -> ConfigLoader | None:
    """The loader of the command `argv` (after `refinery`), if it reads a config file."""
    return next((f for k, f in CONFIG_LOADERS.items() if tuple(argv[:len(k)]) == k), None)
