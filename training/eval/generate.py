"""Sampled continuations of prompts from a pretraining checkpoint, in this process (TP = PP = 1)."""

from __future__ import annotations

import json
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
    from training.eval.loaded import loaded_checkpoint, read_manifest, read_run_config, resolve_checkpoint
    from training.eval.sampling import sample
    from training.tokenizer import load_tokenizer

    run_dir, _ = resolve_checkpoint(path)
    tok = load_tokenizer(tokenizer_dir)
    trained_on = read_manifest(read_run_config(run_dir).data.export_dir)["tokenizer"]["tokenizer_sha256"]
    if tok.sha256 != trained_on:
        raise ValueError(f"{tokenizer_dir} is tokenizer {tok.sha256[:12]}, the run was trained on "
                         f"{trained_on[:12]}. Fix: --tokenizer the run's tokenizer folder")
    with loaded_checkpoint(path, vocab_size=tok.vocab_size) as loaded:
        encoded = [e.ids for e in tok.tokenizer.encode_batch(prompts, add_special_tokens=False)]
        outputs = sample(loaded.model, encoded, sampling, eod_id=tok.eod_id, vocab_size=tok.vocab_size)
    return {"checkpoint": loaded.checkpoint, "step": loaded.step, "sampling": {
                "max_tokens": sampling.max_tokens, "temperature": sampling.temperature, "top_k": sampling.top_k,
                "top_p": sampling.top_p, "seed": sampling.seed},
            "generations": [{"prompt": p, "completion": tok.tokenizer.decode(ids), "tokens": len(ids)}
                            for p, ids in zip(prompts, outputs)]}
