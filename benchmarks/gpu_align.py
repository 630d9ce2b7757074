"""Alignment throughput on one GPU: SFT and reward-model phases on a ~125M-parameter GPT (12 layers, hidden
768, 12 heads, sequence 1024, vocab 32,000, SwiGLU, RoPE) in bf16, through `training.align.sft.run_sft` and
`training.align.reward.run_rm` (the PPO phase is to be added by the PPO work).

    .venv/bin/python benchmarks/gpu_align.py --tiny              # CPU check: 2 layers, hidden 64, seq 384
    python3 benchmarks/gpu_align.py [--steps 60] [--sft-micro 8] [--rm-micro 4]
    benchmarks/gpu_align.sh                                      # on the GPU machine (installs carried wheels)

Data: the committed real fixtures (tests/training/fixtures/align: 40 SFT rows, 32 preference rows with
K = 4..9 answers, from the evals wheel), repeated epoch after epoch; throughput does not need more rows.
The tokenizer is a byte-level BPE trained here on those texts; the model's vocabulary is --vocab rows
regardless (ids above the tokenizer's are never drawn, the matrices have the benchmark's shape). The
source GPT is drawn at its seeded initial weights and saved as a pretraining run folder.

Measured per step (metrics.jsonl `seconds`: batch, copies, forward, backward, clip, AdamW, synchronized):
SFT packed rows/s and tokens/s (positions of the packed rows, and the response tokens the loss covers);
RM prompts/s (each with its K answers), answer sequences/s and real tokens/s. Medians over the steps
after --warmup; the held-out evaluations (step 0) and checkpoints are outside the step clocks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "training", "fixtures", "align")


def write_source(work: str, args, *, on_gpu: bool) -> tuple[str, str]:
    """(a pretraining run folder holding the seeded initial GPT, its tokenizer folder)."""
    import torch
    import yaml

    from training.align.data import read_jsonl
    from training.loop.checkpoint import save_checkpoint
    from training.loop.config import config_to_dict, parse_pretrain_config
    from training.loop.launch import RESOLVED
    from training.loop.parallel import init_parallel, shutdown_parallel
    from training.model.gpt import build_gpt
    from training.tokenizer import Sample, TokenizerTrainConfig, save_tokenizer, train_bpe

    texts = []
    for name in ("sft.jsonl", "preferences.jsonl"):
        for _, row in read_jsonl(os.path.join(FIXTURES, name)):
            texts += [m["content"] for m in row["messages"]] + list(row.get("answers", []))
    tok_dir, export_dir, run_dir = (os.path.join(work, d) for d in ("tokenizer", "export", "source"))
    tcfg = TokenizerTrainConfig(vocab_size=min(args.vocab, 4000), sample_docs=len(texts))
    tok = save_tokenizer(train_bpe(texts, tcfg), tok_dir, cfg=tcfg,
                         sample=Sample(texts=texts, seen=len(texts), chars=sum(map(len, texts))), sources=[FIXTURES])
    os.makedirs(export_dir, exist_ok=True)
    with open(os.path.join(export_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": tok, "domains": {}}, f)  # the source check reads the tokenizer's sha256 only
    cfg = parse_pretrain_config({
        "data": {"export_dir": export_dir},
        "model": {"num_layers": args.layers, "hidden_size": args.hidden, "num_attention_heads": args.heads,
                  "seq_length": args.seq, "vocab_size": args.vocab},
        "parallel": {"device": "gpu" if on_gpu else "cpu"}, "output": {"dir": run_dir}}, where="gpu_align")
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, RESOLVED), "w", encoding="utf-8") as f:
        yaml.safe_dump({"identity": "benchmark", "config": config_to_dict(cfg)}, f)
    init_parallel(tensor=1, pipeline=1, seed=cfg.schedule.seed, on_gpu=on_gpu)
    try:
        from training.model.config import padded_vocab_size

        model = build_gpt(cfg.model, vocab_size=padded_vocab_size(args.vocab), seed=cfg.schedule.seed)
        save_checkpoint(os.path.join(run_dir, "checkpoints"), 0, model, torch.optim.AdamW(model.parameters()),
                        {"step": 0}, rank=0, barrier=lambda: None, keep=1)
    finally:
        shutdown_parallel()
    return run_dir, tok_dir


def phase_config(kind: str, source: str, tokenizer: str, out: str, args, *, on_gpu: bool) -> dict:
    micro = args.sft_micro if kind == "sft" else args.rm_micro
    d = {"init": {"checkpoint": source, "tokenizer": tokenizer},
         "data": {"train": os.path.join(FIXTURES, "sft.jsonl" if kind == "sft" else "preferences.jsonl"),
                  "valid_fraction": 0.1, "seq_length": args.seq},
         "optimizer": {"lr": 1e-4, "min_lr": 1e-5, "weight_decay": 0.0},
         # train_steps one past --steps: the run stops after --steps, before the final eval and checkpoint
         "schedule": {"train_steps": args.steps + 1, "warmup_steps": 2, "micro_batch_size": micro,
                      "global_batch_size": micro * args.accumulation, "eval_interval": args.steps + 1,
                      "save_interval": args.steps + 1, "keep_checkpoints": 1,
                      "precision": "bf16" if on_gpu else "fp32"},
         "parallel": {"device": "gpu" if on_gpu else "cpu"}, "output": {"dir": out}}
    if kind == "sft":
        d["samples"] = {"prompts": 0}
    return d


def median(records, key):
    return statistics.median(r[key] for r in records)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5, help="steps left out of the medians")
    ap.add_argument("--sft-micro", type=int, default=8, help="SFT packed rows per forward/backward")
    ap.add_argument("--rm-micro", type=int, default=4, help="RM prompts (each with K answers) per forward/backward")
    ap.add_argument("--accumulation", type=int, default=2, help="micro-batches per step")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--tiny", action="store_true", help="CPU check: 2 layers, hidden 64, seq 384, 4 steps")
    args = ap.parse_args(argv)
    if args.tiny:
        args.layers, args.hidden, args.heads, args.seq, args.vocab = 2, 64, 4, 384, 1024
        args.steps, args.warmup, args.sft_micro, args.rm_micro, args.accumulation = 4, 1, 2, 2, 2

    import torch

    from schemas.config import config_from_dict
    from training.align.config import RMConfig, SFTConfig
    from training.align.reward import run_rm
    from training.align.sft import run_sft
    from training.align.source import prepare_align_run
    from training.loop.metrics import read_metrics
    from training.loop.parallel import ensure_process_group
    from training.model.config import ModelConfig, parameter_count, padded_vocab_size

    on_gpu = not args.tiny
    if on_gpu and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny on a CPU machine", file=sys.stderr)
        return 2
    ensure_process_group("nccl" if on_gpu else "gloo")
    device = torch.cuda.get_device_name(0) if on_gpu else platform.processor() or "cpu"
    work = tempfile.mkdtemp(prefix="gpu-align-")
    figures = {"device": device, "torch": torch.__version__, "steps": args.steps, "warmup": args.warmup,
               "model": {"layers": args.layers, "hidden": args.hidden, "heads": args.heads, "seq": args.seq,
                         "vocab": args.vocab}}
    try:
        source, tokenizer = write_source(work, args, on_gpu=on_gpu)
        model_cfg = ModelConfig(num_layers=args.layers, hidden_size=args.hidden, num_attention_heads=args.heads,
                                seq_length=args.seq, vocab_size=args.vocab)
        figures["parameters"] = parameter_count(model_cfg, padded_vocab_size(args.vocab))["total"]
        print(f"device: {device}; {figures['parameters'] / 1e6:.1f}M parameters; {args.layers} layers, hidden "
              f"{args.hidden}, seq {args.seq}, vocab {args.vocab}, {'bf16' if on_gpu else 'fp32'}", flush=True)
        for kind, cls, run in (("sft", SFTConfig, run_sft), ("rm", RMConfig, run_rm)):
            out = os.path.join(work, kind)
            cfg, wargs = prepare_align_run(config_from_dict(
                cls, phase_config(kind, source, tokenizer, out, args, on_gpu=on_gpu), f"gpu_align.{kind}"), kind)
            started = time.perf_counter()
            summary = run(cfg, model_cfg=ModelConfig(**wargs["model"]), source_checkpoint=wargs["source_checkpoint"],
                          on_gpu=on_gpu, stop_after=args.steps)
            wall = time.perf_counter() - started
            records = [r for r in read_metrics(os.path.join(out, "metrics.jsonl")) if "loss" in r]
            steady = [r for r in records if r["step"] > args.warmup] or records
            step_s = median(steady, "seconds")
            phase = {"steps": len(records), "step_seconds_median": step_s, "wall_s": wall,
                     "peak_memory_gib": max((r.get("max_memory_gib", 0.0) for r in records), default=None),
                     "loss_first": records[0]["loss"], "loss_last": records[-1]["loss"], "data": summary["data"]}
            if kind == "sft":
                rows = cfg.schedule.global_batch_size
                phase.update({"samples": "packed rows", "samples_per_s": rows / step_s,
                              "examples_per_s": rows / step_s * summary["data"]["train_examples"]
                              / summary["data"]["train_rows"],
                              "tokens_per_s": rows * args.seq / step_s,
                              "response_tokens_per_s": median(steady, "tokens_per_s")})
                print(f"SFT  {rows} packed rows/step: {phase['samples_per_s']:.1f} rows/s "
                      f"({phase['examples_per_s']:.1f} examples/s), {phase['tokens_per_s']:,.0f} tokens/s "
                      f"(row positions), {phase['response_tokens_per_s']:,.0f} response tokens/s; step "
                      f"{step_s * 1000:.0f} ms; loss {phase['loss_first']:.3f} -> {phase['loss_last']:.3f}")
            else:
                prompts = cfg.schedule.global_batch_size
                answers = summary["data"]["train_answers"] / summary["data"]["train_prompts"]
                phase.update({"samples": "prompts (K answers each)", "samples_per_s": prompts / step_s,
                              "answers_per_s": prompts * answers / step_s,
                              "tokens_per_s": median(steady, "tokens_per_s")})
                print(f"RM   {prompts} prompts/step (K mean {answers:.1f}): {phase['samples_per_s']:.1f} prompts/s, "
                      f"{phase['answers_per_s']:.1f} answers/s, {phase['tokens_per_s']:,.0f} tokens/s; step "
                      f"{step_s * 1000:.0f} ms; loss {phase['loss_first']:.3f} -> {phase['loss_last']:.3f}")
            if phase["peak_memory_gib"]:
                print(f"     peak memory {phase['peak_memory_gib']:.1f} GiB")
            figures[kind] = phase
        print("FIGURES " + json.dumps(figures, sort_keys=True))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(figures, f, indent=2, sort_keys=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
