"""The PPO worker (InstructGPT's RLHF step, Ouyang et al. 2022): what each data-parallel rank runs.

    policy + frozen reference (SFT checkpoint), value model (reward model, or the policy's trunk + a new
    head), reward source -> resume from `latest`
    -> for each iteration:
         rollout: this rank's prompts -> sampled responses -> old log-probs (policy), reference
                  log-probs, values, scores
         rewards: -beta * KL per token + score on the last token -> GAE -> advantages whitened over the
                  global batch
         update:  `epochs` passes, `minibatches` optimizer steps each: clipped surrogate (+ gamma_ptx x
                  pretraining loss on a pretraining batch) for the policy, clipped value loss for the
                  value model; gradients summed over DP ranks; each model clipped and stepped
         KL controller update -> metrics -> pretraining validation loss -> checkpoint
    -> summary

Losses are token means over the global minibatch (each micro-batch's backward uses sum / global tokens,
and the gradient is summed over ranks, as in training/loop/step.py). Sampling runs one sequence at a time
through the shared sampler without a key/value cache: each new token re-runs the whole sequence, so a
response of R tokens costs O(R) forwards of up to prompt + R tokens; fine for the tiny models of CI and
a few iterations of a ~125M model, and the first thing to replace for long responses.

Checkpoints: checkpoints/step-N is the policy (an ordinary GPT checkpoint: eval ppl / generate read it)
with AdamW's moments and the trainer state (iteration, KL coefficient, optimizer steps) in meta.json;
checkpoints/value/step-N the value model and its moments. The value model is saved first, so the
policy's `latest` marker, written last, always names a complete pair (the value folder keeps one
checkpoint more than run.keep_checkpoints, so a kill between the two saves cannot prune the pair's value half).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from training.align.ppo_config import PPOConfig
from training.atomic_files import write_text_atomic

RESOLVED = "config.resolved.yaml"
VALUE_DIR = "value"


def read_model_config(run_dir: str):
    """The ModelConfig of a run folder's config.resolved.yaml (pretraining, SFT or reward-model run)."""
    import yaml

    from schemas.config import config_from_dict
    from training.model.config import ModelConfig

    path = os.path.join(run_dir, RESOLVED)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a training run folder")
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    model = doc.get("model") or (doc.get("config") or {}).get("model")  # alignment runs | pretraining runs
    if model is None:
        raise ValueError(f"{path}: no model section (config.model): cannot rebuild the model of {run_dir}")
    return config_from_dict(ModelConfig, model, f"{path}: config.model")


def _run_export_dir(run_dir: str) -> str | None:
    import yaml

    with open(os.path.join(run_dir, RESOLVED), encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    return ((doc.get("config") or {}).get("data") or {}).get("export_dir")


def run_ppo(cfg: PPOConfig, *, mixture: dict[str, float] | None, on_gpu: bool, local_rank: int = 0,
            stop_after: int | None = None) -> dict[str, Any] | None:
    """Run (or resume) the PPO run of `cfg`; returns the summary on rank 0. `mixture`: the ptx blend's weights
    (resolved by the driver), None without a pretraining export. `stop_after`: leave after this many
    iterations of this call (benchmarks)."""
    import numpy as np
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    from training.align.ppo_math import (KLController, clipped_policy_loss, clipped_value_loss,
                                         entropy_from_logits, gae, kl_rewards, masked_moments, token_logprobs,
                                         whiten)
    from training.align.ppo_rewards import ModelReward, TokenFractionReward, single_token_id
    from training.align.rollout import (build_batch, policy_logits, prompt_indices, read_prompt_ids,
                                        sample_responses)
    from training.data.blend import build_pretrain_data, collate, open_valid_sets
    from training.eval.loaded import resolve_checkpoint
    from training.loop.checkpoint import load_checkpoint, save_checkpoint, step_dir_name
    from training.loop.config import OptimizerConfig
    from training.loop.optim import build_optimizer
    from training.loop.parallel import init_parallel, seed_step, shutdown_parallel
    from training.loop.run_folder import (fresh_index_cache, is_due, open_metrics, resume_from_latest,
                                          write_summary)
    from training.loop.step import apply_update, autocast, evaluate, forward_loss, global_grad_norm, reduce_gradients
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt
    from training.model.heads import ScalarHeadGPT, init_trunk_from_checkpoint
    from training.tokenizer import load_tokenizer

    r, o, d, smp = cfg.run, cfg.ppo, cfg.data, cfg.sampling
    run_dir = cfg.output.dir
    layout = init_parallel(tensor=1, pipeline=1, seed=r.seed, on_gpu=on_gpu, local_rank=local_rank)
    device, rank0 = layout.device, layout.rank == 0
    bf16 = r.precision == "bf16" or (r.precision == "auto" and on_gpu)
    dp_group = ps.get_data_parallel_group()
    try:
        tok = load_tokenizer(cfg.policy.tokenizer)
        sft_run, sft_ckpt = resolve_checkpoint(cfg.policy.sft)
        policy_cfg = read_model_config(sft_run)
        vocab = padded_vocab_size(policy_cfg.vocab_size or tok.vocab_size)

        def gpt_from(ckpt):
            model = build_gpt(policy_cfg, vocab_size=vocab, on_gpu=on_gpu).to(device)
            load_checkpoint(ckpt, model)
            return model

        policy, reference = gpt_from(sft_ckpt), gpt_from(sft_ckpt).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
        if cfg.reward.kind == "model":
            rm_run, rm_ckpt = resolve_checkpoint(cfg.reward.model)
            rm_cfg = read_model_config(rm_run)

            def rm_from(ckpt):
                model = ScalarHeadGPT(rm_cfg, vocab_size=padded_vocab_size(rm_cfg.vocab_size or tok.vocab_size),
                                      on_gpu=on_gpu).to(device)
                load_checkpoint(ckpt, model)
                return model

            reward = ModelReward(rm_from(rm_ckpt), bf16=bf16, device=device)
            value = rm_from(rm_ckpt)  # InstructGPT: the value function starts from the reward model
        else:
            reward = TokenFractionReward(single_token_id(tok.tokenizer, cfg.reward.token), device=device)
            # no reward model to start from: the policy's trunk and a new head (its init drawn from run.seed)
            value = ScalarHeadGPT(policy_cfg, vocab_size=vocab, on_gpu=on_gpu, seed=r.seed).to(device)
            init_trunk_from_checkpoint(value, sft_ckpt, on_gpu=on_gpu)

        def adamw(model, lr):
            oc = cfg.optimizer
            return build_optimizer(model, OptimizerConfig(lr=lr, min_lr=0.0, weight_decay=oc.weight_decay,
                                                          beta1=oc.beta1, beta2=oc.beta2, eps=oc.eps,
                                                          clip_grad=oc.clip_grad), on_gpu=on_gpu)

        policy_opt, value_opt = adamw(policy, cfg.optimizer.lr), adamw(value, cfg.optimizer.value_lr)

        state = {"iteration": 0, "optimizer_steps": 0, "value_optimizer_steps": 0, "kl_beta": o.kl_beta,
                 "samples": 0, "bad_steps": 0}
        ckpt_root, resumed = resume_from_latest(run_dir, policy, policy_opt, state)
        value_root = os.path.join(ckpt_root, VALUE_DIR)
        os.makedirs(value_root, exist_ok=True)
        if resumed:  # the value half of the pair `latest` names
            load_checkpoint(os.path.join(value_root, step_dir_name(state["iteration"])), value, value_opt)
        controller = KLController(beta=state["kl_beta"], target=o.kl_target, horizon=o.kl_horizon,
                                  k_beta=o.kl_k_beta)

        prompts = read_prompt_ids(d.prompts, tok, chat_template=d.chat_template, max_tokens=d.max_prompt_tokens)

        # pretraining data: the ptx blend (when gamma_ptx > 0) and the per-domain validation sets
        ptx_len = d.ptx_seq_length or policy_cfg.seq_length
        steps_per_iteration = o.epochs * o.minibatches
        ptx_train, valid = None, None
        if d.ptx_export_dir:
            with open(os.path.join(d.ptx_export_dir, "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            index_cache = fresh_index_cache(run_dir, rank0=rank0, barrier=dist.barrier)
            if o.ptx_coef > 0:
                data = build_pretrain_data(d.ptx_export_dir, manifest, mixture, private_dir=index_cache,
                                           split=d.ptx_split, seq_length=ptx_len, seed=r.seed,
                                           train_samples=o.iterations * steps_per_iteration * d.ptx_batch_size,
                                           valid_samples_per_domain=d.valid_samples_per_domain,
                                           share_tolerance=d.share_tolerance)
                ptx_train, valid = data.train, data.valid
            else:
                valid = open_valid_sets(d.ptx_export_dir, manifest, private_dir=index_cache, split=d.ptx_split,
                                        seq_length=ptx_len, seed=r.seed, samples=d.valid_samples_per_domain)

        def to_device(batch):
            return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

        def valid_loss():
            return evaluate(policy, valid, samples=d.valid_samples_per_domain, micro_batch_size=o.micro_batch_size,
                            collate=collate, to_device=to_device, bf16=bf16, device=device)

        def all_sum(values: list[float]) -> list[float]:
            t = torch.tensor(values, dtype=torch.float64, device=device)
            dist.all_reduce(t, group=dp_group)
            return t.cpu().tolist()

        def step_model(model, optimizer, lr) -> tuple[float, bool]:
            reduce_gradients(model, dp_group)
            norm = global_grad_norm(model)
            finite = bool(np.isfinite(norm))
            apply_update(model, optimizer, finite=finite, grad_norm=norm, clip=cfg.optimizer.clip_grad, lr=lr)
            return norm, finite

        start = state["iteration"]
        per_rank = cfg.samples_per_rank
        log = open_metrics(run_dir, resume_step=start, rank0=rank0)
        first_valid = None
        if valid is not None and start == 0:
            first_valid = valid_loss()  # the SFT model's pretraining loss: what PPO-ptx tries to keep
            if rank0:
                log.write({"step": 0, "valid_loss": first_valid})
        last_valid, records = None, []
        iterations_run = 0
        for it in range(start, o.iterations):
            started = time.perf_counter()
            seed_step(r.seed, it, on_gpu=on_gpu)  # dropout's masks: a function of the step
            # ---- rollout: this rank's share of the global batch of iteration `it`
            indices = prompt_indices(len(prompts), it, o.rollout_batch_size, r.seed)
            mine = range(layout.dp_rank * per_rank, (layout.dp_rank + 1) * per_rank)
            my_prompts = [prompts[indices[j]] for j in mine]
            responses = sample_responses(policy, my_prompts, global_indices=list(mine), iteration=it, seed=r.seed,
                                         max_new_tokens=smp.max_new_tokens, temperature=smp.temperature,
                                         top_p=smp.top_p, top_k=smp.top_k, eod_id=tok.eod_id,
                                         vocab_size=tok.vocab_size, device=device)
            batch = build_batch(my_prompts, responses, pad_id=tok.eod_id, device=device)
            mask = batch.action_mask
            rollout_seconds = time.perf_counter() - started
            chunks = [list(range(a, min(a + o.micro_batch_size, per_rank)))
                      for a in range(0, per_rank, o.micro_batch_size)]
            old_logp, ref_logp, old_values = [], [], []
            with torch.no_grad(), autocast(device, bf16):
                for rows in (batch.rows(c) for c in chunks):
                    targets = rows["tokens"][:, 1:]
                    old_logp.append(token_logprobs(policy_logits(policy, rows, vocab_size=tok.vocab_size,
                                                                 temperature=smp.temperature), targets))
                    ref_logp.append(token_logprobs(policy_logits(reference, rows, vocab_size=tok.vocab_size,
                                                                 temperature=smp.temperature), targets))
                    old_values.append(value(rows["tokens"], rows["position_ids"])[:, :-1].float())
                scores = reward.score(batch).float()
            old_logp, ref_logp, old_values = (torch.cat(x) for x in (old_logp, ref_logp, old_values))

            # ---- rewards and advantages
            beta = controller.beta
            rewards, kl = kl_rewards(old_logp, ref_logp, mask, scores, beta=beta)
            advantages, returns = gae(rewards, old_values, mask, gamma=o.gamma, lam=o.lam)
            if o.whiten_advantages:
                moments = masked_moments(advantages, mask).to(device)
                dist.all_reduce(moments, group=dp_group)
                advantages = whiten(advantages, mask, moments.cpu())
            kl_seq = kl.sum(1)  # [b] per-response KL estimate

            # ---- PPO epochs over the rollout batch
            sums = dict.fromkeys(("policy_loss", "clipped", "value_loss", "value_clipped", "entropy",
                                  "value_error", "approx_kl", "tokens", "ptx_loss", "ptx_tokens"), 0.0)
            grad_norms, value_norms = [], []
            for epoch in range(o.epochs):
                order = np.random.default_rng([r.seed, it, epoch, layout.dp_rank]).permutation(per_rank)
                for mb in np.array_split(order, o.minibatches):
                    k = state["optimizer_steps"] + state["bad_steps"]  # optimizer steps taken or skipped so far
                    lr_scale = min(1.0, (k + 1) / cfg.optimizer.warmup_steps) if cfg.optimizer.warmup_steps else 1.0
                    mb_tokens = all_sum([float(mask[mb].sum())])[0]
                    for a in range(0, len(mb), o.micro_batch_size):
                        idx = torch.as_tensor(mb[a:a + o.micro_batch_size], device=device)
                        rows, m = batch.rows(idx), mask[idx]
                        with autocast(device, bf16):
                            logits = policy_logits(policy, rows, vocab_size=tok.vocab_size,
                                                   temperature=smp.temperature)
                        logp = token_logprobs(logits, rows["tokens"][:, 1:])
                        p_loss, clipped = clipped_policy_loss(logp, old_logp[idx], advantages[idx], m, clip=o.clip)
                        (p_loss.sum() / mb_tokens).backward()
                        with autocast(device, bf16):
                            v = value(rows["tokens"], rows["position_ids"])[:, :-1].float()
                        v_loss, v_clipped = clipped_value_loss(v, old_values[idx], returns[idx], m, clip=o.value_clip)
                        (v_loss.sum() / mb_tokens).backward()
                        with torch.no_grad():
                            sums["policy_loss"] += float(p_loss.sum())
                            sums["clipped"] += float(clipped.sum())
                            sums["value_loss"] += float(v_loss.sum())
                            sums["value_clipped"] += float(v_clipped.sum())
                            sums["entropy"] += float((entropy_from_logits(logits) * m).sum())
                            sums["value_error"] += float((((v - returns[idx]) ** 2) * m).sum())
                            sums["approx_kl"] += float(((old_logp[idx] - logp) * m).sum())
                            sums["tokens"] += float(m.sum())
                    if o.ptx_coef > 0:
                        # gamma_ptx x the pretraining loss (token mean over this step's global ptx batch)
                        per_ptx = d.ptx_batch_size // layout.dp_size
                        first = k * d.ptx_batch_size + layout.dp_rank * per_ptx
                        micro = [to_device(collate([ptx_train[i] for i in range(b, min(b + o.micro_batch_size,
                                                                                       first + per_ptx))]))
                                 for b in range(first, first + per_ptx, o.micro_batch_size)]
                        ptx_tokens = all_sum([float(sum(x["loss_mask"].sum() for x in micro))])[0]
                        for x in micro:
                            masked = forward_loss(policy, x, bf16=bf16, device=device) * x["loss_mask"]
                            (o.ptx_coef * masked.sum() / ptx_tokens).backward()
                            sums["ptx_loss"] += float(masked.detach().sum())
                            sums["ptx_tokens"] += float(x["loss_mask"].sum())
                    p_norm, p_ok = step_model(policy, policy_opt, cfg.optimizer.lr * lr_scale)
                    v_norm, v_ok = step_model(value, value_opt, cfg.optimizer.value_lr * lr_scale)
                    grad_norms.append(p_norm)
                    value_norms.append(v_norm)
                    if p_ok and v_ok:
                        state["optimizer_steps"] += 1
                        state["value_optimizer_steps"] += 1
                    else:  # one model's step may have gone through; the other was skipped
                        state["optimizer_steps"] += int(p_ok)
                        state["value_optimizer_steps"] += int(v_ok)
                        state["bad_steps"] += 1
            # the rollout batch's mean KL drives the adaptive controller (Ziegler et al.: n_steps = batch size)
            (score_sum, kl_sum, response_tokens, *rest) = all_sum(
                [float(scores.sum()), float(kl_seq.sum()), float(mask.sum())] + list(sums.values()))
            totals = dict(zip(sums, rest))
            n = o.rollout_batch_size
            controller.update(kl_sum / n, n)
            if on_gpu:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            state["iteration"], state["samples"], state["kl_beta"] = it + 1, state["samples"] + n, controller.beta
            tok_n = max(totals["tokens"], 1.0)
            record = {"step": it + 1, "reward": score_sum / n, "kl": kl_sum / n, "kl_beta": beta,
                      "non_score_reward": -beta * kl_sum / n, "entropy": totals["entropy"] / tok_n,
                      "clip_frac": totals["clipped"] / tok_n, "value_clip_frac": totals["value_clipped"] / tok_n,
                      "value_error": totals["value_error"] / tok_n, "policy_loss": totals["policy_loss"] / tok_n,
                      "value_loss": totals["value_loss"] / tok_n, "approx_kl": totals["approx_kl"] / tok_n,
                      "response_length": response_tokens / n, "grad_norm": float(np.mean(grad_norms)),
                      "value_grad_norm": float(np.mean(value_norms)), "lr": cfg.optimizer.lr * lr_scale,
                      "bad_steps": state["bad_steps"], "rollout_seconds": rollout_seconds, "seconds": seconds,
                      "samples_per_s": n / seconds, "tokens_per_s": response_tokens / seconds,
                      "rollout_tokens_per_s": response_tokens / rollout_seconds}
            if o.ptx_coef > 0:
                record["ptx_loss"] = totals["ptx_loss"] / max(totals["ptx_tokens"], 1.0)
            if valid is not None and is_due(it + 1, r.eval_interval, o.iterations):
                last_valid = valid_loss()
                record["valid_loss"] = last_valid
            if rank0:
                log.write(record)
            records.append(record)
            if is_due(it + 1, r.save_interval, o.iterations):
                barrier = dist.barrier
                # one value checkpoint more than the policy's: until the policy's save lands, `latest` still
                # names the previous pair, whose value half must survive this save's pruning
                save_checkpoint(value_root, it + 1, value, value_opt,
                                {"optimizer_steps": state["value_optimizer_steps"]}, rank=layout.rank,
                                barrier=barrier, keep=r.keep_checkpoints + 1)
                save_checkpoint(ckpt_root, it + 1, policy, policy_opt, dict(state), rank=layout.rank,
                                barrier=barrier, keep=r.keep_checkpoints)
            iterations_run += 1
            if stop_after is not None and iterations_run >= stop_after:
                break
        if log:
            log.close()
        summary = _summary(run_dir, state, o.iterations, first_valid, last_valid, records)
        if rank0:
            write_summary(run_dir, summary)
        return summary if rank0 else None
    finally:
        shutdown_parallel()


def _summary(run_dir, state, iterations, first_valid, last_valid, records) -> dict[str, Any]:
    """Counts and the first / last figures of the whole run (metrics.jsonl, not just this call's records)."""
    from training.loop.metrics import read_metrics
    from training.loop.run_folder import METRICS

    history = [x for x in read_metrics(os.path.join(run_dir, METRICS)) if x.get("step", 0) > 0] or records
    valid = [x["valid_loss"] for x in read_metrics(os.path.join(run_dir, METRICS)) if "valid_loss" in x]
    out = {"iterations": state["iteration"], "target_iterations": iterations, "samples": state["samples"],
           "optimizer_steps": state["optimizer_steps"], "bad_steps": state["bad_steps"], "kl_beta": state["kl_beta"]}
    if history:
        for key in ("reward", "kl"):
            out[f"first_{key}"], out[f"last_{key}"] = history[0][key], history[-1][key]
    if valid:
        out["valid_loss_start"], out["valid_loss_end"] = valid[0], valid[-1]
    return out


def ppo_worker(args: dict[str, Any], *, on_gpu: bool, local_rank: int) -> None:
    """One PPO rank (training.loop.launch.launch_workers entry point)."""
    from training.align.ppo_config import parse_ppo_config

    run_ppo(parse_ppo_config(args["config"]), mixture=args["mixture"], on_gpu=on_gpu, local_rank=local_rank)


def absolute_paths(cfg: PPOConfig) -> PPOConfig:
    """Workers may start in another working directory: every path made absolute (read from the driver's)."""
    import dataclasses

    def ab(p):
        return os.path.abspath(p) if p else p

    d = cfg.data
    mixture = d.ptx_mixture if d.ptx_mixture in ("natural", "uniform", "llama1") else ab(d.ptx_mixture)
    return dataclasses.replace(
        cfg, policy=dataclasses.replace(cfg.policy, sft=ab(cfg.policy.sft), tokenizer=ab(cfg.policy.tokenizer)),
        reward=dataclasses.replace(cfg.reward, model=ab(cfg.reward.model)),
        data=dataclasses.replace(d, prompts=ab(d.prompts), ptx_export_dir=ab(d.ptx_export_dir), ptx_mixture=mixture),
        output=dataclasses.replace(cfg.output, dir=ab(cfg.output.dir)))


def prepare_ppo_run(cfg: PPOConfig) -> dict[str, float] | None:
    """Check the inputs and the run folder, write the resolved config; returns the ptx mixture weights (None
    without a pretraining export). `cfg` must hold absolute paths."""
    import yaml

    from schemas.mixture import write_mixture_weights
    from training.align.ppo_config import ppo_identity
    from training.eval.loaded import resolve_checkpoint
    from training.loop.config import config_to_dict
    from training.loop.launch import LaunchError, resolve_mixture
    from training.loop.run_folder import refuse_other_run
    from training.tokenizer import load_tokenizer

    for what, path in (("data.prompts", cfg.data.prompts), ("policy.tokenizer", cfg.policy.tokenizer)):
        if not os.path.exists(path):
            raise LaunchError(f"{what}: {path} does not exist")
    runs = [("policy.sft", cfg.policy.sft)] + ([("reward.model", cfg.reward.model)] if cfg.reward.kind == "model"
                                               else [])
    for what, path in runs:
        try:
            resolve_checkpoint(path)
        except FileNotFoundError as exc:
            raise LaunchError(f"{what}: {exc}") from exc
    tok = load_tokenizer(cfg.policy.tokenizer)
    sft_run, _ = resolve_checkpoint(cfg.policy.sft)
    export = _run_export_dir(sft_run)
    exports = ([("the SFT run's export", export)] if export and os.path.exists(export) else []) + (
        [("data.ptx_export_dir", cfg.data.ptx_export_dir)] if cfg.data.ptx_export_dir else [])
    for what, folder in exports:
        path = os.path.join(folder, "manifest.json")
        if not os.path.exists(path):
            raise LaunchError(f"{what}: {path} does not exist. Fix: run `refinery export megatron` first")
        with open(path, encoding="utf-8") as f:
            sha = json.load(f)["tokenizer"]["tokenizer_sha256"]
        if sha != tok.sha256:
            raise LaunchError(f"policy.tokenizer {cfg.policy.tokenizer} is tokenizer {tok.sha256[:12]}, {what} "
                              f"({folder}) was tokenized with {sha[:12]}. Fix: the tokenizer the SFT model was "
                              f"trained with")
    run_dir = cfg.output.dir
    os.makedirs(run_dir, exist_ok=True)
    identity = ppo_identity(cfg)
    refuse_other_run(run_dir, kind="ppo", identity=identity)
    resolved = os.path.join(run_dir, RESOLVED)
    weights = None
    if cfg.data.ptx_export_dir:
        manifest_path = os.path.join(cfg.data.ptx_export_dir, "manifest.json")
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        mixture = resolve_mixture(cfg.data.ptx_mixture, manifest, manifest_path, where="data.ptx_mixture")
        write_mixture_weights(os.path.join(run_dir, "mixture.json"), mixture)
        weights = mixture.weights
    # the layout of alignment run folders (training/align/source.py): `model` is the policy's, and `config` the
    # chain's pretraining config, so that readers of GPT run folders (eval ppl, eval generate) read the policy
    doc = {"kind": "ppo", "identity": identity, "ppo": config_to_dict(cfg),
           "model": config_to_dict(read_model_config(sft_run)), "tokenizer": cfg.policy.tokenizer,
           "source": {"run": sft_run}}
    with open(os.path.join(sft_run, RESOLVED), encoding="utf-8") as f:
        chain = (yaml.safe_load(f) or {}).get("config")
    if chain:
        doc["config"] = {**chain, "output": {**chain.get("output", {}), "dir": run_dir}}
    write_text_atomic(resolved, yaml.safe_dump(doc, sort_keys=False))
    return weights


def launch_ppo(cfg: PPOConfig, *, address: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the PPO run of `cfg` on Ray Train; returns summary.json."""
    from training.align.source import launch_align
    from training.loop.config import config_to_dict

    cfg = absolute_paths(cfg)
    weights = prepare_ppo_run(cfg)
    args = {"config": config_to_dict(cfg), "mixture": weights}
    return launch_align("ppo", "training.align.ppo:ppo_worker", cfg, args, total=cfg.ppo.iterations,
                        log_interval=cfg.run.log_interval, postfix=("reward", "kl"), address=address,
                        progress=progress)
