"""AdamW with weight-decay groups, and the learning-rate schedule (linear warmup, cosine decay).

Decay applies to matrices only: biases and normalization scales (1-D parameters) are left out, as in
Megatron-LM and nanoGPT (decaying a norm's scale towards 0 only fights the normalization).
"""

from __future__ import annotations

import math

from training.loop.config import OptimizerConfig, ScheduleConfig


def build_optimizer(model, cfg: OptimizerConfig, *, on_gpu: bool):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                             fused=on_gpu, foreach=False if not on_gpu else None)


def lr_at(step: int, opt: OptimizerConfig, sched: ScheduleConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warmup to lr over warmup_steps, then cosine
    decay to min_lr over decay_steps (default: the rest of training), then min_lr."""
    warmup = sched.warmup_steps
    if step < warmup:
        return opt.lr * (step + 1) / warmup
    decay = sched.decay_steps or max(1, sched.train_steps - warmup)
    progress = min(1.0, (step - warmup) / decay)
    return opt.min_lr + 0.5 * (opt.lr - opt.min_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
