"""Pretraining throughput on one GPU: a ~350M-parameter LLaMA-style GPT (24 layers, hidden 1024, 16 heads,
sequence 2048, SwiGLU, RoPE) in bf16 through `training.pretrain.run_pretrain`, on a synthetic export.

    .venv/bin/python benchmarks/gpu_pretrain.py --tiny            # CPU check: 2 layers, hidden 64, seq 128
    python3 benchmarks/gpu_pretrain.py [--steps 200] [--micro-batch 16] [--global-batch 32]
    benchmarks/gpu_pretrain.sh                                    # on the GPU machine (installs carried wheels)
    ... --steps 6 --warmup 1 --no-final-save --profile            # kernel time per step by kind

Data: one domain ("commoncrawl") of random token ids (vocab 32000, Zipf-like unigram frequencies, so the
loss has somewhere to go: from ln(32000) = 10.37 down to the unigram entropy, printed), documents of
1,024-4,096 tokens each ending in EOD, written with megatron-core's IndexedDatasetBuilder as
training/megatron_export.py writes them, plus a manifest.json in the exporter's layout. Enough tokens for
steps x global batch x seq x 1.05 in the train split of "99,1,0".

Measured: every step's `seconds` in metrics.jsonl covers batch gathering, host-to-device copy, forward,
backward, clipping and the optimizer step, synchronized; the evaluation (once, at the end, on
--valid-samples samples) and the checkpoint (once, at the end: save_interval = train_steps) are written
after a step's clock stops, so they are outside every step time and reported apart (--no-final-save
leaves both out: train_steps is set one past --steps and the run stops after --steps). Printed: median
tokens/s and MFU over the steps after --warmup, peak memory, loss at step 1 and at the end, parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

DOMAIN = "commoncrawl"
EOD, PAD = 0, 1


def zipf_probs(vocab: int, offset: float = 10.0) -> np.ndarray:
    """p(id) proportional to 1 / (rank + offset) over the non-special ids, ranks shuffled over the vocab."""
    p = np.zeros(vocab)
    ranks = np.random.default_rng(0).permutation(vocab - 2)
    p[2:] = 1.0 / (ranks + offset)
    return p / p.sum()


def write_export(out: str, *, vocab: int, tokens: int, doc_min: int, doc_max: int, min_docs: int = 300,
                 seed: int = 0) -> dict:
    """A synthetic one-domain Megatron export (`<domain>_text_document.{bin,idx}` + manifest.json)."""
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDataset, IndexedDatasetBuilder

    rng = np.random.default_rng(seed)
    dtype = DType.optimal_dtype(vocab)
    probs = zipf_probs(vocab)
    prefix = os.path.join(out, f"{DOMAIN}_text_document")
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=dtype)
    written = docs = 0
    while written < tokens or docs < min_docs:  # min_docs: the 1% valid split holds whole documents
        n = int(rng.integers(doc_min, doc_max + 1))
        ids = rng.choice(vocab, size=n, p=probs).astype(dtype)
        ids[-1] = EOD  # each document ends in exactly one EOD, as the exporter writes it
        ids[:-1][ids[:-1] == EOD] = 2
        builder.add_item(torch.from_numpy(ids))
        builder.end_document()
        written += n
        docs += 1
    builder.finalize(prefix + ".idx")
    ds = IndexedDataset(prefix)
    counts = {"documents": len(ds.document_indices) - 1, "tokens": int(np.sum(ds.sequence_lengths, dtype=np.int64))}
    assert counts == {"documents": docs, "tokens": written}, counts
    manifest = {
        "tokenizer": {"vocab_size": vocab, "tokenizer_sha256": "synthetic-zipf-ids",
                      "special_tokens": {"eod": {"token": "<|endoftext|>", "id": EOD},
                                         "pad": {"token": "<|pad|>", "id": PAD}}},
        "domains": {DOMAIN: {"prefix": f"{DOMAIN}_text_document", **counts}},
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def start_profiler(on_gpu: bool):
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CUDA if on_gpu else ProfilerActivity.CPU])
    prof.start()
    return prof


KERNEL_KINDS = (("attention", ("flash", "fmha", "attention", "sdpa")),
                ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "cublas", "matmul", "aten::mm", "aten::addmm")))


def kernel_table(prof, *, on_gpu: bool, steps: int, step_s: float, top: int = 20) -> dict:
    """Kernel time per step by kind, the busy share of the median step, and the top kernels (printed too)."""
    rows = []
    for evt in prof.key_averages():
        t = (getattr(evt, "device_time_total", None) or getattr(evt, "cuda_time_total", 0)) if on_gpu \
            else evt.self_cpu_time_total
        if t > 0:
            rows.append((t / 1e6 / steps, evt.count / steps, evt.key))
    rows.sort(reverse=True)
    by_kind: dict[str, float] = {}
    for t, _, name in rows:
        low = name.lower()
        kind = next((k for k, words in KERNEL_KINDS if any(w in low for w in words)), "other")
        by_kind[kind] = by_kind.get(kind, 0.0) + t
    total = sum(by_kind.values())
    print(f"\n== profile: {'kernel' if on_gpu else 'CPU op'} time per step (averaged over {steps} steps) ==")
    print(f"total {total * 1000:.0f} ms = {total / step_s * 100:.0f}% of the median step ({step_s * 1000:.0f} ms); "
          + ", ".join(f"{k} {v * 1000:.0f} ms ({v / total * 100:.0f}%)" for k, v in sorted(by_kind.items())))
    for t, n, name in rows[:top]:
        print(f"{t * 1000:8.2f} ms {n:7.1f}x  {name[:110]}")
    return {"per_step_s": total, "by_kind_s": by_kind,
            "top": [{"s": t, "calls": n, "name": name[:200]} for t, n, name in rows[:top]]}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unigram_entropy(vocab: int) -> float:
    p = zipf_probs(vocab)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--micro-batch", type=int, default=16, help="samples per forward/backward")
    ap.add_argument("--global-batch", type=int, default=32, help="samples per optimizer step")
    ap.add_argument("--warmup", type=int, default=10, help="steps left out of the medians")
    ap.add_argument("--valid-samples", type=int, default=16)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--ffn", type=int, default=None, help="MLP width (default: the model config's SwiGLU rule)")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--workdir", default=None, help="export + run folder (default: a temporary folder, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--no-final-save", action="store_true",
                    help="skip the final evaluation and checkpoint (train_steps = steps + 1, stopped after steps)")
    ap.add_argument("--profile", action="store_true",
                    help="torch.profiler over the whole run: kernel time per step by kind (matmul, attention, "
                         "other) and the top kernels; use with few --steps")
    ap.add_argument("--tiny", action="store_true", help="CPU check: 2 layers, hidden 64, seq 128, 6 steps")
    args = ap.parse_args(argv)
    if args.tiny:
        args.layers, args.hidden, args.heads, args.seq, args.vocab = 2, 64, 4, 128, 1000
        args.steps, args.micro_batch, args.global_batch, args.warmup, args.valid_samples = 6, 2, 4, 2, 4

    import torch

    from training.loop.config import parse_pretrain_config
    from training.loop.metrics import read_metrics
    from training.loop.parallel import ensure_process_group
    from training.pretrain import run_pretrain

    on_gpu = not args.tiny
    if on_gpu and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny on a CPU machine", file=sys.stderr)
        return 2
    work = args.workdir or tempfile.mkdtemp(prefix="gpu-pretrain-")
    export_dir, run_dir = os.path.join(work, "export"), os.path.join(work, "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(export_dir, exist_ok=True)
    try:
        t0 = time.perf_counter()
        need = args.steps * args.global_batch * args.seq * 1.05 / 0.99  # train split is 99% of documents
        manifest = write_export(export_dir, vocab=args.vocab, tokens=int(need), doc_min=min(2048, args.seq // 2),
                                doc_max=min(4096, 2 * args.seq))
        d = manifest["domains"][DOMAIN]
        print(f"export: {d['documents']} documents, {d['tokens']:,} tokens in {time.perf_counter() - t0:.1f}s "
              f"({export_dir})", flush=True)

        cfg_steps = args.steps + (1 if args.no_final_save else 0)
        cfg = parse_pretrain_config({
            "data": {"export_dir": export_dir, "split": "99,1,0", "valid_samples_per_domain": args.valid_samples},
            "model": {"num_layers": args.layers, "hidden_size": args.hidden, "num_attention_heads": args.heads,
                      "seq_length": args.seq, "activation": "swiglu", "position": "rope", "norm": "rmsnorm",
                      "ffn_hidden_size": args.ffn},
            "optimizer": {"lr": 3e-4, "min_lr": 3e-5},
            "schedule": {"train_steps": cfg_steps, "warmup_steps": max(1, min(20, args.steps // 10)),
                         "micro_batch_size": args.micro_batch, "global_batch_size": args.global_batch,
                         "eval_interval": cfg_steps, "save_interval": cfg_steps, "keep_checkpoints": 1,
                         "precision": "bf16" if on_gpu else "fp32"},
            "parallel": {"device": "gpu" if on_gpu else "cpu"},
            "output": {"dir": run_dir},
        }, where="gpu_pretrain")
        # NCCL alone, as Ray Train's TorchConfig(backend="nccl") sets it up: the step reduces device tensors only.
        ensure_process_group("nccl" if on_gpu else "gloo")
        device_name = torch.cuda.get_device_name(0) if on_gpu else platform.processor() or "cpu"
        print(f"device: {device_name}; torch {torch.__version__}; python {platform.python_version()}", flush=True)
        print(f"config: {args.layers} layers, hidden {args.hidden}, ffn {cfg.model.ffn_size}, {args.heads} heads, "
              f"seq {args.seq}, vocab "
              f"{args.vocab}, swiglu, rope, rmsnorm, {cfg.schedule.precision}; micro batch {args.micro_batch}, "
              f"global batch {args.global_batch} ({cfg.accumulation_steps} micro-batches/step, "
              f"{args.global_batch * args.seq:,} tokens/step), {args.steps} steps", flush=True)

        started = time.perf_counter()
        error = None
        summary = None
        profiler = start_profiler(on_gpu) if args.profile else None
        try:
            summary = run_pretrain(cfg, weights={DOMAIN: 1.0}, on_gpu=on_gpu, stop_after=args.steps)
        except Exception as exc:  # still report the steps that ran
            error = exc
            traceback.print_exc()
        finally:
            if profiler:
                profiler.stop()
        wall = time.perf_counter() - started

        records = [r for r in read_metrics(os.path.join(run_dir, "metrics.jsonl")) if "loss" in r]
        if not records:
            print("no step was logged", file=sys.stderr)
            return 1
        steady = [r for r in records if r["step"] > args.warmup] or records
        tps = statistics.median(r["tokens_per_s"] for r in steady)
        step_s = statistics.median(r["seconds"] for r in steady)
        mfu = statistics.median(r["mfu"] for r in steady) if all("mfu" in r for r in steady) else None
        mem = max((r.get("max_memory_gib", 0.0) for r in records), default=0.0)
        steps_time = sum(r["seconds"] for r in records)
        ckpt = os.path.join(run_dir, "checkpoints")
        ckpt_bytes = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(ckpt) for f in fs)
        valid = next((r["valid_loss"] for r in reversed(records) if "valid_loss" in r), None)
        figures = {
            "device": device_name, "torch": torch.__version__,
            "model": {"layers": args.layers, "hidden": args.hidden, "heads": args.heads, "seq": args.seq,
                      "vocab": args.vocab, "ffn": cfg.model.ffn_size},
            "micro_batch": args.micro_batch, "global_batch": args.global_batch,
            "steps": len(records), "warmup_steps_excluded": args.warmup,
            "parameters": summary["parameters"] if summary else None,
            "flops_per_token": summary["flops_per_token"] if summary else None,
            "tokens_per_s_median": tps, "step_seconds_median": step_s, "mfu_median": mfu,
            "tokens_per_s_mean_steady": sum(r["tokens"] for r in steady) / sum(r["seconds"] for r in steady),
            "first_step_seconds": records[0]["seconds"],
            "peak_memory_gib": mem, "loss_first": records[0]["loss"], "loss_last": records[-1]["loss"],
            "valid_loss": valid, "unigram_entropy": unigram_entropy(args.vocab),
            "run_pretrain_wall_s": wall, "outside_steps_s": wall - steps_time,
            "checkpoint_gib": ckpt_bytes / 2**30, "error": repr(error) if error else None,
        }
        p = figures["parameters"] or {}
        print("\n== figures ==")
        print(f"device             {device_name} (torch {torch.__version__})")
        if p:
            print(f"parameters         {p['total'] / 1e6:.1f}M total, {p['non_embedding'] / 1e6:.1f}M non-embedding; "
                  f"{figures['flops_per_token'] / 1e9:.2f} GFLOP/token (train)")
        print(f"steps              {len(records)} ({args.warmup} warm-up steps left out of the medians)")
        print(f"tokens/s           {tps:,.0f} (median), {figures['tokens_per_s_mean_steady']:,.0f} (steady mean)")
        print(f"step time          {step_s * 1000:.0f} ms (median); first step {records[0]['seconds']:.1f}s")
        print(f"MFU                {mfu * 100:.1f}% (median, bf16 dense peak)" if mfu is not None else
              "MFU                n/a (CPU)")
        print(f"peak memory        {mem:.1f} GiB (torch.cuda.max_memory_allocated)" if on_gpu else
              "peak memory        n/a (CPU)")
        print(f"loss               {records[0]['loss']:.3f} at step 1 -> {records[-1]['loss']:.3f} at step "
              f"{records[-1]['step']} (ln vocab {math.log(args.vocab):.2f}, unigram entropy "
              f"{figures['unigram_entropy']:.2f})")
        if valid:
            print(f"valid loss         {valid.get('all', float('nan')):.3f}")
        full = f", parameters + AdamW moments = {12 * p['total'] / 2**30:.2f} GiB" if p else ""
        print(f"outside steps      {figures['outside_steps_s']:.1f}s (setup, data index, eval, final checkpoint of "
              f"{figures['checkpoint_gib']:.2f} GiB{full})")
        if profiler:
            figures["profile"] = kernel_table(profiler, on_gpu=on_gpu, steps=len(records), step_s=step_s)
        print("FIGURES " + json.dumps(figures, sort_keys=True))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(figures, f, indent=2, sort_keys=True)
        return 1 if error else 0
    finally:
        if not (args.keep or args.workdir):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
