"""Supervised fine-tuning runs (training/align/sft.py) on the real fixture: the held-out loss falls, a stopped
run resumes to the same losses, the checkpoints are GPT checkpoints that evaluation reads, a run folder
refuses other settings."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("megatron.core")

from training.model.config import ModelConfig  # noqa: E402

from .conftest import SFT_FIXTURE  # noqa: E402

SEQ = 256  # 33 of the 40 fixture examples fit


def _config(run, tokenizer, out, *, steps, **parallel):
    return {"init": {"checkpoint": run, "tokenizer": tokenizer},
            "data": {"train": SFT_FIXTURE, "valid_fraction": 0.2, "seq_length": SEQ},
            "optimizer": {"lr": 3e-3, "min_lr": 3e-4, "weight_decay": 0.0},
            "schedule": {"train_steps": steps, "warmup_steps": 2, "decay_steps": 16, "micro_batch_size": 2,
                         "global_batch_size": 4, "eval_interval": 8, "save_interval": 4},
            "parallel": {"device": "cpu", **parallel}, "samples": {"prompts": 2, "max_tokens": 8},
            "output": {"dir": str(out)}}


def _run(d):
    from schemas.config import config_from_dict
    from training.align.config import SFTConfig
    from training.align.sft import run_sft
    from training.align.source import prepare_align_run

    cfg, args = prepare_align_run(config_from_dict(SFTConfig, d, "test"), "sft")
    return run_sft(cfg, model_cfg=ModelConfig(**args["model"]), source_checkpoint=args["source_checkpoint"],
                   on_gpu=False)


def _losses(out):
    from training.loop.metrics import read_metrics

    return [r["loss"] for r in read_metrics(os.path.join(str(out), "metrics.jsonl")) if "loss" in r]


@pytest.fixture(scope="module")
def sft_reference(tiny_gpt_run, tiny_tokenizer, tmp_path_factory):
    import torch.distributed as dist

    from training.loop.parallel import ensure_process_group

    out = tmp_path_factory.mktemp("sft") / "run"
    created = not dist.is_initialized()
    ensure_process_group("gloo")
    try:
        summary = _run(_config(tiny_gpt_run, tiny_tokenizer, out, steps=16))
    finally:
        if created:
            dist.destroy_process_group()
    return out, summary


def test_sft_lowers_held_out_loss_and_writes_a_run_folder(sft_reference):
    out, summary = sft_reference
    losses = _losses(out)
    assert len(losses) == 16
    # from the untrained GPT (ln 1024 = 6.93 per token); measured: held-out 6.91 -> 6.49 at step 8, 6.41 at 16
    assert summary["valid_loss_start"] > 6.5 and summary["valid_loss"] < summary["valid_loss_start"] - 0.3
    d = summary["data"]
    assert d["train_examples"] + d["valid_examples"] + d["dropped_too_long"] == 40 and d["dropped_too_long"] == 7
    for name in ("config.resolved.yaml", "metrics.jsonl", "summary.json", "samples.jsonl", "checkpoints/latest"):
        assert os.path.exists(os.path.join(str(out), name)), name
    samples = [json.loads(line) for line in open(os.path.join(str(out), "samples.jsonl"))]
    assert {s["step"] for s in samples} == {0, 8, 16} and all({"prompt", "reference", "completion"} <= set(s)
                                                                for s in samples)


def test_sft_checkpoint_is_a_gpt_checkpoint(sft_reference, tiny_export):
    from training.eval.perplexity import evaluate_checkpoint

    out, _ = sft_reference
    report = evaluate_checkpoint(str(out))  # eval ppl reads SFT runs as it reads pretraining runs
    assert report["step"] == 16 and np.isfinite(report["overall"]["loss"])


def test_stopped_sft_resumes_to_the_same_losses(sft_reference, tiny_gpt_run, tiny_tokenizer, tmp_path, process_group):
    ref, _ = sft_reference
    out = tmp_path / "run"
    _run(_config(tiny_gpt_run, tiny_tokenizer, out, steps=6))   # saved at 4 and at the end, 6
    assert open(out / "checkpoints" / "latest").read().strip() == "step-00000006"
    _run(_config(tiny_gpt_run, tiny_tokenizer, out, steps=16))  # resumes from step 6
    got, want = np.array(_losses(out)), np.array(_losses(ref))
    assert got.shape == (16,) and np.abs(got - want).max() < 1e-5, (got, want)


def test_changed_settings_are_refused(sft_reference, tiny_gpt_run, tiny_tokenizer):
    from schemas.config import config_from_dict
    from training.align.config import SFTConfig
    from training.align.source import prepare_align_run
    from training.loop.launch import LaunchError

    out, _ = sft_reference
    d = _config(tiny_gpt_run, tiny_tokenizer, out, steps=16)
    d["optimizer"]["lr"] = 1e-3
    with pytest.raises(LaunchError, match="other training settings"):
        prepare_align_run(config_from_dict(SFTConfig, d, "test"), "sft")
    d = _config(tiny_gpt_run, os.path.dirname(SFT_FIXTURE), out, steps=16)
    with pytest.raises(FileNotFoundError, match="refinery_tokenizer.json"):
        prepare_align_run(config_from_dict(SFTConfig, d, "test"), "sft")


def test_generations_from_the_final_checkpoint(sft_reference, tiny_gpt_run, tiny_tokenizer):
    """The path a TP or PP > 1 run takes: the driver samples the final checkpoint on one CPU rank."""
    from schemas.config import config_from_dict
    from training.align.config import SFTConfig
    from training.align.sft import SAMPLES, _samples_from_checkpoint

    out, summary = sft_reference
    cfg = config_from_dict(SFTConfig, _config(tiny_gpt_run, tiny_tokenizer, out, steps=16), "test")
    in_worker = [json.loads(line) for line in open(os.path.join(str(out), SAMPLES)) if json.loads(line)["step"] == 16]
    _samples_from_checkpoint(cfg, summary)
    rows = [json.loads(line) for line in open(os.path.join(str(out), SAMPLES))]
    assert [r["step"] for r in rows if r["step"] == 16] == [16, 16]  # the step's lines replaced, not doubled
    # greedy: the checkpoint's generations are the ones the worker drew at step 16
    assert [r["completion"] for r in rows if r["step"] == 16] == [r["completion"] for r in in_worker]
