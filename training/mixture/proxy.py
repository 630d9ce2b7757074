"""The DoReMi proxy worker: what each rank runs in a round of `refinery mix doremi` (Algorithm 1, step 2).

    parallel state -> data (uniform blend) -> proxy model + frozen reference (from its checkpoint) -> resume
    -> for each step: micro-batches -> reference losses (forward only) -> train_step, whose loss_weights hook
       turns the proxy's own losses into lambda_t, alpha_t and the objective's per-sample weights
    -> trajectory (metrics.jsonl) -> eval -> checkpoint (with alpha, lambda and the running average) -> summary

The data path, the step, evaluation and checkpoints are pretraining's (training/pretrain.py); only the
objective differs. The domain sums are all-reduced over data-parallel ranks inside the hook, before the
weight update, so every rank holds the same alpha. Pipeline parallelism is refused by the config: only the
last stage would see the losses.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from training.loop.config import PretrainConfig
from training.mixture.config import DoremiSettings


class DoremiObjective:
    """Holds alpha, lambda and the running average of alpha over steps; called by the step (loss_weights) with
    the proxy's masked per-token losses of the step's micro-batches."""

    def __init__(self, k: int, settings: DoremiSettings, *, initial_excess: float, state: dict[str, Any] | None,
                 device: str, dp_group):
        import torch

        from training.mixture.doremi import uniform

        self.k, self.settings, self.device, self.dp_group = k, settings, device, dp_group
        state = state or {}
        self.alpha = torch.tensor(state["alpha"], dtype=torch.float64) if "alpha" in state else uniform(k)
        # Before a domain's first batch its last excess loss is that of an untrained model, ln V (the reference
        # implementation's choice); with uniform sampling and a global batch >= k every batch holds every domain.
        self.excess = (torch.tensor(state["excess"], dtype=torch.float64) if "excess" in state
                       else torch.full((k,), initial_excess, dtype=torch.float64))
        self.average = torch.tensor(state["average"], dtype=torch.float64) if "average" in state else uniform(k)
        self.updates = int(state.get("updates", 0))
        self.micro: list[dict] = []
        self.reference: list = []
        self.last: dict[str, Any] = {}

    def state(self) -> dict[str, Any]:
        return {"alpha": self.alpha.tolist(), "excess": self.excess.tolist(), "average": self.average.tolist(),
                "updates": self.updates}

    def __call__(self, losses: list) -> list:
        import torch
        import torch.distributed as dist

        from training.mixture.doremi import (domain_excess_loss, domain_sums, objective_token_weights, running_average,
                                             token_excess_loss, update_domain_weights)

        k = self.k
        stats = torch.zeros(3 * k, dtype=torch.float64, device=self.device)   # excess sums, tokens, reference sums
        for mb, proxy, ref in zip(self.micro, losses, self.reference):
            excess, tokens = domain_sums(token_excess_loss(proxy, ref, mb["loss_mask"]), mb["loss_mask"],
                                         mb["dataset_id"], k)
            ref_sums, _ = domain_sums(ref, mb["loss_mask"], mb["dataset_id"], k)
            stats += torch.cat([excess, tokens, ref_sums])
        dist.all_reduce(stats, group=self.dp_group)
        stats = stats.cpu()
        excess_sums, tokens, ref_sums = stats[:k], stats[k:2 * k], stats[2 * k:]
        lam = domain_excess_loss(excess_sums, tokens, self.excess)
        if torch.isfinite(lam).all():  # a non-finite loss skips the step; alpha must not become NaN with it
            self.excess = lam
            self.alpha = update_domain_weights(self.alpha, lam, eta=self.settings.eta,
                                               smoothing=self.settings.smoothing)
            self.updates += 1
            self.average = running_average(self.average, self.alpha, self.updates)
        self.last = {"reference_domain_loss": (ref_sums / tokens.clamp(min=1)).tolist(), "tokens": tokens.tolist()}
        # train_step divides sum(weight * loss) by the global batch's tokens: scale f back up by them.
        f = objective_token_weights(self.alpha, tokens, self.settings.normalizer) * tokens.sum()
        f = f.to(device=self.device, dtype=torch.float32)
        return [f[mb["dataset_id"]] for mb in self.micro]


def run_proxy(cfg: PretrainConfig, settings: DoremiSettings, *, reference_dir: str, weights: dict[str, float],
              on_gpu: bool, local_rank: int = 0) -> dict[str, Any] | None:
    """Train (or resume) the proxy of `cfg` against the reference run in `reference_dir`; summary on rank 0."""
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    from training.data.blend import build_pretrain_data, collate
    from training.loop.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
    from training.loop.optim import build_optimizer, lr_at
    from training.loop.parallel import init_parallel, seed_step, shutdown_parallel
    from training.loop.run_folder import (fresh_index_cache, is_due, open_metrics, read_summary, resume_from_latest,
                                          write_summary)
    from training.loop.pipeline import forward_backward
    from training.loop.step import count_step, evaluate, train_step
    from training.mixture.doremi import log_uniform_loss
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt

    s, run_dir = cfg.schedule, cfg.output.dir
    layout = init_parallel(tensor=cfg.parallel.tensor, pipeline=cfg.parallel.pipeline, seed=s.seed, on_gpu=on_gpu,
                           local_rank=local_rank)
    if layout.pp_size > 1:
        raise ValueError("the DoReMi proxy runs with parallel.pipeline 1 only")
    rank0 = layout.rank == 0
    bf16 = s.precision == "bf16" or (s.precision == "auto" and on_gpu)
    try:
        with open(os.path.join(cfg.data.export_dir, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        vocab = padded_vocab_size(cfg.model.vocab_size or manifest["tokenizer"]["vocab_size"], layout.tp_size)

        def build():
            return build_gpt(cfg.model, vocab_size=vocab, tensor_parallel=layout.tp_size, pipeline_parallel=1,
                             pre_process=True, post_process=True, on_gpu=on_gpu, seed=s.seed).to(layout.device)

        model = build()
        optimizer = build_optimizer(model, cfg.optimizer, on_gpu=on_gpu)
        reference = build()
        ref_ckpt = latest_checkpoint(os.path.join(reference_dir, "checkpoints"))
        if ref_ckpt is None:
            raise FileNotFoundError(f"{reference_dir}: the reference run has no checkpoint. Fix: train it first")
        load_checkpoint(ref_ckpt, reference)   # the resharding loader: any TP it was saved at
        reference.eval()
        reference.requires_grad_(False)

        state: dict[str, Any] = {"step": 0, "samples": 0, "bad_steps": 0, "optimizer_steps": 0, "doremi": None}
        ckpt_root, _ = resume_from_latest(run_dir, model, optimizer, state)
        start = state["step"]
        per_rank = s.global_batch_size // layout.dp_size
        index_cache = fresh_index_cache(run_dir, rank0=rank0, barrier=dist.barrier)
        data = build_pretrain_data(cfg.data.export_dir, manifest, weights, private_dir=index_cache,
                                   split=cfg.data.split, seq_length=cfg.model.seq_length, seed=s.seed,
                                   train_samples=s.train_steps * s.global_batch_size,
                                   valid_samples_per_domain=cfg.data.valid_samples_per_domain,
                                   share_tolerance=cfg.data.share_tolerance)
        objective = DoremiObjective(len(data.domains), settings,
                                    initial_excess=log_uniform_loss(manifest["tokenizer"]["vocab_size"]),
                                    state=state["doremi"], device=layout.device, dp_group=ps.get_data_parallel_group())

        def to_device(batch):
            return {k: v.to(layout.device, non_blocking=True) for k, v in batch.items()}

        def named(values):
            return {d: float(values[i]) for i, d in enumerate(data.domains)}

        log = open_metrics(run_dir, resume_step=start, rank0=rank0)
        last_valid: dict[str, float] = {}
        for step in range(start, s.train_steps):
            started = time.perf_counter()
            seed_step(s.seed, step, on_gpu=on_gpu)  # dropout's masks: a function of the step
            first = step * s.global_batch_size + layout.dp_rank * per_rank
            micro = [to_device(collate([data.train[i] for i in range(a, a + s.micro_batch_size)]))
                     for a in range(first, first + per_rank, s.micro_batch_size)]
            # The reference scores the very batch the proxy trains on (forward only, no graph kept).
            objective.micro = micro
            objective.reference = forward_backward(reference, micro, global_tokens=1.0, bf16=bf16,
                                                   device=layout.device, forward_only=True)
            lr = lr_at(step, cfg.optimizer, s)
            result = train_step(model, optimizer, micro, domains=data.domains, lr=lr, clip=cfg.optimizer.clip_grad,
                                bf16=bf16, device=layout.device, loss_weights=objective)
            objective.micro, objective.reference = [], []
            state["step"], state["samples"] = step + 1, state["samples"] + s.global_batch_size
            state["doremi"] = objective.state()
            count_step(state, finite=result.finite, step=step, max_bad_steps=s.max_bad_steps)
            record = {"step": step + 1, "loss": result.loss, "domain_loss": result.domain_loss,
                      "domain_tokens": result.domain_tokens, "lr": lr, "grad_norm": result.grad_norm,
                      "skipped": not result.finite, "seconds": time.perf_counter() - started,
                      "alpha": named(objective.alpha), "excess_loss": named(objective.excess),
                      "average_alpha": named(objective.average),
                      "reference_domain_loss": named(objective.last["reference_domain_loss"])}
            if is_due(step + 1, s.eval_interval, s.train_steps):
                last_valid = evaluate(model, data.valid, samples=cfg.data.valid_samples_per_domain,
                                      micro_batch_size=s.micro_batch_size, collate=collate, to_device=to_device,
                                      bf16=bf16, device=layout.device)
                record["valid_loss"] = last_valid
            if rank0:
                log.write(record)
            if is_due(step + 1, s.save_interval, s.train_steps):
                save_checkpoint(ckpt_root, step + 1, model, optimizer, state, rank=layout.rank,
                                barrier=dist.barrier, keep=s.keep_checkpoints)
        if log:
            log.close()
        finished = read_summary(run_dir) if start == s.train_steps else None
        if finished:  # a finished proxy, run again
            return finished if rank0 else None
        summary = {"steps": state["step"], "train_steps": s.train_steps, "samples": state["samples"],
                   "tokens": state["samples"] * cfg.model.seq_length, "bad_steps": state["bad_steps"],
                   "domains": list(data.domains), "average_alpha": named(objective.average),
                   "final_alpha": named(objective.alpha), "final_excess_loss": named(objective.excess),
                   "weight_updates": objective.updates, "settings": {"eta": settings.eta,
                                                                      "smoothing": settings.smoothing,
                                                                      "normalizer": settings.normalizer},
                   "reference_checkpoint": ref_ckpt, "valid_loss": last_valid}
        if rank0:
            write_summary(run_dir, summary)
        return summary if rank0 else None
    finally:
        shutdown_parallel()


def proxy_worker(args: dict[str, Any], *, on_gpu: bool, local_rank: int) -> None:
    """One proxy rank (training.loop.launch.launch_workers entry point)."""
    from schemas.config import config_from_dict
    from training.loop.config import parse_pretrain_config

    run_proxy(parse_pretrain_config(args["config"]), config_from_dict(DoremiSettings, args["doremi"], "doremi"),
              reference_dir=args["reference_dir"], weights=args["weights"], on_gpu=on_gpu, local_rank=local_rank)
