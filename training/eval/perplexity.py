"""Held-out perplexity of a pretraining checkpoint, per domain and overall, in this process.

    refinery eval ppl runs/pretrain-tiny [--data EXPORT_DIR] [--seq-length N] [--samples N] [--json]

Each exported domain's fixed validation set (megatron-core's split of its documents, the run's
`data.split`; the first `samples` samples) is scored with the checkpoint; a domain's loss is the mean
token NLL over its tokens, overall is the token-weighted mean over all domains, and perplexity is
exp(loss). The checkpoint is read through the resharding loader, so a run trained at TP=2 x DP=2 is
evaluated here at TP=1, and `seq_length` may differ from training (length extrapolation: ALiBi vs
learned positions). The export must use the run's tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from typing import Any


def resolve_checkpoint(path: str) -> tuple[str, str]:
    """(run folder, checkpoint folder) of a run folder (its `latest`) or of a checkpoints/step-N folder."""
    from training.loop.checkpoint import latest_checkpoint

    path = os.path.abspath(path)
    if os.path.exists(os.path.join(path, "meta.json")):
        return os.path.dirname(os.path.dirname(path)), path
    ckpt = latest_checkpoint(os.path.join(path, "checkpoints"))
    if ckpt is None:
        raise FileNotFoundError(f"{path}: neither a run folder with checkpoints/latest nor a checkpoints/step-N "
                                f"folder. Fix: train first (`refinery train pretrain`), or name a step folder")
    return path, ckpt


def evaluate_checkpoint(path: str, *, export_dir: str | None = None, seq_length: int | None = None,
                        samples: int | None = None, micro_batch_size: int = 4) -> dict[str, Any]:
    import torch
    import yaml

    from training.data.blend import collate, open_valid_sets
    from training.loop.checkpoint import load_checkpoint
    from training.loop.config import parse_pretrain_config
    from training.loop.launch import RESOLVED
    from training.loop.optim import build_optimizer
    from training.loop.parallel import ensure_process_group, init_parallel, shutdown_parallel
    from training.loop.step import evaluate_sums
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt

    run_dir, ckpt = resolve_checkpoint(path)
    with open(os.path.join(run_dir, RESOLVED), encoding="utf-8") as f:
        cfg = parse_pretrain_config(yaml.safe_load(f)["config"])
    export_dir = os.path.abspath(export_dir or cfg.data.export_dir)
    manifest = _read_manifest(export_dir)
    trained_on = os.path.join(cfg.data.export_dir, "manifest.json")
    if os.path.exists(trained_on):
        sha = _read_manifest(cfg.data.export_dir)["tokenizer"]["tokenizer_sha256"]
        if manifest["tokenizer"]["tokenizer_sha256"] != sha:
            raise ValueError(f"{export_dir} was tokenized with tokenizer {manifest['tokenizer']['tokenizer_sha256'][:12]}, "
                             f"the run with {sha[:12]}: token ids would not mean the same. Fix: export with the "
                             f"run's tokenizer")
    length = seq_length or cfg.model.seq_length
    trained_max = cfg.model.max_position or cfg.model.seq_length
    if cfg.model.position == "learned" and length > trained_max:
        raise ValueError(f"learned positions stop at {trained_max}: set model.max_position >= {length} when "
                         f"training to evaluate at {length}")
    model_cfg = dataclasses.replace(cfg.model, seq_length=length, max_position=max(trained_max, length))
    samples = samples or cfg.data.valid_samples_per_domain
    created = not torch.distributed.is_initialized()
    ensure_process_group("gloo")
    init_parallel(tensor=1, pipeline=1, seed=cfg.schedule.seed, on_gpu=False)
    cache = os.path.join(run_dir, f"eval-index-cache-{os.getpid()}")  # see training/data/blend.py
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(cache)
    try:
        vocab = padded_vocab_size(cfg.model.vocab_size or manifest["tokenizer"]["vocab_size"])
        model = build_gpt(model_cfg, vocab_size=vocab)
        meta = load_checkpoint(ckpt, model, build_optimizer(model, cfg.optimizer, on_gpu=False))
        valid = open_valid_sets(export_dir, manifest, private_dir=cache, split=cfg.data.split, seq_length=length,
                                seed=cfg.schedule.seed, samples=samples)
        sums, tokens = evaluate_sums(model, valid, samples=samples, micro_batch_size=micro_batch_size,
                                     collate=collate, to_device=lambda b: b, bf16=False, device="cpu")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutdown_parallel()
        if created:
            torch.distributed.destroy_process_group()
    domains = {d: {"loss": sums[d] / tokens[d], "perplexity": math.exp(sums[d] / tokens[d]), "tokens": int(tokens[d])}
               for d in sorted(sums)}
    overall = sum(sums.values()) / sum(tokens.values())
    return {"checkpoint": ckpt, "step": meta["step"], "export_dir": export_dir, "split": cfg.data.split,
            "seq_length": length, "samples_per_domain": samples, "domains": domains,
            "overall": {"loss": overall, "perplexity": math.exp(overall), "tokens": int(sum(tokens.values()))}}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"checkpoint {report['checkpoint']} (step {report['step']}), seq {report['seq_length']}, "
             f"{report['samples_per_domain']} valid samples per domain of {report['export_dir']}",
             f"{'domain':<14}{'tokens':>10}{'loss':>10}{'perplexity':>14}"]
    for d, v in report["domains"].items():
        lines.append(f"{d:<14}{v['tokens']:>10}{v['loss']:>10.4f}{v['perplexity']:>14.2f}")
    o = report["overall"]
    lines.append(f"{'overall':<14}{o['tokens']:>10}{o['loss']:>10.4f}{o['perplexity']:>14.2f}")
    return "\n".join(lines)


def _read_manifest(export_dir: str) -> dict[str, Any]:
    path = os.path.join(export_dir, "manifest.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: is {export_dir} a `refinery export megatron` folder?")
    with open(path, encoding="utf-8") as f:
        return json.load(f)
