"""Supervised fine-tuning (InstructGPT's SFT step; LIMA's recipe): the GPT learns the responses of
instruction data, starting from a pretraining checkpoint.

    driver: resolve the source checkpoint and tokenizer -> run folder (config.resolved.yaml) -> Ray Train ranks
    rank:   parallel state -> data (chat template, loss on response tokens only, packed rows) -> GPT
            -> weights from `latest` (resume) or from the source -> held-out loss at step 0
            -> for each step: this rank's packed rows -> pretraining's train_step -> metrics
               -> held-out loss and sampled generations -> checkpoint
            -> summary

The step is pretraining's (training/loop/step.py): the loss is the mean over the response tokens of the
global batch (a prompt token has loss mask 0), gradients summed over micro-batches and DP ranks. Rows
are packed (training/align/data.py) with an attention mask that keeps each example to itself, and the
row order is a fresh permutation per epoch, so step s reads the same rows on any layout and on a rerun.
Checkpoints are GPT checkpoints like pretraining's. Generations (samples.jsonl) are drawn with the
shared sampler on rank 0 when the model is whole on it (TP = PP = 1); otherwise the driver draws them
from the final checkpoint.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from training.align.config import SFTConfig
from training.loop.run_folder import METRICS, write_summary
from training.model.config import ModelConfig

SAMPLES = "samples.jsonl"
DOMAIN = "sft"


def load_sft_data(cfg: SFTConfig, tok, seq_length: int) -> dict[str, Any]:
    """Packed train and valid rows, the held-out conversations (for sampled generations), and counts."""
    from training.align.data import encode_sft, epoch_order, pack_examples, read_jsonl, sft_messages, split_valid

    rows = read_jsonl(cfg.data.train)
    if cfg.data.valid:
        train_rows, valid_rows = rows, read_jsonl(cfg.data.valid)
    else:
        train_rows, valid_rows = split_valid(rows, cfg.data.valid_fraction, cfg.schedule.seed)
    train, dropped_train = encode_sft(tok, train_rows, seq_length=seq_length)
    valid, dropped_valid = encode_sft(tok, valid_rows, seq_length=seq_length)
    if not train or not valid:
        raise ValueError(f"no {'training' if not train else 'held-out'} example fits data.seq_length {seq_length} "
                         f"tokens. Fix: a larger data.seq_length")
    # Packed once, in a seeded order (file order would pack neighbours from the same source together).
    order = epoch_order(len(train), seed=cfg.schedule.seed, epoch=0)
    train_packed = pack_examples([train[i] for i in order], seq_length=seq_length, pack=cfg.data.pack)
    valid_packed = pack_examples(valid, seq_length=seq_length, pack=cfg.data.pack)
    return {"train": train_packed, "valid": valid_packed,
            "valid_conversations": [sft_messages(r, w) for w, r in valid_rows],
            "counts": {"train_examples": len(train), "valid_examples": len(valid),
                       "dropped_too_long": dropped_train + dropped_valid, "train_rows": len(train_packed),
                       "valid_rows": len(valid_packed),
                       "train_response_tokens": int(sum(r["loss_mask"].sum() for r in train_packed)),
                       "train_tokens": int(sum(len(r["tokens"]) for r in train_packed))}}


def run_sft(cfg: SFTConfig, *, model_cfg: ModelConfig, source_checkpoint: str, on_gpu: bool, local_rank: int = 0,
            stop_after: int | None = None) -> dict[str, Any] | None:
    """Train (or resume) the SFT run of `cfg` (absolute paths); returns the summary on rank 0. `stop_after`: leave
    the loop after this many steps of this call (benchmarks)."""
    import torch
    import torch.distributed as dist

    from training.align.data import collate_sft, encode_prompt, stream_indices
    from training.loop.checkpoint import load_checkpoint, save_checkpoint
    from training.loop.metrics import MetricsLog, read_metrics
    from training.loop.optim import build_optimizer, lr_at
    from training.loop.parallel import init_parallel, seed_step, shutdown_parallel
    from training.loop.run_folder import is_due, open_metrics, resume_from_latest
    from training.loop.step import count_step, evaluate, train_step
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt
    from training.tokenizer import load_tokenizer

    s, run_dir = cfg.schedule, cfg.output.dir
    layout = init_parallel(tensor=cfg.parallel.tensor, pipeline=cfg.parallel.pipeline, seed=s.seed, on_gpu=on_gpu,
                           local_rank=local_rank)
    rank0 = layout.rank == 0
    bf16 = s.precision == "bf16" or (s.precision == "auto" and on_gpu)
    seq = model_cfg.seq_length
    try:
        tok = load_tokenizer(cfg.init.tokenizer)
        data = load_sft_data(cfg, tok, seq)
        vocab = padded_vocab_size(model_cfg.vocab_size or tok.vocab_size, layout.tp_size)
        # use_te False: TransformerEngine's causal attention would ignore the packing mask
        model = build_gpt(model_cfg, vocab_size=vocab, tensor_parallel=layout.tp_size,
                          pipeline_parallel=layout.pp_size, pre_process=layout.first_stage,
                          post_process=layout.last_stage, on_gpu=on_gpu, use_te=False).to(layout.device)
        optimizer = build_optimizer(model, cfg.optimizer, on_gpu=on_gpu)

        state = {"step": 0, "samples": 0, "bad_steps": 0, "optimizer_steps": 0}
        ckpt_root, resumed = resume_from_latest(run_dir, model, optimizer, state)
        if not resumed:
            load_checkpoint(source_checkpoint, model)  # weights only: SFT starts a fresh AdamW

        start = state["step"]
        per_rank = s.global_batch_size // layout.dp_size
        collate = functools.partial(collate_sft, seq_length=seq, pad_id=tok.pad_id)
        valid = {DOMAIN: data["valid"]}

        def to_device(batch):
            return {k: v.to(layout.device, non_blocking=True) for k, v in batch.items()}

        def held_out() -> float:
            return evaluate(model, valid, samples=len(data["valid"]), micro_batch_size=s.micro_batch_size,
                            collate=collate, to_device=to_device, bf16=bf16, device=layout.device)["all"]

        sample_here = cfg.samples.prompts > 0 and layout.tp_size == 1 and layout.pp_size == 1
        conversations = data["valid_conversations"][:cfg.samples.prompts]
        prompts = [encode_prompt(tok, c) for c in conversations]

        def log_samples(step: int) -> None:
            from training.eval.sampling import SamplingConfig, sample

            sc = cfg.samples
            outs = sample(model, prompts, SamplingConfig(max_tokens=sc.max_tokens, temperature=sc.temperature,
                                                         top_p=sc.top_p, seed=sc.seed),
                          eod_id=tok.eod_id, vocab_size=tok.vocab_size, device=layout.device)
            model.train()  # the sampler leaves the model in eval mode
            for c, ids in zip(conversations, outs):
                sample_log.write({"step": step, "prompt": c[-2]["content"] if len(c) > 1 else "",
                                  "reference": c[-1]["content"], "completion": tok.tokenizer.decode(ids)})

        log = open_metrics(run_dir, resume_step=start, rank0=rank0)
        sample_log = MetricsLog(os.path.join(run_dir, SAMPLES), resume_step=start) if rank0 and sample_here else None
        if start == 0:  # the held-out loss of the source model: what SFT starts from
            record = {"step": 0, "valid_loss": held_out()}
            if log:
                log.write(record)
            if sample_log:
                log_samples(0)
        last_valid = None
        steps_run = 0
        for step in range(start, s.train_steps):
            started = time.perf_counter()
            seed_step(s.seed, step, on_gpu=on_gpu)  # dropout's masks: a function of the step
            first = step * s.global_batch_size + layout.dp_rank * per_rank
            idx = stream_indices(len(data["train"]), first, per_rank, seed=s.seed + 1)
            micro = [to_device(collate([data["train"][i] for i in idx[a:a + s.micro_batch_size]]))
                     for a in range(0, per_rank, s.micro_batch_size)]
            lr = lr_at(step, cfg.optimizer, s)
            result = train_step(model, optimizer, micro, domains=(DOMAIN,), lr=lr, clip=cfg.optimizer.clip_grad,
                                bf16=bf16, device=layout.device)
            if on_gpu:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            state["step"], state["samples"] = step + 1, state["samples"] + s.global_batch_size
            count_step(state, finite=result.finite, step=step, max_bad_steps=s.max_bad_steps)
            record = {"step": step + 1, "loss": result.loss, "lr": lr, "grad_norm": result.grad_norm,
                      "skipped": not result.finite, "tokens": result.tokens, "rows": s.global_batch_size,
                      "tokens_per_s": result.tokens / seconds, "rows_per_s": s.global_batch_size / seconds,
                      "seconds": seconds, "bad_steps": state["bad_steps"]}
            if on_gpu:
                record["max_memory_gib"] = torch.cuda.max_memory_allocated(layout.device) / 2**30
            if is_due(step + 1, s.eval_interval, s.train_steps):
                last_valid = record["valid_loss"] = held_out()
                if sample_log:
                    log_samples(step + 1)
            if rank0:
                log.write(record)
            if is_due(step + 1, s.save_interval, s.train_steps):
                save_checkpoint(ckpt_root, step + 1, model, optimizer, state, rank=layout.rank,
                                barrier=dist.barrier, keep=s.keep_checkpoints)
            steps_run += 1
            if stop_after is not None and steps_run >= stop_after:
                break
        for f in (log, sample_log):
            if f:
                f.close()
        summary = None
        if rank0:
            history = read_metrics(os.path.join(run_dir, METRICS))
            valid_losses = [(r["step"], r["valid_loss"]) for r in history if "valid_loss" in r]
            summary = {"kind": "sft", "steps": state["step"], "train_steps": s.train_steps,
                       "rows": state["samples"], "bad_steps": state["bad_steps"],
                       "valid_loss_start": valid_losses[0][1] if valid_losses and valid_losses[0][0] == 0 else None,
                       "valid_loss": last_valid if last_valid is not None else
                       (valid_losses[-1][1] if valid_losses else None),
                       "data": data["counts"], "padded_vocab_size": vocab,
                       "epochs": state["samples"] / max(1, data["counts"]["train_rows"]),
                       "samples_file": SAMPLES if sample_here else None,
                       "layout": {"tp": layout.tp_size, "pp": layout.pp_size, "dp": layout.dp_size,
                                  "device": layout.device}}
            write_summary(run_dir, summary)
        return summary
    finally:
        shutdown_parallel()


def sft_worker(args: dict[str, Any], *, on_gpu: bool, local_rank: int) -> None:
    """One SFT rank (launch_workers entry point)."""
    from training.align.source import run_align_worker

    run_align_worker(run_sft, SFTConfig, args, on_gpu=on_gpu, local_rank=local_rank)


def launch_sft(cfg: SFTConfig, *, address: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the SFT run of `cfg` on Ray Train; returns summary.json."""
    from training.align.source import launch_align, prepare_align_run

    cfg, args = prepare_align_run(cfg, "sft")
    summary = launch_align("sft", "training.align.sft:sft_worker", cfg, args, total=cfg.schedule.train_steps,
                           log_interval=cfg.schedule.log_interval, postfix=("loss", "valid_loss", "lr"),
                           address=address, progress=progress)
    if cfg.samples.prompts and not summary.get("samples_file"):
        summary = _samples_from_checkpoint(cfg, summary)
    return summary


def _samples_from_checkpoint(cfg: SFTConfig, summary: dict[str, Any]) -> dict[str, Any]:
    """TP or PP > 1: the generations of the final checkpoint, drawn on one CPU rank in the driver."""
    from training.align.data import encode_prompt, read_jsonl, sft_messages, split_valid
    from training.eval.loaded import loaded_checkpoint
    from training.eval.sampling import SamplingConfig, sample
    from training.loop.metrics import MetricsLog
    from training.tokenizer import load_tokenizer

    tok = load_tokenizer(cfg.init.tokenizer)
    rows = read_jsonl(cfg.data.valid) if cfg.data.valid else split_valid(
        read_jsonl(cfg.data.train), cfg.data.valid_fraction, cfg.schedule.seed)[1]
    conversations = [sft_messages(r, w) for w, r in rows][:cfg.samples.prompts]
    sc = cfg.samples
    with loaded_checkpoint(cfg.output.dir, vocab_size=tok.vocab_size) as loaded:
        outs = sample(loaded.model, [encode_prompt(tok, c) for c in conversations],
                      SamplingConfig(max_tokens=sc.max_tokens, temperature=sc.temperature, top_p=sc.top_p,
                                     seed=sc.seed), eod_id=tok.eod_id, vocab_size=tok.vocab_size)
        step = loaded.step
    log = MetricsLog(os.path.join(cfg.output.dir, SAMPLES), resume_step=step - 1)
    for c, ids in zip(conversations, outs):
        log.write({"step": step, "prompt": c[-2]["content"] if len(c) > 1 else "", "reference": c[-1]["content"],
                   "completion": tok.tokenizer.decode(ids)})
    log.close()
    summary = {**summary, "samples_file": SAMPLES}
    write_summary(cfg.output.dir, summary)
    return summary
