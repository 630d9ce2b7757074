"""SFT and the reward model through the real launch path (Ray Train, gloo workers on CPU): an SFT run at DP = 2
and a reward model at TP = 2 take the same steps as the same runs on one rank in this process."""

import os

import numpy as np
import pytest

pytest.importorskip("megatron.core")
pytest.importorskip("ray.train")

from schemas.config import config_from_dict  # noqa: E402
from training.model.config import ModelConfig  # noqa: E402

from .conftest import PREFERENCE_FIXTURE, SFT_FIXTURE  # noqa: E402

pytestmark = pytest.mark.slow


def _config(kind, run, tokenizer, out, **parallel):
    d = {"init": {"checkpoint": run, "tokenizer": tokenizer},
         "data": {"train": SFT_FIXTURE if kind == "sft" else PREFERENCE_FIXTURE, "valid_fraction": 0.2,
                  "seq_length": 256},
         "optimizer": {"lr": 3e-3, "min_lr": 3e-4, "weight_decay": 0.0},
         "schedule": {"train_steps": 4, "warmup_steps": 1, "micro_batch_size": 1 if parallel.get("data") else 2,
                      "global_batch_size": 4, "eval_interval": 4, "save_interval": 4},
         "parallel": {"device": "cpu", **parallel}, "output": {"dir": str(out)}}
    if kind == "sft":
        d["samples"] = {"prompts": 1, "max_tokens": 4}
    return d


def _losses(out):
    from training.loop.metrics import read_metrics

    return np.array([r["loss"] for r in read_metrics(os.path.join(str(out), "metrics.jsonl")) if "loss" in r])


def _in_process(kind, d):
    import torch.distributed as dist

    from training.align.config import RMConfig, SFTConfig
    from training.align.reward import run_rm
    from training.align.sft import run_sft
    from training.align.source import prepare_align_run
    from training.loop.parallel import ensure_process_group

    run, cls = (run_sft, SFTConfig) if kind == "sft" else (run_rm, RMConfig)
    cfg, args = prepare_align_run(config_from_dict(cls, d, "test"), kind)
    created = not dist.is_initialized()
    ensure_process_group("gloo")
    try:
        return run(cfg, model_cfg=ModelConfig(**args["model"]), source_checkpoint=args["source_checkpoint"],
                   on_gpu=False)
    finally:
        if created:
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def ray_local():
    import ray

    yield
    ray.shutdown()


@pytest.mark.parametrize("kind,layout", [("sft", {"data": 2}), ("rm", {"tensor": 2})], ids=["sft-dp2", "rm-tp2"])
def test_parallel_run_matches_one_rank(ray_local, tiny_gpt_run, tiny_tokenizer, tmp_path, kind, layout):
    from training.align.config import RMConfig, SFTConfig
    from training.align.reward import launch_rm
    from training.align.sft import launch_sft

    one = _in_process(kind, _config(kind, tiny_gpt_run, tiny_tokenizer, tmp_path / "one"))
    d = _config(kind, tiny_gpt_run, tiny_tokenizer, tmp_path / "two", **layout)
    if kind == "sft":
        two = launch_sft(config_from_dict(SFTConfig, d, "test"), progress=False)
        assert two["samples_file"] == "samples.jsonl"
    else:
        two = launch_rm(config_from_dict(RMConfig, d, "test"), progress=False)
        assert two["valid_accuracy"] == pytest.approx(one["valid_accuracy"])
    got, want = _losses(tmp_path / "two"), _losses(tmp_path / "one")
    assert got.shape == (4,) and np.abs(got - want).max() < 1e-4, (got, want)
    assert two["valid_loss"] == pytest.approx(one["valid_loss"], abs=1e-4)
