"""SFT and the reward model SIGKILLed mid-run (the CLI: Ray Train, gloo on CPU) and run again end as the same run
uninterrupted: the same loss at every step, bit for bit, and the same final checkpoint (weights and
AdamW moments), bit for bit.

Bit-identical, not close: the uninterrupted run and the rerun go in this process on one CPU thread, the
arithmetic of a Ray worker given one CPU, with the same data order, seed and schedule, so any difference is
state the checkpoint lost. (In this process rather than through the CLI: a Ray start costs ~35 s on two
cores; tests/training/test_pretrain.py reruns a killed pretraining run through the CLI.) The source GPT
uses dropout (hidden and attention, 0.1), so the random stream of every step is part of what must come
back after the kill. The kill lands once step 6 is logged, past the step-4 checkpoint: the rerun cuts
metrics.jsonl back to the last checkpoint and trains the steps after it again.
"""

import json
import os
import sys

import pytest

pytest.importorskip("megatron.core")
pytest.importorskip("ray.train")

from run_helpers import assert_same_tensors, checkpoint_tensors, kill_when  # noqa: E402
from training.loop.metrics import read_metrics  # noqa: E402

from .conftest import PREFERENCE_FIXTURE, SFT_FIXTURE, write_gpt_run  # noqa: E402

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STEPS, SAVE, KILL_AFTER = 12, 4, 6


@pytest.fixture(scope="module")
def dropout_gpt_run(tiny_export, tmp_path_factory):
    return write_gpt_run(tiny_export, str(tmp_path_factory.mktemp("gpt") / "run"), hidden_dropout=0.1,
                         attention_dropout=0.1)


def _config(kind, source, tokenizer, out):
    d = {"init": {"checkpoint": source, "tokenizer": tokenizer},
         "data": {"train": SFT_FIXTURE if kind == "sft" else PREFERENCE_FIXTURE, "valid_fraction": 0.2,
                  "seq_length": 256},
         "optimizer": {"lr": 3e-3, "min_lr": 3e-4},
         # one row per micro-batch: steps slow enough for the kill to land mid-run
         "schedule": {"train_steps": STEPS, "warmup_steps": 2, "micro_batch_size": 1, "global_batch_size": 4,
                      "eval_interval": 6, "save_interval": SAVE},
         "parallel": {"device": "cpu"}, "output": {"dir": str(out)}}
    if kind == "sft":
        d["samples"] = {"prompts": 1, "max_tokens": 4, "temperature": 1.0, "seed": 3}
    return d


def _records(out):
    return read_metrics(os.path.join(str(out), "metrics.jsonl"))


def _in_process(kind, d):
    import torch
    import torch.distributed as dist

    from schemas.config import config_from_dict
    from training.align.config import RMConfig, SFTConfig
    from training.align.reward import run_rm
    from training.align.sft import run_sft
    from training.align.source import prepare_align_run
    from training.loop.parallel import ensure_process_group
    from training.model.config import ModelConfig

    run, cls = (run_sft, SFTConfig) if kind == "sft" else (run_rm, RMConfig)
    cfg, args = prepare_align_run(config_from_dict(cls, d, "test"), kind)
    threads, created = torch.get_num_threads(), not dist.is_initialized()
    torch.set_num_threads(1)
    ensure_process_group("gloo")
    try:
        run(cfg, model_cfg=ModelConfig(**args["model"]), source_checkpoint=args["source_checkpoint"], on_gpu=False)
    finally:
        torch.set_num_threads(threads)
        if created:
            dist.destroy_process_group()


def _command(kind, config):
    return [sys.executable, "-m", "jobs.cli", "train", kind, str(config), "--no-progress"]


@pytest.mark.parametrize("kind", ["sft", "rm"])
def test_killed_run_resumes_bit_for_bit(kind, dropout_gpt_run, tiny_tokenizer, tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}  # the workers import this checkout, not an installed copy
    runs = {name: tmp_path / name for name in ("straight", "killed")}
    _in_process(kind, _config(kind, dropout_gpt_run, tiny_tokenizer, runs["straight"]))
    out, config = runs["killed"], tmp_path / "killed.yaml"
    config.write_text(json.dumps(_config(kind, dropout_gpt_run, tiny_tokenizer, out)))  # JSON is YAML
    status = kill_when(_command(kind, config), cwd=REPO, env=env, timeout=300,
                       ready=lambda: any(r.get("step", 0) >= KILL_AFTER for r in _records(out)))
    assert status == -9
    steps_done = max(r["step"] for r in _records(out))
    assert KILL_AFTER <= steps_done < STEPS, "the run should have been killed mid-way"
    _in_process(kind, _config(kind, dropout_gpt_run, tiny_tokenizer, out))
    straight, killed = (_records(runs[n]) for n in ("straight", "killed"))
    assert [r["step"] for r in killed] == list(range(STEPS + 1))  # step 0: the source's held-out figures
    timing = ("seconds", "tokens_per_s", "rows_per_s", "prompts_per_s")
    for a, b in zip(killed, straight):
        assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}
    final = os.path.join("checkpoints", f"step-{STEPS:08d}")
    assert_same_tensors(checkpoint_tensors(runs["killed"] / final), checkpoint_tensors(runs["straight"] / final))
    meta = [json.loads((runs[n] / final / "meta.json").read_text()) for n in ("killed", "straight")]
    assert meta[0] == meta[1]
    if kind == "sft":  # the generations drawn at each evaluation
        assert (runs["killed"] / "samples.jsonl").read_text() == (runs["straight"] / "samples.jsonl").read_text()
