"""Shared by the alignment tests: the committed real fixtures (tests/training/fixtures/align) and a GPT run
folder to start from, made by the pretraining code paths on the tiny export."""

import os

import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "align")
SFT_FIXTURE = os.path.join(FIXTURES, "sft.jsonl")
PREFERENCE_FIXTURE = os.path.join(FIXTURES, "preferences.jsonl")


def write_gpt_run(tiny_export, run: str, **model) -> str:
    """A pretraining run folder as `refinery train pretrain` writes it (config.resolved.yaml, mixture.json,
    checkpoints/latest) holding a 2-layer, hidden-64 GPT (seq 64, `model` settings on top) at its seeded
    initial weights."""
    pytest.importorskip("megatron.core")
    import torch

    from training.loop.checkpoint import save_checkpoint
    from training.loop.config import parse_pretrain_config
    from training.loop.launch import prepare_run
    from training.loop.parallel import ensure_process_group, init_parallel, shutdown_parallel
    from training.model.config import padded_vocab_size
    from training.model.gpt import build_gpt

    export_dir, tok, _, _ = tiny_export
    cfg = parse_pretrain_config({"data": {"export_dir": export_dir, "split": "80,20,0"},
                                 "model": {"seq_length": 64, **model}, "parallel": {"device": "cpu"},
                                 "output": {"dir": run}})
    prepare_run(cfg)
    created = not torch.distributed.is_initialized()
    ensure_process_group("gloo")
    init_parallel(tensor=1, pipeline=1, seed=cfg.schedule.seed, on_gpu=False)
    try:
        model = build_gpt(cfg.model, vocab_size=padded_vocab_size(tok.vocab_size), seed=cfg.schedule.seed)
        optimizer = torch.optim.AdamW(model.parameters())
        save_checkpoint(os.path.join(run, "checkpoints"), 0, model, optimizer, {"step": 0}, rank=0,
                        barrier=lambda: None, keep=1)
    finally:
        shutdown_parallel()
        if created:
            torch.distributed.destroy_process_group()
    return run


@pytest.fixture(scope="session")
def tiny_gpt_run(tiny_export, tmp_path_factory):
    """The GPT run folder SFT and the reward model start from (write_gpt_run). Untrained on purpose: the tests
    measure what SFT and the RM learn themselves."""
    return write_gpt_run(tiny_export, str(tmp_path_factory.mktemp("gpt") / "run"))


@pytest.fixture
def process_group():
    """A one-process gloo group for a worker function called in this process (run_sft, run_rm)."""
    import torch

    from training.loop.parallel import ensure_process_group

    created = not torch.distributed.is_initialized()
    ensure_process_group("gloo")
    yield
    if created:
        torch.distributed.destroy_process_group()
