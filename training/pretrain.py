"""The pretraining worker: what each rank runs, top to bottom (its tensor slice of its pipeline stage).

    parallel state -> data (blend + per-domain valid sets) -> model -> optimizer -> resume from `latest`
    -> for each step: this rank's micro-batches -> train_step -> metrics -> eval -> checkpoint
    -> summary

Ray Train starts one of these per rank (training/loop/launch.py); a benchmark calls `run_pretrain`
directly in one process. The driver has already resolved the mixture weights and written them, with
the resolved config, into the run folder; the worker reads the config from its argument.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from training.loop.config import PretrainConfig


def run_pretrain(cfg: PretrainConfig, *, weights: dict[str, float], on_gpu: bool, local_rank: int = 0,
                 stop_after: int | None = None) -> dict[str, Any] | None:
    """Train (or resume) the run of `cfg`; returns the summary on rank 0. `stop_after`: leave the loop after
    this many steps of this call (benchmarks)."""
    import torch
    import torch.distributed as dist

    from training.data.blend import build_pretrain_data, check_share, collate, dataset_ids
    from training.loop.checkpoint import save_checkpoint
    from training.loop.metrics import peak_flops
    from training.loop.optim import build_optimizer, lr_at
    from training.loop.parallel import init_parallel, seed_step, shutdown_parallel
    from training.loop.run_folder import (fresh_index_cache, is_due, open_metrics, read_summary, resume_from_latest,
                                          write_summary)
    from training.loop.step import count_step, evaluate, train_step
    from training.model.config import flops_per_token, padded_vocab_size, parameter_count
    from training.model.gpt import build_gpt

    s, run_dir = cfg.schedule, cfg.output.dir
    layout = init_parallel(tensor=cfg.parallel.tensor, pipeline=cfg.parallel.pipeline, seed=s.seed, on_gpu=on_gpu,
                           local_rank=local_rank)
    rank0 = layout.rank == 0
    bf16 = s.precision == "bf16" or (s.precision == "auto" and on_gpu)
    try:
        with open(os.path.join(cfg.data.export_dir, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        vocab = padded_vocab_size(cfg.model.vocab_size or manifest["tokenizer"]["vocab_size"], layout.tp_size)
        model = build_gpt(cfg.model, vocab_size=vocab, tensor_parallel=layout.tp_size,
                          pipeline_parallel=layout.pp_size, pre_process=layout.first_stage,
                          post_process=layout.last_stage, on_gpu=on_gpu, seed=s.seed).to(layout.device)
        optimizer = build_optimizer(model, cfg.optimizer, on_gpu=on_gpu)

        state = {"step": 0, "samples": 0, "bad_steps": 0, "optimizer_steps": 0, "domain_samples": {}}
        ckpt_root, _ = resume_from_latest(run_dir, model, optimizer, state)

        start = state["step"]
        train_samples = s.train_steps * s.global_batch_size
        per_rank = s.global_batch_size // layout.dp_size
        index_cache = fresh_index_cache(run_dir, rank0=rank0, barrier=dist.barrier)
        data = build_pretrain_data(cfg.data.export_dir, manifest, weights, private_dir=index_cache,
                                   split=cfg.data.split, seq_length=cfg.model.seq_length, seed=s.seed,
                                   train_samples=train_samples,
                                   valid_samples_per_domain=cfg.data.valid_samples_per_domain,
                                   share_tolerance=cfg.data.share_tolerance)
        domain_samples = {d: int(state["domain_samples"].get(d, 0)) for d in data.domains}

        def to_device(batch):
            return {k: v.to(layout.device, non_blocking=True) for k, v in batch.items()}

        log = open_metrics(run_dir, resume_step=start, rank0=rank0)
        flops = flops_per_token(cfg.model, vocab)
        peak = peak_flops(torch.cuda.get_device_name(layout.device)) if on_gpu else None
        params = parameter_count(cfg.model, vocab)
        last_valid: dict[str, float] = {}
        finished = read_summary(run_dir) if start == s.train_steps else None
        if finished:  # a finished run, run again
            last_valid = finished.get("valid_loss", {})
        steps_run = 0
        for step in range(start, s.train_steps):
            started = time.perf_counter()
            seed_step(s.seed, step, on_gpu=on_gpu)  # dropout's masks: a function of the step
            # This rank's share of global batch `step`: samples [first, first + per_rank) of the blend.
            first = step * s.global_batch_size + layout.dp_rank * per_rank
            micro = [to_device(collate([data.train[i] for i in range(a, a + s.micro_batch_size)]))
                     for a in range(first, first + per_rank, s.micro_batch_size)]
            lr = lr_at(step, cfg.optimizer, s)
            result = train_step(model, optimizer, micro, domains=data.domains, lr=lr,
                                clip=cfg.optimizer.clip_grad, bf16=bf16, device=layout.device)
            if on_gpu:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            ids = dataset_ids(data.train, step * s.global_batch_size, (step + 1) * s.global_batch_size)
            for i, d in enumerate(data.domains):
                domain_samples[d] += int((ids == i).sum())
            state["step"], state["samples"] = step + 1, state["samples"] + s.global_batch_size
            state["domain_samples"] = domain_samples
            count_step(state, finite=result.finite, step=step, max_bad_steps=s.max_bad_steps)
            tokens_per_s = result.tokens / seconds
            record = {"step": step + 1, "loss": result.loss, "domain_loss": result.domain_loss,
                      "domain_tokens": result.domain_tokens,
                      "lr": lr, "grad_norm": result.grad_norm, "skipped": not result.finite,
                      "tokens": result.tokens, "tokens_per_s": tokens_per_s, "seconds": seconds,
                      "bad_steps": state["bad_steps"]}
            if peak:
                record["mfu"] = flops * tokens_per_s / (peak * layout.world_size)
            if on_gpu:
                record["max_memory_gib"] = torch.cuda.max_memory_allocated(layout.device) / 2**30
            if is_due(step + 1, s.eval_interval, s.train_steps):
                last_valid = evaluate(model, data.valid, samples=cfg.data.valid_samples_per_domain,
                                      micro_batch_size=s.micro_batch_size, collate=collate,
                                      to_device=to_device, bf16=bf16, device=layout.device)
                record["valid_loss"] = last_valid
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
        consumed = sum(domain_samples.values())
        realized = {d: n / max(1, consumed) for d, n in domain_samples.items()}
        if state["step"] == s.train_steps:
            check_share(realized, data.weights, cfg.data.share_tolerance,
                        what=f"the {consumed} samples this run trained on")
        summary = {"steps": state["step"], "train_steps": s.train_steps, "samples": state["samples"],
                   "tokens": state["samples"] * cfg.model.seq_length, "bad_steps": state["bad_steps"],
                   "weights": data.weights, "realized_token_share": realized,
                   "planned_token_share": data.planned_share, "share_tolerance": cfg.data.share_tolerance,
                   "valid_loss": last_valid, "parameters": params, "padded_vocab_size": vocab,
                   "flops_per_token": flops, "layout": {"tp": layout.tp_size, "pp": layout.pp_size,
                                                        "dp": layout.dp_size, "device": layout.device}}
        if rank0:
            write_summary(run_dir, summary)
        return summary if rank0 else None
    finally:
        shutdown_parallel()

