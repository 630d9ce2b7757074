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

import math
import os
import shutil
from typing import Any


def evaluate_checkpoint(path: str, *, export_dir: str | None = None, seq_length: int | None = None,
                        samples: int | None = None, split: str | None = None,
                        micro_batch_size: int = 4) -> dict[str, Any]:
    """`split`: how to cut the export's documents into train/valid/test (default: the run's data.split); runs
    trained with different splits are compared on the same held-out documents by giving the same one."""
    from training.data.blend import collate, open_valid_sets
    from training.eval.loaded import loaded_checkpoint, read_manifest, read_run_config, resolve_checkpoint
    from training.loop.step import evaluate_sums

    run_dir, _ = resolve_checkpoint(path)
    cfg = read_run_config(run_dir)
    export_dir = os.path.abspath(export_dir or cfg.data.export_dir)
    manifest = read_manifest(export_dir)
    if os.path.exists(os.path.join(cfg.data.export_dir, "manifest.json")):
        sha = read_manifest(cfg.data.export_dir)["tokenizer"]["tokenizer_sha256"]
        if manifest["tokenizer"]["tokenizer_sha256"] != sha:
            raise ValueError(f"{export_dir} was tokenized with tokenizer {manifest['tokenizer']['tokenizer_sha256'][:12]}, "
                             f"the run with {sha[:12]}: token ids would not mean the same. Fix: export with the "
                             f"run's tokenizer")
    samples = samples or cfg.data.valid_samples_per_domain
    split = split or cfg.data.split
    with loaded_checkpoint(path, vocab_size=manifest["tokenizer"]["vocab_size"], seq_length=seq_length) as loaded:
        cache = os.path.join(run_dir, f"eval-index-cache-{os.getpid()}")  # see training/data/blend.py
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(cache)
        try:
            valid = open_valid_sets(export_dir, manifest, private_dir=cache, split=split,
                                    seq_length=loaded.seq_length, seed=cfg.schedule.seed, samples=samples)
            sums, tokens = evaluate_sums(loaded.model, valid, samples=samples, micro_batch_size=micro_batch_size,
                                         collate=collate, to_device=lambda b: b, bf16=False, device="cpu")
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    domains = {d: {"loss": sums[d] / tokens[d], "perplexity": math.exp(sums[d] / tokens[d]), "tokens": int(tokens[d])}
               for d in sorted(sums)}
    overall = sum(sums.values()) / sum(tokens.values())
    return {"checkpoint": loaded.checkpoint, "step": loaded.step, "export_dir": export_dir, "split": split,
            "seq_length": loaded.seq_length, "samples_per_domain": samples, "domains": domains,
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

