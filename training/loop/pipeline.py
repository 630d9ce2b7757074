"""Forward and backward of a step's micro-batches through this rank's pipeline stage.

With one stage this is the plain loop: forward, masked loss, backward, per micro-batch. With P stages it
is GPipe's schedule (Huang et al. 2019): every micro-batch forward through the stages, then every
micro-batch backward in reverse order, with blocking point-to-point sends between neighbouring stages
(megatron-core's own schedules are CUDA-only; this runs on gloo and NCCL alike). Both directions walk
the micro-batches in the same order on every stage, so the sends always meet their receives.

megatron-core places the layers (stage k of P holds layers [k L/P, (k+1) L/P)), the embedding on the
first stage and the final norm, output layer and loss on the last. Activations [s, b, h] and their
gradients travel as float32, the residual stream's dtype.
"""

from __future__ import annotations


def _send(tensor, dst: int) -> None:
    import torch.distributed as dist

    dist.send(tensor.detach().float().contiguous(), dst)


def _recv(shape, src: int, device: str):
    import torch
    import torch.distributed as dist

    buf = torch.empty(shape, dtype=torch.float32, device=device)
    dist.recv(buf, src)
    return buf


def forward_backward(model, micro_batches: list[dict], *, global_tokens: float, bf16: bool, device: str,
                     forward_only: bool = False) -> list:
    """Masked per-token losses [b, s] of each micro-batch (detached) on the last stage, [] elsewhere. Unless
    `forward_only`, the gradient of sum(masked losses) / global_tokens is accumulated in the parameters."""
    import torch
    from megatron.core import parallel_state as ps

    from training.loop.step import autocast, forward_loss

    first, last = ps.is_pipeline_first_stage(), ps.is_pipeline_last_stage()
    prev_rank = None if first else ps.get_pipeline_model_parallel_prev_rank()
    next_rank = None if last else ps.get_pipeline_model_parallel_next_rank()
    hidden = model.config.hidden_size
    inputs, outputs, losses = [], [], []
    with torch.set_grad_enabled(not forward_only):
        for mb in micro_batches:
            b, s = mb["tokens"].shape
            if not first:
                x = _recv((s, b, hidden), prev_rank, device).requires_grad_(not forward_only)
                model.set_input_tensor(x)
                inputs.append(x)
            if last:
                masked = forward_loss(model, mb, bf16=bf16, device=device) * mb["loss_mask"]   # [b, s]
                losses.append(masked.detach())
                outputs.append(masked.sum() / global_tokens)
            else:
                with autocast(device, bf16):
                    # labels None: a middle stage returns its hidden states [s, b, h]
                    out = model(mb["tokens"], mb["position_ids"], mb.get("attention_mask"))
                _send(out, next_rank)
                outputs.append(out)
    if forward_only:
        return losses
    for i in reversed(range(len(micro_batches))):
        if last:
            outputs[i].backward()
        else:
            grad = _recv(outputs[i].shape, next_rank, device)
            torch.autograd.backward(outputs[i], grad.to(outputs[i].dtype))
        if not first:
            _send(inputs[i].grad, prev_rank)
    return losses
