"""The DoReMi search (`refinery mix doremi CONFIG`): rounds of reference run -> proxy run -> weights.

    <output>/round-1/reference-weights.json   the reference's mixture (data.mixture in round 1)
    <output>/round-1/reference/                a normal pretraining run (launch_pretrain) on those weights
    <output>/round-1/proxy/                    the proxy run (metrics.jsonl: alpha, lambda, average per step)
    <output>/round-1/weights.json              the time-averaged alpha of the proxy
    <output>/weights.json                      the last round's weights (schemas/mixture_weights_v1)
    <output>/trajectory.jsonl, trajectory.png  alpha_t and its running average per step, every round
    <output>/summary.json                      rounds, weight changes, FLOPs of the search (and vs a target run)

Iterated DoReMi (the paper, section 3): round r + 1 trains its reference on round r's weights; the rounds
stop when no weight moved by `doremi.tolerance` or more. Every run resumes: running the command again
continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from training.atomic_files import write_json_atomic, write_text_atomic
from training.loop.config import config_to_dict
from training.mixture.config import DoremiConfig, run_config

WEIGHTS = "weights.json"
TRAJECTORY = "trajectory.jsonl"


def search_flops(flops_per_token: float, tokens_per_run: int, rounds: int) -> dict[str, float]:
    """FLOPs of the search. `flops_per_token` is the training figure (forward + backward = 3 forwards): each
    round trains a reference and a proxy on `tokens_per_run` tokens, and runs the reference forward (1/3 of a
    training step) on each of the proxy's tokens."""
    reference = flops_per_token * tokens_per_run
    proxy = flops_per_token * tokens_per_run
    reference_forward = flops_per_token / 3.0 * tokens_per_run
    per_round = reference + proxy + reference_forward
    return {"reference": reference, "proxy": proxy, "reference_forward": reference_forward, "per_round": per_round,
            "total": per_round * rounds}


def target_flops(path: str, vocab_size: int) -> dict[str, float]:
    """Training FLOPs of the pretraining run `path` describes (its model, steps, batch and length)."""
    from training.loop.config import load_pretrain_config
    from training.model.config import flops_per_token, padded_vocab_size

    t = load_pretrain_config(path)
    tokens = t.schedule.train_steps * t.schedule.global_batch_size * t.model.seq_length
    per_token = flops_per_token(t.model, padded_vocab_size(t.model.vocab_size or vocab_size))
    return {"flops_per_token": per_token, "tokens": tokens, "total": per_token * tokens}


def run_doremi(cfg: DoremiConfig, *, address: str | None = None, progress: bool = True, echo=print) -> dict[str, Any]:
    """Run (or resume) the search of `cfg`; returns summary.json."""
    from schemas.mixture import load_mixture_weights, make_mixture_weights, write_mixture_weights
    from training.loop.launch import (LaunchError, Progress, _absolute_paths, launch_pretrain, launch_workers,
                                      prepare_run, resolve_weights)
    from training.mixture.doremi import max_weight_change
    from training.mixture.plots import plot_trajectory
    from training.model.config import flops_per_token, padded_vocab_size

    out = os.path.abspath(cfg.output.dir)
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(os.path.abspath(cfg.data.export_dir), "manifest.json")
    first = _absolute_paths(run_config(cfg, mixture=cfg.data.mixture, out=out))
    if not os.path.exists(manifest_path):
        raise LaunchError(f"data.export_dir: {manifest_path} does not exist. Fix: run `refinery export megatron` first")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    reference_weights = resolve_weights(first, manifest, manifest_path)
    rounds, trajectory = [], []
    for r in range(1, cfg.doremi.rounds + 1):
        round_dir = os.path.join(out, f"round-{r}")
        os.makedirs(round_dir, exist_ok=True)
        ref_path = os.path.join(round_dir, "reference-weights.json")
        write_mixture_weights(ref_path, reference_weights)
        echo(f"round {r}: reference on {_fmt(reference_weights.weights)}")
        reference_cfg = _absolute_paths(run_config(cfg, mixture=ref_path, out=os.path.join(round_dir, "reference")))
        launch_pretrain(reference_cfg, address=address, progress=progress)

        proxy_cfg = _absolute_paths(run_config(cfg, mixture="uniform", out=os.path.join(round_dir, "proxy")))
        uniform_weights, _ = prepare_run(proxy_cfg)
        bar = Progress(metrics=os.path.join(proxy_cfg.output.dir, "metrics.jsonl"), total=cfg.schedule.train_steps,
                       desc=f"proxy {r}", log_interval=cfg.schedule.log_interval)
        launch_workers("training.mixture.proxy:proxy_worker",
                       {"config": config_to_dict(proxy_cfg), "doremi": dataclasses.asdict(cfg.doremi),
                        "reference_dir": reference_cfg.output.dir, "weights": uniform_weights},
                       parallel=cfg.parallel, run_dir=proxy_cfg.output.dir, address=address,
                       progress=bar if progress else None)
        with open(os.path.join(proxy_cfg.output.dir, "summary.json"), encoding="utf-8") as f:
            proxy = json.load(f)
        weights = make_mixture_weights(
            proxy["average_alpha"], method="doremi", normalize=True,
            inputs=[manifest_path, os.path.join(reference_cfg.output.dir, "checkpoints"), proxy_cfg.output.dir],
            notes=f"DoReMi (Xie et al. 2023, Algorithm 1) round {r}: time-averaged proxy weights over "
                  f"{proxy['weight_updates']} steps; eta {cfg.doremi.eta}, c {cfg.doremi.smoothing}, objective "
                  f"{cfg.doremi.normalizer}; reference weights {reference_weights.method}")
        write_mixture_weights(os.path.join(round_dir, WEIGHTS), weights)
        change = max_weight_change(weights.weights, reference_weights.weights)
        rounds.append({"round": r, "reference_weights": reference_weights.weights, "weights": weights.weights,
                       "max_change": change, "proxy_valid_loss": proxy.get("valid_loss", {})})
        trajectory += _round_trajectory(r, os.path.join(proxy_cfg.output.dir, "metrics.jsonl"))
        echo(f"round {r}: weights {_fmt(weights.weights)}; largest change {change:.4g}")
        reference_weights = weights
        if change < cfg.doremi.tolerance:
            break
    final = load_mixture_weights(os.path.join(out, f"round-{len(rounds)}", WEIGHTS))
    write_mixture_weights(os.path.join(out, WEIGHTS), final)
    write_text_atomic(os.path.join(out, TRAJECTORY), "".join(json.dumps(t, sort_keys=True) + "\n" for t in trajectory))
    plot_trajectory(trajectory, os.path.join(out, "trajectory.png"))

    vocab = padded_vocab_size(cfg.model.vocab_size or manifest["tokenizer"]["vocab_size"])
    tokens = cfg.schedule.train_steps * cfg.schedule.global_batch_size * cfg.model.seq_length
    cost = search_flops(flops_per_token(cfg.model, vocab), tokens, len(rounds))
    summary = {"rounds": rounds, "converged": rounds[-1]["max_change"] < cfg.doremi.tolerance,
               "weights": final.weights, "flops": cost, "tokens_per_run": tokens}
    if cfg.target:
        target = target_flops(cfg.target, manifest["tokenizer"]["vocab_size"])
        summary["target"] = {"config": cfg.target, **target, "search_over_target": cost["total"] / target["total"]}
    write_json_atomic(os.path.join(out, "summary.json"), summary)
    return summary


def _round_trajectory(r: int, metrics: str) -> list[dict[str, Any]]:
    from training.loop.metrics import read_metrics

    keys = ("alpha", "average_alpha", "excess_loss", "domain_loss", "reference_domain_loss", "loss")
    return [{"round": r, "step": m["step"], **{k: m[k] for k in keys if k in m}} for m in read_metrics(metrics)]


def _fmt(weights: dict[str, float]) -> str:
    return ", ".join(f"{d} {w:.4f}" for d, w in sorted(weights.items()))
