"""Held-out loss per domain of a pretraining checkpoint, in this process (one rank, any sequence length).

The checkpoint is read through the resharding loader, so a run trained at TP=2 x DP=2 is evaluated
here at TP=1. `seq_length` may differ from training: that is how length extrapolation (ALiBi vs
learned positions) is measured. Perplexity = exp(token-weighted mean loss).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from typing import Any


def checkpoint_loss(run_dir: str, *, seq_length: int | None = None, valid_samples_per_domain: int | None = None,
                    micro_batch_size: int = 4) -> dict[str, Any]:
    """{"loss": {domain: loss, "all": loss}, "perplexity": {...}, "step": N, "seq_length": L} of `latest`."""
    import torch
    import yaml

    from training.data.blend import build_pretrain_data, collate
    from training.loop.checkpoint import latest_checkpoint, load_checkpoint
    from training.loop.config import parse_pretrain_config
    from training.loop.launch import MIXTURE, RESOLVED
    from training.loop.optim import build_optimizer
    from training.loop.parallel import ensure_process_group, init_parallel, shutdown_parallel
    from training.loop.step import evaluate
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt

    with open(os.path.join(run_dir, RESOLVED), encoding="utf-8") as f:
        cfg = parse_pretrain_config(yaml.safe_load(f)["config"])
    with open(os.path.join(run_dir, MIXTURE), encoding="utf-8") as f:
        weights = json.load(f)["weights"]
    length = seq_length or cfg.model.seq_length
    model_cfg = dataclasses.replace(cfg.model, seq_length=length,
                                    max_position=max(cfg.model.max_position or cfg.model.seq_length, length))
    ckpt = latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir}/checkpoints has no `latest` checkpoint")
    with open(os.path.join(cfg.data.export_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    ensure_process_group("gloo")
    init_parallel(tensor=1, pipeline=1, seed=cfg.schedule.seed, on_gpu=False)
    cache = os.path.join(run_dir, f"eval-index-cache-{os.getpid()}")
    try:
        vocab = padded_vocab_size(cfg.model.vocab_size or manifest["tokenizer"]["vocab_size"])
        if cfg.model.position == "learned" and length > (cfg.model.max_position or cfg.model.seq_length):
            raise ValueError(f"learned positions stop at {cfg.model.max_position or cfg.model.seq_length}: set "
                             f"model.max_position >= {length} when training to evaluate at {length}")
        model = build_gpt(model_cfg, vocab_size=vocab)
        meta = load_checkpoint(ckpt, model, build_optimizer(model, cfg.optimizer, on_gpu=False))
        os.makedirs(cache)
        data = build_pretrain_data(cfg.data.export_dir, manifest, weights, private_dir=cache, split=cfg.data.split,
                                   seq_length=length, seed=cfg.schedule.seed, train_samples=1,
                                   valid_samples_per_domain=valid_samples_per_domain or cfg.data.valid_samples_per_domain,
                                   share_tolerance=1.0)
        loss = evaluate(model, data.valid, samples=valid_samples_per_domain or cfg.data.valid_samples_per_domain,
                        micro_batch_size=micro_batch_size, collate=collate,
                        to_device=lambda b: b, bf16=False, device="cpu")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutdown_parallel()
        torch.distributed.destroy_process_group()
    return {"step": meta["step"], "seq_length": length, "loss": loss,
            "perplexity": {d: math.exp(v) for d, v in loss.items()}}
