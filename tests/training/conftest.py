"""A tiny corpus run in the layout of `refinery build` output (Hive-partitioned Parquet + stats.json),
made from the demo corpus (Shakespeare scenes from Project Gutenberg, public domain; see
jobs/demo_corpus/README.md). Domains are assigned by file so that a blend has several datasets; the
text is real, untouched, and includes the edge cases file (non-ASCII, control characters, emoji)."""

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "jobs", "demo_corpus")
# domain -> [(part name, demo file)]
LAYOUT = {
    "books": [("00000", "shakespeare-00.jsonl"), ("00001", "edge-cases.jsonl")],
    "wikipedia": [("00002", "shakespeare-02.jsonl")],
    "arxiv": [("00003", "shakespeare-01.jsonl.gz")],
}


def read_demo_texts(name: str) -> list[str]:
    opener = gzip.open if name.endswith(".gz") else open
    texts = []
    with opener(os.path.join(DEMO, name), "rb") as f:
        for line in f:
            try:  # the edge-cases file holds deliberately broken lines: skip them as the reader would
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                texts.append(record["text"])
    return texts


def write_run(root) -> tuple[str, dict[str, list[str]]]:
    """(run dir, domain -> texts in export order); an extra empty part file tests the zero-row path."""
    run = os.path.join(str(root), "tiny")
    data = os.path.join(run, "00-clean-abc", "data")
    texts_by_domain: dict[str, list[str]] = {}
    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    for domain, parts in LAYOUT.items():
        os.makedirs(os.path.join(data, f"domain={domain}"), exist_ok=True)
        for part, name in parts:
            texts = read_demo_texts(name)
            if part == "00001":
                texts.append("")  # an empty document still gets its EOD
            ids = [f"{name}:{i}" for i in range(len(texts))]
            pq.write_table(pa.table({"id": ids, "text": texts}, schema=schema),
                           os.path.join(data, f"domain={domain}", f"part-{part}.parquet"))
            texts_by_domain.setdefault(domain, []).extend(texts)
    pq.write_table(pa.table({"id": [], "text": []}, schema=schema),
                   os.path.join(data, "domain=wikipedia", "part-00009.parquet"))
    with open(os.path.join(run, "stats.json"), "w") as f:
        json.dump({"job": "tiny", "exit_code": 0, "final_data": "00-clean-abc/data", "phases": []}, f)  # relative to the run
    return run, texts_by_domain


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_run, tmp_path_factory):
    """A 1000-token byte-level BPE trained on the whole tiny run."""
    from corpus.io.files import expand_paths
    from corpus.io.parquet import read_batches
    from training.tokenizer import TokenizerTrainConfig, sample_documents, save_tokenizer, train_bpe

    run, _ = tiny_run
    paths = expand_paths([os.path.join(run, "00-clean-abc", "data", "*", "*.parquet")])
    cfg = TokenizerTrainConfig(vocab_size=1000, sample_docs=1000)
    sample = sample_documents((t for p in paths for t in read_batches(p, 100, columns=["id", "text"])),
                              cfg.sample_docs, cfg.seed)
    out = str(tmp_path_factory.mktemp("tok"))
    save_tokenizer(train_bpe(sample.texts, cfg), out, cfg=cfg, sample=sample, sources=paths)
    return out


@pytest.fixture(scope="session")
def tiny_layout():
    """domain -> [(part name, demo file)] of `tiny_run`."""
    return LAYOUT


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tiny_tokenizer, tiny_layout, tmp_path_factory):
    """Each part exported alone, then merged per domain; a manifest like the exporter's, written as
    manifest.json. Returns (export dir, loaded tokenizer, manifest, per-part counts)."""
    from training.megatron_export import export_part, merge_shards, read_counts
    from training.tokenizer import load_tokenizer

    run, _ = tiny_run
    tok = load_tokenizer(tiny_tokenizer)
    out = str(tmp_path_factory.mktemp("export"))
    data = os.path.join(run, "00-clean-abc", "data")
    domains, shards = {}, {}
    for domain, parts in tiny_layout.items():
        prefixes = []
        for part, _ in parts:
            prefix = os.path.join(out, "shards", domain, part)
            counts = export_part(os.path.join(data, f"domain={domain}", f"part-{part}.parquet"), tok.tokenizer,
                                 tok.eod_id, tok.vocab_size, prefix)
            shards[(domain, part)] = counts
            prefixes.append(prefix)
        merge_shards(prefixes, os.path.join(out, f"{domain}_text_document"), tok.vocab_size)
        domains[domain] = {"prefix": f"{domain}_text_document",
                           **read_counts(os.path.join(out, f"{domain}_text_document"))}
    manifest = {"tokenizer": tok.config, "domains": domains}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return out, tok, manifest, shards


@pytest.fixture(scope="module")
def megatron_cpu():
    """megatron-core's parallel state on one CPU process (gloo), torn down after the module."""
    pytest.importorskip("megatron.core")
    import torch

    from training.loop.parallel import ensure_process_group, init_parallel, shutdown_parallel

    ensure_process_group("gloo")
    init_parallel(tensor=1, pipeline=1, seed=1234, on_gpu=False)
    yield
    shutdown_parallel()
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="session")
def tiny_pretrain_run(tiny_export, tmp_path_factory):
    """(config, run folder) of three steps of a tiny GPT on the tiny export, trained once per session in
    this process (no Ray): the run folder the evaluation and report tests read."""
    import torch

    from training.loop.config import parse_pretrain_config
    from training.loop.launch import prepare_run
    from training.loop.parallel import ensure_process_group
    from training.pretrain import run_pretrain

    out = tmp_path_factory.mktemp("pretrain") / "run"
    cfg = parse_pretrain_config({
        "data": {"export_dir": tiny_export[0], "split": "80,20,0", "valid_samples_per_domain": 5},
        "model": {"seq_length": 32}, "optimizer": {"lr": 3e-3},
        "schedule": {"train_steps": 3, "warmup_steps": 1, "micro_batch_size": 4, "global_batch_size": 4},
        "parallel": {"device": "cpu"}, "output": {"dir": str(out)}})
    weights, _ = prepare_run(cfg)
    ensure_process_group("gloo")
    try:
        run_pretrain(cfg, weights=weights, on_gpu=False)
    finally:
        torch.distributed.destroy_process_group()
    return cfg, out
