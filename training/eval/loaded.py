"""A trained checkpoint opened for evaluation in this process: one CPU rank (TP = PP = 1), any sequence
length. Used by `refinery eval ppl` and `refinery eval generate`."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Any, Iterator


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LoadedCheckpoint:
    run_dir: str
    checkpoint: str
    config: Any
    """The run's PretrainConfig (config.resolved.yaml)."""
    model: Any
    step: int
    seq_length: int


def resolve_checkpoint(path: str) -> tuple[str, str]:
    """(run folder, checkpoint folder) of a run folder (its `latest`) or of a checkpoints/step-N folder."""
    from training.loop.checkpoint import latest_checkpoint

    path = os.path.abspath(path)
    if os.path.exists(os.path.join(path, "meta.json")):
        return os.path.dirname(os.path.dirname(path)), path
    ckpt = latest_checkpoint(os.path.join(path, "checkpoints"))
    if ckpt is None:
        raise FileNotFoundError(f"{path}: neither a run folder with checkpoints/latest nor a checkpoints/step-N "
                                f"folder. Fix: train first (`refinery train pretrain`), or name a step folder")
    return path, ckpt


def read_run_config(run_dir: str):
    import yaml

    from training.loop.config import parse_pretrain_config
    from training.loop.launch import RESOLVED

    with open(os.path.join(run_dir, RESOLVED), encoding="utf-8") as f:
        return parse_pretrain_config(yaml.safe_load(f)["config"])


def read_manifest(export_dir: str) -> dict[str, Any]:
    path = os.path.join(export_dir, "manifest.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: is {export_dir} a `refinery export megatron` folder?")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@contextlib.contextmanager
def loaded_checkpoint(path: str, *, vocab_size: int, seq_length: int | None = None) -> Iterator[LoadedCheckpoint]:
    """The checkpoint's model with megatron-core's parallel state set up, torn down on exit. `vocab_size`: the
    tokenizer's (padded here as in training); `seq_length` may exceed training's except for learned positions."""
    import torch

    from training.loop.checkpoint import load_checkpoint
    from training.loop.parallel import ensure_process_group, init_parallel, shutdown_parallel
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt

    run_dir, ckpt = resolve_checkpoint(path)
    cfg = read_run_config(run_dir)
    length = seq_length or cfg.model.seq_length
    trained_max = cfg.model.max_position or cfg.model.seq_length
    if cfg.model.position == "learned" and length > trained_max:
        raise ValueError(f"learned positions stop at {trained_max}: set model.max_position >= {length} when "
                         f"training to evaluate at {length}")
    model_cfg = dataclasses.replace(cfg.model, seq_length=length, max_position=max(trained_max, length))
    created = not torch.distributed.is_initialized()
    ensure_process_group("gloo")
    init_parallel(tensor=1, pipeline=1, seed=cfg.schedule.seed, on_gpu=False)
    try:
        model = build_gpt(model_cfg, vocab_size=padded_vocab_size(cfg.model.vocab_size or vocab_size))
        meta = load_checkpoint(ckpt, model)
        yield LoadedCheckpoint(run_dir=run_dir, checkpoint=ckpt, config=cfg, model=model, step=meta["step"],
                               seq_length=length)
    finally:
        shutdown_parallel()
        if created:
            torch.distributed.destroy_process_group()
