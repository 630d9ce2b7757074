"""Megatron export throughput: refinery's `export megatron` (Ray actors, megatron-core's
IndexedDatasetBuilder, then the per-domain merge and the manifest) vs datatrove's
ParquetReader + MegatronDocumentTokenizer on LocalPipelineExecutor, on the same Parquet files with the
same tokenizer, in one run. Both append one EOD per document; the token totals must agree.

Documents: English, Spanish and French Wikipedia lead sections (sample `wiki-summaries`, fetched by
`refinery samples fetch --only wiki-summaries`) plus the demo corpus' Shakespeare scenes, repeated
`--repeat` times, split over `--parts` Parquet files in the layout of a refinery run
(`domain=wikipedia/`, `domain=books/`). The tokenizer (byte-level BPE, `--vocab-size`) is trained on
a sample of the same run. Reported: end-to-end wall time and tokens/s (start-up included for both:
Ray's local cluster and its actors for refinery, the process pool for datatrove; both systems' modules
are imported and the input files read once before either clock starts), and the single-file
in-process core of each (no executor; tokenizers loaded and one untimed run of each first).

    .venv/bin/python benchmarks/bench_export.py [--repeat 3] [--parts 4] [--workers 2] [--vocab-size 32000]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_texts() -> dict[str, list[str]]:
    from corpus.samples import sample_path

    wiki = []
    for lang in ("en-us", "es-es", "fr-fr"):
        with open(os.path.join(sample_path("wiki-summaries"), "data", f"summaries_{lang}.json"), encoding="utf-8") as f:
            wiki += [v["extract"] for _, v in sorted(json.load(f).items()) if v.get("extract")]
    books = []
    for path in sorted(glob.glob(os.path.join(REPO, "jobs", "demo_corpus", "shakespeare-0[02].jsonl"))):
        with open(path, encoding="utf-8") as f:
            books += [json.loads(line)["text"] for line in f if line.strip()]
    return {"wikipedia": wiki, "books": books}


def write_run(root: str, texts: dict[str, list[str]], repeat: int, parts: int) -> tuple[str, str]:
    run = os.path.join(root, "run")
    data = os.path.join(run, "00-bench", "data")
    for domain, docs in texts.items():
        docs = docs * repeat
        folder = os.path.join(data, f"domain={domain}")
        os.makedirs(folder)
        n = max(1, parts // len(texts))
        for p in range(n):
            chunk = docs[p::n]
            pq.write_table(pa.table({"id": [f"{domain}-{p}-{i}" for i in range(len(chunk))], "text": chunk}),
                           os.path.join(folder, f"part-{p:05d}.parquet"))
    with open(os.path.join(run, "stats.json"), "w") as f:
        json.dump({"job": "bench", "exit_code": 0, "final_data": "00-bench/data", "phases": []}, f)  # relative to the run
    return run, data


def train_tokenizer(run: str, folder: str, vocab_size: int) -> None:
    from jobs.cli import main

    assert main(["tokenizer", "train", "--run", run, "--vocab-size", str(vocab_size), "--sample-docs", "20000",
                 "--out", folder]) == 0


def run_refinery(run: str, tok: str, out: str, workers: int) -> tuple[float, int]:
    import ray

    from jobs.export_megatron import export_megatron

    # Starting Ray is part of refinery's end-to-end cost, as starting its process pool is of datatrove's.
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        manifest = export_megatron(run, tok, out=out, workers=workers, progress=False)
        return time.perf_counter() - t0, manifest["total_tokens"]
    finally:
        ray.shutdown()


def warm_up(data: str) -> None:
    """What neither system should be charged for: importing modules in this process and reading the
    input files from disk the first time (the system that ran second would find them cached)."""
    import datatrove.pipeline.tokens.megatron_tokenizer  # noqa: F401
    import jobs.export_megatron  # noqa: F401

    for path in glob.glob(os.path.join(data, "*", "*.parquet")):
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass


def run_datatrove(data: str, tok: str, out: str, workers: int) -> tuple[float, int]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.tokens.megatron_tokenizer import MegatronDocumentTokenizer

    from training.megatron_export import read_counts  # keeps the dataset (and its mmap) alive while summing

    files = sorted(glob.glob(os.path.join(data, "*", "*.parquet")))
    t0 = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[ParquetReader(data, glob_pattern="*/*.parquet", text_key="text", id_key="id"),
                  MegatronDocumentTokenizer(out, tokenizer_name_or_path=os.path.join(tok, "tokenizer.json"),
                                            eos_token="<|endoftext|>")],
        tasks=len(files), workers=workers, logging_dir=os.path.join(out, "logs"), skip_completed=False).run()
    seconds = time.perf_counter() - t0
    tokens = sum(read_counts(p[:-4])["tokens"] for p in glob.glob(os.path.join(out, "*.idx")))
    return seconds, tokens


def core_single_file(path: str, tok_dir: str, out: str, rounds: int = 3) -> dict[str, float]:
    """Both tokenize-and-write loops on one file, in this process, tokenizer already loaded; the best of
    `rounds` alternating runs each (the machine is shared, so single timings are noisy)."""
    from datatrove.data import Document
    from datatrove.pipeline.tokens.megatron_tokenizer import MegatronDocumentTokenizer

    from training.megatron_export import export_part
    from training.tokenizer import load_tokenizer

    tok = load_tokenizer(tok_dir)
    step = MegatronDocumentTokenizer(os.path.join(out, "dt"), tokenizer_name_or_path=os.path.join(tok_dir, "tokenizer.json"),
                                     eos_token="<|endoftext|>")
    _ = step.tokenizer  # load outside the timing, as ours is
    ours, theirs = [], []
    for r in range(-1, rounds):  # round -1 warms both up, untimed
        t0 = time.perf_counter()
        counts = export_part(path, tok.tokenizer, tok.eod_id, tok.vocab_size, os.path.join(out, f"ours{r}"))
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()  # the Parquet read is inside the timing, as it is in export_part
        table = pq.read_table(path, columns=["id", "text"])
        docs = (Document(text=t, id=i) for t, i in zip(table.column("text").to_pylist(), table.column("id").to_pylist()))
        step.write_tokens(docs, f"core{r}")
        theirs_s = time.perf_counter() - t0
        if r >= 0:
            ours.append(ours_s)
            theirs.append(theirs_s)
    return {"tokens": counts["tokens"], "refinery_s": min(ours), "datatrove_s": min(theirs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vocab-size", type=int, default=32000)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench_export_")
    try:
        run, data = write_run(root, load_texts(), args.repeat, args.parts)
        mb = sum(os.path.getsize(p) for p in glob.glob(os.path.join(data, "*", "*.parquet"))) / 2**20
        tok = os.path.join(root, "tok")
        train_tokenizer(run, tok, args.vocab_size)
        warm_up(data)
        r_s, r_tokens = run_refinery(run, tok, os.path.join(root, "refinery"), args.workers)
        d_s, d_tokens = run_datatrove(data, tok, os.path.join(root, "datatrove"), args.workers)
        first = sorted(glob.glob(os.path.join(data, "domain=wikipedia", "*.parquet")))[0]
        core = core_single_file(first, tok, os.path.join(root, "core"))
        print(f"input: {mb:.1f} MiB Parquet in {len(glob.glob(os.path.join(data, '*', '*.parquet')))} files; "
              f"vocab {args.vocab_size}; workers {args.workers}")
        print(f"tokens: refinery {r_tokens:,}  datatrove {d_tokens:,}  ({'equal' if r_tokens == d_tokens else 'DIFFER'})")
        print(f"end to end   refinery {r_tokens / r_s:>12,.0f} tokens/s ({r_s:.1f} s, merge + manifest included)   "
              f"datatrove {d_tokens / d_s:>12,.0f} tokens/s ({d_s:.1f} s)   ratio {d_s / r_s:.2f}x")
        print(f"single file (best of 3)  refinery {core['tokens'] / core['refinery_s']:>12,.0f} tokens/s   "
              f"datatrove {core['tokens'] / core['datatrove_s']:>12,.0f} tokens/s   "
              f"ratio {core['datatrove_s'] / core['refinery_s']:.2f}x")
        print("(ratio = datatrove time / refinery time: above 1 means refinery is faster)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
