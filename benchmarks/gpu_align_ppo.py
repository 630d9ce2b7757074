"""The PPO phase of the alignment benchmark: a few PPO iterations of a ~125M GPT (12 layers, hidden 768, 12
heads, sequence 512; GPT-2 small's shape, LLaMA-style blocks) in bf16 on one GPU through
`training.align.ppo.run_ppo`, reporting samples/s and tokens/s.

    .venv/bin/python benchmarks/gpu_align_ppo.py --tiny           # CPU check: 2 layers, hidden 64
    python3 benchmarks/gpu_align_ppo.py [--iterations 4] [--rollout 32] [--new-tokens 64]
    benchmarks/gpu_align.sh --phase ppo                            # on the GPU machine

Inputs, all made here so that nothing but the working tree is needed: a byte-level BPE tokenizer trained
on the demo corpus (jobs/demo_corpus); an "SFT" run folder holding the GPT at its seeded initial weights
and an "RM" run folder holding the scalar-head model (training/model/heads.py) at its own, in the layout
PPO reads (config.resolved.yaml with the model section + checkpoints/); prompts cut from the demo corpus
(through the chat template); a synthetic one-domain pretraining export (random ids) for the PPO-ptx
batches, gamma_ptx = 27.8 (InstructGPT), so every part of an iteration runs. The weights are untrained:
the benchmark measures speed, not learning (the tests measure learning).

An iteration's `seconds` (metrics.jsonl) covers the rollout (sampling without a key/value cache: one
sequence at a time, the whole sequence re-run per new token), the scoring forwards (policy, reference,
value, reward model), the PPO epochs with the ptx batches and both optimizer steps, synchronized;
evaluation and checkpoints run after the clock stops. Printed: medians over the iterations after the
first of samples/s (rollout prompts per iteration second), tokens/s (response tokens per iteration
second), rollout tokens/s (response tokens per rollout second) and the rollout's share of the time;
peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOMAIN = "commoncrawl"


def demo_texts() -> list[str]:
    import gzip

    texts = []
    folder = os.path.join(REPO, "jobs", "demo_corpus")
    for name in sorted(os.listdir(folder)):
        if not name.startswith("shakespeare"):
            continue
        opener = gzip.open if name.endswith(".gz") else open
        with opener(os.path.join(folder, name), "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts


def make_tokenizer(out: str, texts: list[str], vocab: int) -> None:
    from training.tokenizer import Sample, TokenizerTrainConfig, save_tokenizer, train_bpe

    cfg = TokenizerTrainConfig(vocab_size=vocab, sample_docs=len(texts))
    sample = Sample(texts=texts, seen=len(texts), chars=sum(len(t) for t in texts))
    save_tokenizer(train_bpe(texts, cfg), out, cfg=cfg, sample=sample, sources=["jobs/demo_corpus"])


def write_export(out: str, tok, *, tokens: int, seed: int = 0) -> None:
    """A one-domain export of random ids in the exporter's layout, tagged with `tok` (PPO checks the sha)."""
    import numpy as np
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDataset, IndexedDatasetBuilder

    rng = np.random.default_rng(seed)
    dtype = DType.optimal_dtype(tok.vocab_size)
    prefix = os.path.join(out, f"{DOMAIN}_text_document")
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=dtype)
    written = docs = 0
    while written < tokens or docs < 200:
        n = int(rng.integers(256, 1024))
        ids = rng.integers(0, tok.vocab_size, size=n).astype(dtype)
        ids[ids == tok.eod_id] = tok.eod_id + 1
        ids[-1] = tok.eod_id
        builder.add_item(torch.from_numpy(ids))
        builder.end_document()
        written, docs = written + n, docs + 1
    builder.finalize(prefix + ".idx")
    ds = IndexedDataset(prefix)
    manifest = {"tokenizer": tok.config, "domains": {DOMAIN: {
        "prefix": f"{DOMAIN}_text_document", "documents": len(ds.document_indices) - 1,
        "tokens": int(np.sum(ds.sequence_lengths, dtype=np.int64))}}}
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)


def make_runs(root: str, model: dict, *, vocab_size: int, on_gpu: bool, seed: int) -> tuple[str, str]:
    """(SFT run, RM run): the GPT and the scalar-head model at their seeded initial weights."""
    import torch
    import yaml

    from schemas.config import config_from_dict
    from training.loop.checkpoint import save_checkpoint
    from training.loop.config import config_to_dict
    from training.loop.parallel import init_parallel, shutdown_parallel
    from training.model.config import ModelConfig, padded_vocab_size
    from training.model.gpt import build_gpt
    from training.model.heads import ScalarHeadGPT

    cfg = config_from_dict(ModelConfig, model, "model")
    vocab = padded_vocab_size(vocab_size)
    init_parallel(tensor=1, pipeline=1, seed=seed, on_gpu=on_gpu)
    runs = []
    try:
        for kind, build in (("sft", lambda: build_gpt(cfg, vocab_size=vocab, seed=seed)),
                            ("rm", lambda: ScalarHeadGPT(cfg, vocab_size=vocab, seed=seed + 1))):
            run = os.path.join(root, kind)
            os.makedirs(run)
            with open(os.path.join(run, "config.resolved.yaml"), "w", encoding="utf-8") as f:
                yaml.safe_dump({"kind": kind, "model": config_to_dict(cfg)}, f)
            m = build()
            save_checkpoint(os.path.join(run, "checkpoints"), 0, m, torch.optim.AdamW(m.parameters()), {},
                            rank=0, barrier=lambda: None, keep=1)
            runs.append(run)
            del m
    finally:
        shutdown_parallel()
    return runs[0], runs[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="CPU check: 2 layers, hidden 64, short responses")
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--rollout", type=int, default=32, help="prompts per iteration")
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64, help="response tokens per prompt")
    ap.add_argument("--vocab", type=int, default=8000, help="BPE vocabulary trained on the demo corpus")
    ap.add_argument("--ptx-coef", type=float, default=27.8)
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--keep", default=None, help="keep the work folder here (default: a temporary folder)")
    args = ap.parse_args(argv)
    import logging

    import torch

    from training.align.ppo import absolute_paths, prepare_ppo_run, run_ppo
    from training.align.ppo_config import parse_ppo_config
    from training.loop.metrics import read_metrics
    from training.loop.parallel import ensure_process_group
    from training.model.config import ModelConfig, padded_vocab_size, parameter_count
    from training.tokenizer import load_tokenizer

    logging.getLogger("megatron").setLevel(logging.WARNING)
    on_gpu = torch.cuda.is_available() and not args.tiny
    if args.tiny:
        model = {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "seq_length": 128}
        args.iterations, args.rollout, args.micro_batch, args.new_tokens = min(args.iterations, 3), 8, 8, 16
        args.vocab = min(args.vocab, 2000)
    else:
        model = {"num_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "seq_length": 512}
    root = args.keep or tempfile.mkdtemp(prefix="gpu_align_ppo-")
    os.makedirs(root, exist_ok=True)
    try:
        started = time.perf_counter()
        texts = demo_texts()
        tok_dir = os.path.join(root, "tokenizer")
        make_tokenizer(tok_dir, texts, args.vocab)
        tok = load_tokenizer(tok_dir)
        export = os.path.join(root, "export")
        os.makedirs(export)
        ptx_batch = args.micro_batch
        write_export(export, tok, tokens=args.iterations * 4 * ptx_batch * model["seq_length"] * 2)
        prompts = os.path.join(root, "prompts.jsonl")
        with open(prompts, "w", encoding="utf-8") as f:
            lines = [ln.strip() for t in texts for ln in t.split("\n") if len(ln.split()) >= 6]
            for ln in lines[:1000]:
                f.write(json.dumps({"prompt": ln}) + "\n")
        ensure_process_group("nccl" if on_gpu else "gloo")
        sft, rm = make_runs(root, model, vocab_size=tok.vocab_size, on_gpu=on_gpu, seed=1234)
        setup_s = time.perf_counter() - started
        cfg = absolute_paths(parse_ppo_config({
            "policy": {"sft": sft, "tokenizer": tok_dir}, "reward": {"kind": "model", "model": rm},
            "data": {"prompts": prompts, "max_prompt_tokens": 64, "ptx_export_dir": export, "ptx_split": "90,10,0",
                     "ptx_batch_size": ptx_batch, "valid_samples_per_domain": 4, "share_tolerance": 0.5},
            "sampling": {"max_new_tokens": args.new_tokens},
            "ppo": {"iterations": args.iterations, "rollout_batch_size": args.rollout, "epochs": 2, "minibatches": 2,
                    "micro_batch_size": args.micro_batch, "ptx_coef": args.ptx_coef},
            "optimizer": {"lr": 1e-5, "value_lr": 1e-5},
            "run": {"eval_interval": 10**6, "save_interval": 10**6},
            "parallel": {"device": "gpu" if on_gpu else "cpu"}, "output": {"dir": os.path.join(root, "ppo")}}))
        weights = prepare_ppo_run(cfg)
        run_ppo(cfg, mixture=weights, on_gpu=on_gpu)
        records = [r for r in read_metrics(os.path.join(root, "ppo", "metrics.jsonl")) if r.get("step", 0) > 0]
        timed = records[1:] or records  # the first iteration pays for allocator warm-up and kernel selection
        med = {k: statistics.median(r[k] for r in timed) for k in
               ("samples_per_s", "tokens_per_s", "rollout_tokens_per_s", "seconds", "rollout_seconds",
                "response_length")}
        params = parameter_count(ModelConfig(**model), padded_vocab_size(tok.vocab_size))["total"]
        figures = {"device": torch.cuda.get_device_name(0) if on_gpu else "cpu", "model": model,
                   "parameters": params, "vocab": tok.vocab_size, "iterations": len(records),
                   "rollout_batch": args.rollout, "max_new_tokens": args.new_tokens, "ptx_coef": args.ptx_coef,
                   "precision": "bf16" if on_gpu else "fp32", "setup_seconds": setup_s,
                   "median": med, "rollout_share": med["rollout_seconds"] / med["seconds"],
                   "reward_first_last": [records[0]["reward"], records[-1]["reward"]],
                   "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None}
        print(f"PPO phase: {params / 1e6:.1f}M parameters, {figures['precision']}, {len(records)} iterations of "
              f"{args.rollout} prompts x <= {args.new_tokens} new tokens (ptx {args.ptx_coef})")
        print(f"  median over iterations 2-{len(records)}: {med['samples_per_s']:.2f} samples/s, "
              f"{med['tokens_per_s']:.1f} response tokens/s ({med['rollout_tokens_per_s']:.1f} during the rollout), "
              f"{med['seconds']:.2f} s per iteration, rollout {figures['rollout_share'] * 100:.0f}% of it")
        if on_gpu:
            print(f"  peak memory {figures['max_memory_gib']:.1f} GiB")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(figures, f, indent=2)
        return 0
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
