"""Sampled continuations of prompts from a pretraining checkpoint, in this process (TP = PP = 1)."""

from __future__ import annotations

import json
import os
from typing import Any

from training.eval.sampling import SamplingConfig


def read_prompts(path: str) -> list[str]:
    """One prompt per line of a text file, or the `prompt` field of each line of a .jsonl file."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    if path.endswith(".jsonl"):
        prompts = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                prompts.append(str(json.loads(line)["prompt"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{i}: expected a JSON object with a `prompt` field ({exc})") from exc
        return prompts
    return [line for line in lines if line.strip()]


def generate_from_checkpoint(path: str, prompts: list[str], *, tokenizer_dir: str,
                             sampling: SamplingConfig) -> dict[str, Any]:
    import torch
    import yaml

    from training.eval.perplexity import _read_manifest, resolve_checkpoint
    from training.eval.sampling import sample
    from training.loop.checkpoint import load_checkpoint
    from training.loop.config import parse_pretrain_config
    from training.loop.launch import RESOLVED
    from training.loop.optim import build_optimizer
    from training.loop.parallel import ensure_process_group, init_parallel, shutdown_parallel
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt
    from training.tokenizer import load_tokenizer

    run_dir, ckpt = resolve_checkpoint(path)
    with open(os.path.join(run_dir, RESOLVED), encoding="utf-8") as f:
        cfg = parse_pretrain_config(yaml.safe_load(f)["config"])
    tok = load_tokenizer(tokenizer_dir)
    manifest = _read_manifest(cfg.data.export_dir)
    if tok.sha256 != manifest["tokenizer"]["tokenizer_sha256"]:
        raise ValueError(f"{tokenizer_dir} is tokenizer {tok.sha256[:12]}, the run was trained on "
                         f"{manifest['tokenizer']['tokenizer_sha256'][:12]}. Fix: --tokenizer the run's tokenizer folder")
    created = not torch.distributed.is_initialized()
    ensure_process_group("gloo")
    init_parallel(tensor=1, pipeline=1, seed=cfg.schedule.seed, on_gpu=False)
    try:
        model = build_gpt(cfg.model, vocab_size=padded_vocab_size(cfg.model.vocab_size or tok.vocab_size))
        meta = load_checkpoint(ckpt, model, build_optimizer(model, cfg.optimizer, on_gpu=False))
        encoded = [e.ids for e in tok.tokenizer.encode_batch(prompts, add_special_tokens=False)]
        outputs = sample(model, encoded, sampling, eod_id=tok.eod_id, vocab_size=tok.vocab_size)
    finally:
        shutdown_parallel()
        if created:
            torch.distributed.destroy_process_group()
    return {"checkpoint": ckpt, "step": meta["step"], "sampling": {
                "max_tokens": sampling.max_tokens, "temperature": sampling.temperature, "top_k": sampling.top_k,
                "top_p": sampling.top_p, "seed": sampling.seed},
            "generations": [{"prompt": p, "completion": tok.tokenizer.decode(ids), "tokens": len(ids)}
                            for p, ids in zip(prompts, outputs)]}
