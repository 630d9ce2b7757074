"""One optimizer step, top to bottom, and the per-domain validation loss.

    micro-batches -> forward -> masked loss (per domain too) -> backward -> accumulate
                     (through this rank's pipeline stage: training/loop/pipeline.py)
    -> data-parallel gradient reduction -> global gradient norm -> finite check -> clip
    -> learning rate -> AdamW step

The loss of a step is the mean over every loss-masked token of the global batch (all micro-batches on
all data-parallel ranks). Each micro-batch's backward uses sum(token losses) / (tokens of the global
batch), so summing gradients over micro-batches and over DP ranks gives exactly the gradient of that
mean: DP = 2 and DP = 1 with the same global batch take the same step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

from training.loop.pipeline import forward_backward


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class StepResult:
    loss: float
    """Token-weighted mean loss of the global batch."""
    domain_loss: dict[str, float]
    """Token-weighted mean loss of each domain's tokens in the global batch (domains present only)."""
    domain_tokens: dict[str, int]
    grad_norm: float
    """Global L2 norm of the gradient before clipping."""
    finite: bool
    """False: loss or gradient was NaN/inf and the update was skipped."""
    tokens: int


def autocast(device: str, bf16: bool):
    import torch

    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def forward_loss(model, batch, *, bf16: bool, device: str):
    """Per-token losses [b, s] (float32) of one micro-batch; megatron-core's vocab-parallel cross-entropy."""
    with autocast(device, bf16):
        # The core attention applies causality itself (training/model/attention.py); a batch may add a mask
        # (packed SFT rows: attention kept inside each example), else None.
        per_token = model(batch["tokens"], batch["position_ids"], batch.get("attention_mask"), labels=batch["labels"])
    return per_token.float()


def train_step(model, optimizer, micro_batches: list[dict], *, domains: tuple[str, ...], lr: float, clip: float,
               bf16: bool, device: str, loss_weights=None) -> StepResult:
    """One optimizer step. `loss_weights`: see pipeline.forward_backward (None: the plain token mean; the
    reported losses are always the unweighted token means)."""
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    dp_group = ps.get_data_parallel_group()
    n = len(domains)
    for p in model.parameters():
        p.grad = None

    # The mean is over the global batch: count its tokens first (loss masks are known before the forward).
    # Collectives take tensors on the compute device: an NCCL group refuses CPU tensors.
    tokens = torch.stack([mb["loss_mask"].sum() for mb in micro_batches]).sum().reshape(1).double()
    dist.all_reduce(tokens, group=dp_group)
    global_tokens = tokens.item()

    # Forward and backward through this rank's pipeline stage; the last stage holds the losses.
    losses = forward_backward(model, micro_batches, global_tokens=global_tokens, bf16=bf16, device=device,
                              loss_weights=loss_weights)
    domain_sum = torch.zeros(n, dtype=torch.float64, device=device)
    domain_tok = torch.zeros(n, dtype=torch.float64, device=device)
    for mb, masked in zip(micro_batches, losses):
        ids = mb["dataset_id"]
        domain_sum.index_add_(0, ids, masked.sum(1).double())
        domain_tok.index_add_(0, ids, mb["loss_mask"].sum(1).double())

    reduce_gradients(model, dp_group)
    stats = torch.cat([domain_sum, domain_tok])
    dist.all_reduce(stats, group=dp_group)
    dist.all_reduce(stats, group=ps.get_pipeline_model_parallel_group())  # only the last stage had losses
    stats = stats.cpu()
    domain_sum, domain_tok = stats[:n], stats[n:]
    loss = (domain_sum.sum() / domain_tok.sum()).item()

    grad_norm = global_grad_norm(model)
    finite = math.isfinite(loss) and math.isfinite(grad_norm)
    apply_update(model, optimizer, finite=finite, grad_norm=grad_norm, clip=clip, lr=lr)
    present = {d: i for i, d in enumerate(domains) if domain_tok[i] > 0}
    return StepResult(loss=loss, grad_norm=grad_norm, finite=finite, tokens=int(global_tokens),
                      domain_loss={d: (domain_sum[i] / domain_tok[i]).item() for d, i in present.items()},
                      domain_tokens={d: int(domain_tok[i]) for d, i in present.items()})


def count_step(state: dict[str, Any], *, finite: bool, step: int, max_bad_steps: int) -> None:
    """Count a step taken (`finite`) in state["optimizer_steps"] or one skipped in state["bad_steps"]. More than
    `max_bad_steps` skipped steps stop the run: a loss that stays non-finite will not recover by skipping."""
    if finite:
        state["optimizer_steps"] += 1
    else:
        state["bad_steps"] += 1
        if state["bad_steps"] > max_bad_steps:
            raise FloatingPointError(f"step {step + 1}: {state['bad_steps']} steps with a non-finite "
                                     f"loss or gradient (max_bad_steps {max_bad_steps}): stopping")


def apply_update(model, optimizer, *, finite: bool, grad_norm: float, clip: float, lr: float) -> None:
    """The end of every trainer's step (pretraining, the reward model, PPO's policy and value): when `finite`,
    clip the gradients to norm `clip` (0: no clipping) and step at `lr`; a non-finite step is skipped, not
    applied. The gradients are cleared either way so that the next step accumulates from zero."""
    if finite:
        if clip > 0 and grad_norm > clip:
            scale = clip / (grad_norm + 1e-6)
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.mul_(scale)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
    for p in model.parameters():
        p.grad = None


def reduce_gradients(model, dp_group) -> None:
    """Sum gradients over data-parallel ranks, in one flat buffer (one collective instead of one per tensor)."""
    import torch
    import torch.distributed as dist

    if dist.get_world_size(dp_group) == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, group=dp_group)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def global_grad_norm(model) -> float:
    """L2 norm of the whole model's gradient: squares summed over this rank's tensor-parallel slices (a
    replicated tensor, such as a norm scale, counted once: on TP rank 0) and pipeline stages."""
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps
    from megatron.core.tensor_parallel import param_is_not_tensor_parallel_duplicate

    total = torch.zeros(1, dtype=torch.float64, device=next(model.parameters()).device)
    for p in model.parameters():
        if p.grad is not None and param_is_not_tensor_parallel_duplicate(p):
            total += p.grad.detach().double().pow(2).sum()
    dist.all_reduce(total, group=ps.get_model_parallel_group())
    return math.sqrt(total.item())


def evaluate(model, valid: dict, *, samples: int, micro_batch_size: int, collate, to_device, bf16: bool,
             device: str) -> dict[str, float]:
    """Token-weighted validation loss per domain over its first `samples` valid samples (a GPTDataset holds
    whole epochs, often many more), and `all` over every domain."""
    sums, tokens = evaluate_sums(model, valid, samples=samples, micro_batch_size=micro_batch_size, collate=collate,
                                 to_device=to_device, bf16=bf16, device=device)
    out = {d: sums[d] / tokens[d] for d in sums}
    out["all"] = sum(sums.values()) / sum(tokens.values())
    return out


def evaluate_sums(model, valid: dict, *, samples: int, micro_batch_size: int, collate, to_device, bf16: bool,
                  device: str) -> tuple[dict[str, float], dict[str, float]]:
    """(domain -> summed token loss, domain -> loss tokens) over each domain's first `samples` valid samples.
    Each data-parallel rank scores every dp_size-th sample; the sums are reduced over ranks and stages."""
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    dp_rank, dp_size = ps.get_data_parallel_rank(), ps.get_data_parallel_world_size()
    names = sorted(valid)
    sums = torch.zeros(2 * len(names), dtype=torch.float64, device=device)
    model.eval()
    for i, d in enumerate(names):
        mine = list(range(dp_rank, min(samples, len(valid[d])), dp_size))
        for start in range(0, len(mine), micro_batch_size):
            batch = to_device(collate([valid[d][j] for j in mine[start:start + micro_batch_size]]))
            for masked in forward_backward(model, [batch], global_tokens=1.0, bf16=bf16, device=device,
                                           forward_only=True):
                sums[i] += masked.sum().double()
            sums[len(names) + i] += batch["loss_mask"].sum().double()
    model.train()
    dist.all_reduce(sums, group=ps.get_data_parallel_group())
    losses = sums[:len(names)]
    dist.all_reduce(losses, group=ps.get_pipeline_model_parallel_group())  # only the last stage had losses
    sums = torch.cat([losses, sums[len(names):]]).cpu()
    return ({d: sums[i].item() for i, d in enumerate(names)},
            {d: sums[len(names) + i].item() for i, d in enumerate(names)})
