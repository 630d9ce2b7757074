"""The reward model (InstructGPT, Ouyang et al. 2022, section 3.5): a GPT trunk with a scalar head, trained
on K ranked answers per prompt.

    loss(prompt) = -1 / C(K, 2) * sum over pairs (better, worse) of log sigmoid(r(better) - r(worse))

r is the head's scalar at an answer's last token (its EOD). All C(K, 2) pairs of a prompt come from
the K answers forwarded once, in the same micro-batch (a prompt is one batch element): InstructGPT
found that shuffling a prompt's correlated pairs into separate batches overfits, and one forward per
answer instead of two per pair is C(K, 2) / K times cheaper. The step's loss is the mean over the
prompts of the global batch: each micro-batch backpropagates sum(prompt losses) / (prompts in the
global batch), so micro-batches and DP ranks add up to the same gradient as one big batch.

    driver: resolve the source GPT and tokenizer -> run folder -> Ray Train ranks
    rank:   parallel state (TP x DP; PP must be 1) -> ranked answers -> ScalarHeadGPT
            -> weights from `latest` (resume) or the source trunk -> held-out loss and accuracy at step 0
            -> for each step: this rank's prompts -> forward, pair loss, backward per micro-batch
               -> DP gradient sum -> norm -> finite check -> clip -> AdamW -> metrics -> eval -> checkpoint
            -> summary (held-out pairwise accuracy)
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any

from training.align.config import RMConfig
from training.loop.run_folder import METRICS, write_summary
from training.model.config import ModelConfig


def preference_loss(rewards, batch):
    """(sum over the micro-batch's prompts of each prompt's mean pair loss, correctly ordered pairs, pairs, the
    margins r(better) - r(worse) [P]). rewards [R] float32, one per answer row of `batch` (collate_preferences)."""
    import torch.nn.functional as F

    margin = rewards[batch["better"]] - rewards[batch["worse"]]  # [P]
    loss = (-F.logsigmoid(margin.double()) * batch["pair_weight"]).sum()
    return loss, int((margin > 0).sum()), int(margin.numel()), margin.detach()


def forward_rewards(model, batch, *, bf16: bool, device: str):
    """The reward of every answer row [R] (float32): the head's scalar at the row's last real token."""
    from training.loop.step import autocast
    from training.model.heads import scores_at_last_token

    with autocast(device, bf16):
        values = model(batch["tokens"], batch["position_ids"])  # [R, L]; causal attention: padding is never read
    return scores_at_last_token(values.float(), batch["nonpad"])


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RMStepResult:
    loss: float
    """Mean over the prompts of the global batch of each prompt's mean pair loss."""
    accuracy: float
    """Share of the global batch's pairs whose better answer got the higher reward."""
    pairs: int
    margin: float
    """Mean r(better) - r(worse) over the pairs."""
    grad_norm: float
    finite: bool
    tokens: int
    """Real (unpadded) tokens of the global batch's answer rows."""


def rm_step(model, optimizer, micro_batches: list[dict], *, global_prompts: int, lr: float, clip: float,
            bf16: bool, device: str) -> RMStepResult:
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    from training.loop.step import apply_update, global_grad_norm, reduce_gradients

    for p in model.parameters():
        p.grad = None
    stats = torch.zeros(5, dtype=torch.float64, device=device)  # loss sum, correct pairs, pairs, margin sum, tokens
    for mb in micro_batches:
        rewards = forward_rewards(model, mb, bf16=bf16, device=device)
        loss, correct, pairs, margin = preference_loss(rewards, mb)
        (loss / global_prompts).backward()
        stats += torch.tensor([loss.item(), correct, pairs, margin.double().sum().item(), mb["nonpad"].sum().item()],
                              dtype=torch.float64, device=device)
    reduce_gradients(model, ps.get_data_parallel_group())
    dist.all_reduce(stats, group=ps.get_data_parallel_group())  # TP ranks hold the same numbers already
    loss_sum, correct, pairs, margin_sum, tokens = stats.cpu().tolist()
    loss = loss_sum / global_prompts
    grad_norm = global_grad_norm(model)
    finite = math.isfinite(loss) and math.isfinite(grad_norm)
    apply_update(model, optimizer, finite=finite, grad_norm=grad_norm, clip=clip, lr=lr)
    return RMStepResult(loss=loss, accuracy=correct / pairs, pairs=int(pairs), margin=margin_sum / pairs,
                        grad_norm=grad_norm, finite=finite, tokens=int(tokens))


def rm_evaluate(model, examples: list, *, micro_batch_size: int, pad_id: int, bf16: bool, device: str) -> dict:
    """Held-out loss (mean over prompts) and pairwise accuracy (over all pairs); each DP rank scores every
    dp_size-th prompt and the sums are reduced."""
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    from training.align.data import collate_preferences

    dp_rank, dp_size = ps.get_data_parallel_rank(), ps.get_data_parallel_world_size()
    mine = [examples[i] for i in range(dp_rank, len(examples), dp_size)]
    stats = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, correct, pairs, prompts
    model.eval()
    with torch.no_grad():
        for a in range(0, len(mine), micro_batch_size):
            batch = {k: v.to(device) for k, v in collate_preferences(mine[a:a + micro_batch_size],
                                                                      pad_id=pad_id).items()}
            loss, correct, pairs, _ = preference_loss(forward_rewards(model, batch, bf16=bf16, device=device), batch)
            stats += torch.tensor([loss.item(), correct, pairs, len(mine[a:a + micro_batch_size])],
                                  dtype=torch.float64, device=device)
    model.train()
    dist.all_reduce(stats, group=ps.get_data_parallel_group())
    loss_sum, correct, pairs, prompts = stats.cpu().tolist()
    return {"loss": loss_sum / prompts, "accuracy": correct / pairs, "pairs": int(pairs), "prompts": int(prompts)}


def load_preference_data(cfg: RMConfig, tok, seq_length: int) -> dict[str, Any]:
    from training.align.data import encode_preferences, read_jsonl, split_valid

    rows = read_jsonl(cfg.data.train)
    if cfg.data.valid:
        train_rows, valid_rows = rows, read_jsonl(cfg.data.valid)
    else:
        train_rows, valid_rows = split_valid(rows, cfg.data.valid_fraction, cfg.schedule.seed)
    train, dropped_train = encode_preferences(tok, train_rows, seq_length=seq_length)
    valid, dropped_valid = encode_preferences(tok, valid_rows, seq_length=seq_length)
    if not train or not valid:
        raise ValueError(f"no {'training' if not train else 'held-out'} prompt has all its answers within "
                         f"data.seq_length {seq_length} tokens. Fix: a larger data.seq_length")
    k = [len(e.sequences) for e in train]
    return {"train": train, "valid": valid,
            "counts": {"train_prompts": len(train), "valid_prompts": len(valid),
                       "dropped_too_long": dropped_train + dropped_valid, "train_answers": sum(k),
                       "train_pairs": sum(n * (n - 1) // 2 for n in k), "k_min": min(k), "k_max": max(k)}}


def run_rm(cfg: RMConfig, *, model_cfg: ModelConfig, source_checkpoint: str, on_gpu: bool, local_rank: int = 0,
           stop_after: int | None = None) -> dict[str, Any] | None:
    """Train (or resume) the reward-model run of `cfg` (absolute paths); returns the summary on rank 0."""
    import torch
    import torch.distributed as dist

    from training.align.data import collate_preferences, stream_indices
    from training.loop.checkpoint import save_checkpoint
    from training.loop.metrics import read_metrics
    from training.loop.optim import build_optimizer, lr_at
    from training.loop.parallel import init_parallel, seed_step, shutdown_parallel
    from training.loop.run_folder import is_due, open_metrics, resume_from_latest
    from training.loop.step import count_step
    from training.model.config import padded_vocab_size
    from training.model.heads import ScalarHeadGPT, init_trunk_from_checkpoint
    from training.tokenizer import load_tokenizer

    s, run_dir = cfg.schedule, cfg.output.dir
    layout = init_parallel(tensor=cfg.parallel.tensor, pipeline=1, seed=s.seed, on_gpu=on_gpu, local_rank=local_rank)
    rank0 = layout.rank == 0
    bf16 = s.precision == "bf16" or (s.precision == "auto" and on_gpu)
    try:
        tok = load_tokenizer(cfg.init.tokenizer)
        data = load_preference_data(cfg, tok, model_cfg.seq_length)
        vocab = padded_vocab_size(model_cfg.vocab_size or tok.vocab_size, layout.tp_size)
        model = ScalarHeadGPT(model_cfg, vocab_size=vocab, tensor_parallel=layout.tp_size, on_gpu=on_gpu,
                              seed=s.seed).to(layout.device)
        optimizer = build_optimizer(model, cfg.optimizer, on_gpu=on_gpu)

        state = {"step": 0, "prompts": 0, "bad_steps": 0, "optimizer_steps": 0}
        ckpt_root, resumed = resume_from_latest(run_dir, model, optimizer, state)
        if not resumed:
            init_trunk_from_checkpoint(model, source_checkpoint, on_gpu=on_gpu)

        start = state["step"]
        per_rank = s.global_batch_size // layout.dp_size

        def held_out() -> dict:
            return rm_evaluate(model, data["valid"], micro_batch_size=s.micro_batch_size, pad_id=tok.pad_id,
                               bf16=bf16, device=layout.device)

        log = open_metrics(run_dir, resume_step=start, rank0=rank0)
        if start == 0:  # the untrained head: accuracy near chance
            v = held_out()
            if log:
                log.write({"step": 0, "valid_loss": v["loss"], "valid_accuracy": v["accuracy"],
                           "valid_pairs": v["pairs"]})
        steps_run = 0
        for step in range(start, s.train_steps):
            started = time.perf_counter()
            seed_step(s.seed, step, on_gpu=on_gpu)  # dropout's masks: a function of the step
            first = step * s.global_batch_size + layout.dp_rank * per_rank
            idx = stream_indices(len(data["train"]), first, per_rank, seed=s.seed + 1)
            micro = [{k: v.to(layout.device) for k, v in collate_preferences(
                      [data["train"][i] for i in idx[a:a + s.micro_batch_size]], pad_id=tok.pad_id).items()}
                     for a in range(0, per_rank, s.micro_batch_size)]
            lr = lr_at(step, cfg.optimizer, s)
            result = rm_step(model, optimizer, micro, global_prompts=s.global_batch_size, lr=lr,
                             clip=cfg.optimizer.clip_grad, bf16=bf16, device=layout.device)
            if on_gpu:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            state["step"], state["prompts"] = step + 1, state["prompts"] + s.global_batch_size
            count_step(state, finite=result.finite, step=step, max_bad_steps=s.max_bad_steps)
            record = {"step": step + 1, "loss": result.loss, "accuracy": result.accuracy, "margin": result.margin,
                      "pairs": result.pairs, "lr": lr, "grad_norm": result.grad_norm, "skipped": not result.finite,
                      "tokens": result.tokens, "tokens_per_s": result.tokens / seconds,
                      "prompts_per_s": s.global_batch_size / seconds, "seconds": seconds,
                      "bad_steps": state["bad_steps"]}
            if on_gpu:
                record["max_memory_gib"] = torch.cuda.max_memory_allocated(layout.device) / 2**30
            if is_due(step + 1, s.eval_interval, s.train_steps):
                last_valid = held_out()
                record.update(valid_loss=last_valid["loss"], valid_accuracy=last_valid["accuracy"],
                              valid_pairs=last_valid["pairs"])
            if rank0:
                log.write(record)
            if is_due(step + 1, s.save_interval, s.train_steps):
                save_checkpoint(ckpt_root, step + 1, model, optimizer, state, rank=layout.rank,
                                barrier=dist.barrier, keep=s.keep_checkpoints)
            steps_run += 1
            if stop_after is not None and steps_run >= stop_after:
                break
        if log:
            log.close()
        summary = None
        if rank0:
            history = [r for r in read_metrics(os.path.join(run_dir, METRICS)) if "valid_accuracy" in r]
            first_eval = history[0] if history and history[0]["step"] == 0 else None
            final = history[-1] if history else {}
            summary = {"kind": "rm", "steps": state["step"], "train_steps": s.train_steps,
                       "prompts": state["prompts"], "bad_steps": state["bad_steps"],
                       "valid_accuracy_start": first_eval["valid_accuracy"] if first_eval else None,
                       "valid_loss_start": first_eval["valid_loss"] if first_eval else None,
                       "valid_accuracy": final.get("valid_accuracy"), "valid_loss": final.get("valid_loss"),
                       "valid_pairs": final.get("valid_pairs"),
                       "data": data["counts"], "padded_vocab_size": vocab,
                       "layout": {"tp": layout.tp_size, "pp": 1, "dp": layout.dp_size, "device": layout.device}}
            write_summary(run_dir, summary)
        return summary
    finally:
        shutdown_parallel()


def rm_worker(args: dict[str, Any], *, on_gpu: bool, local_rank: int) -> None:
    """One reward-model rank (launch_workers entry point)."""
    from training.align.source import run_align_worker

    run_align_worker(run_rm, RMConfig, args, on_gpu=on_gpu, local_rank=local_rank)


def launch_rm(cfg: RMConfig, *, address: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the reward-model run of `cfg` on Ray Train; returns summary.json."""
    from training.align.source import launch_align, prepare_align_run

    cfg, args = prepare_align_run(cfg, "rm")
    return launch_align("rm", "training.align.reward:rm_worker", cfg, args, total=cfg.schedule.train_steps,
                        log_interval=cfg.schedule.log_interval, postfix=("loss", "accuracy", "valid_accuracy"),
                        address=address, progress=progress)
