"""The reward model (training/align/reward.py): the pair loss checked by hand, a known preference learned
to > 0.9 held-out pairwise accuracy, a stopped run resumed to the same losses, and its checkpoints."""

import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("megatron.core")

import torch  # noqa: E402

from training.model.config import ModelConfig  # noqa: E402

from .conftest import PREFERENCE_FIXTURE, SFT_FIXTURE  # noqa: E402


def test_pair_loss_by_hand():
    from training.align.data import PreferenceExample, collate_preferences
    from training.align.reward import preference_loss

    # prompt 0: K = 3 answers, rewards 2.0 > 0.5 ? 1.0 (the last pair is ordered wrongly); prompt 1: K = 2
    batch = collate_preferences([PreferenceExample(sequences=[[5, 6], [5, 7], [5, 8, 9]]),
                                 PreferenceExample(sequences=[[4], [4, 4]])], pad_id=1)
    rewards = torch.tensor([2.0, 0.5, 1.0, -1.0, 0.25])

    def nls(x):  # -log sigmoid(x)
        return math.log1p(math.exp(-x))

    want = (nls(2.0 - 0.5) + nls(2.0 - 1.0) + nls(0.5 - 1.0)) / 3 + nls(-1.0 - 0.25) / 1
    loss, correct, pairs, margin = preference_loss(rewards, batch)
    assert loss.item() == pytest.approx(want, rel=1e-12)
    assert (correct, pairs) == (2, 4)
    assert margin.tolist() == pytest.approx([1.5, 1.0, -0.5, -1.25])


def _lowercase_preference(path, tmp_path) -> str:
    """A known preference on real text: the fixture's prompts with four versions of their reference answer,
    from all lowercase to all uppercase (letters after a cut at 1, 2/3, 1/3, 0 of the answer are upper-cased);
    more lowercase is better."""
    rows = []
    for line in open(path):
        r = json.loads(line)
        answer = r["messages"][-1]["content"]
        n = len(answer)
        versions = [answer[:c].lower() + answer[c:].upper() for c in (n, 2 * n // 3, n // 3, 0)]
        if len(set(versions)) == 4:
            rows.append({"messages": r["messages"][:-1][-1:], "answers": versions})
    out = tmp_path / "lowercase.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(out)


def _config(run, tokenizer, train, out, *, steps, **parallel):
    return {"init": {"checkpoint": run, "tokenizer": tokenizer},
            "data": {"train": train, "valid_fraction": 0.25, "seq_length": 256},
            "optimizer": {"lr": 3e-3, "min_lr": 3e-4, "weight_decay": 0.0},
            "schedule": {"train_steps": steps, "warmup_steps": 3, "decay_steps": 20, "micro_batch_size": 2,
                         "global_batch_size": 4, "eval_interval": 10, "save_interval": 4},
            "parallel": {"device": "cpu", **parallel}, "output": {"dir": str(out)}}


def _run(d):
    from schemas.config import config_from_dict
    from training.align.config import RMConfig
    from training.align.reward import run_rm
    from training.align.source import prepare_align_run

    cfg, args = prepare_align_run(config_from_dict(RMConfig, d, "test"), "rm")
    return run_rm(cfg, model_cfg=ModelConfig(**args["model"]), source_checkpoint=args["source_checkpoint"],
                  on_gpu=False)


def _metrics(out):
    from training.loop.metrics import read_metrics

    return read_metrics(os.path.join(str(out), "metrics.jsonl"))


@pytest.fixture(scope="module")
def known(tiny_gpt_run, tiny_tokenizer, tmp_path_factory):
    import torch.distributed as dist

    from training.loop.parallel import ensure_process_group

    tmp = tmp_path_factory.mktemp("rm")
    train = _lowercase_preference(SFT_FIXTURE, tmp)
    created = not dist.is_initialized()
    ensure_process_group("gloo")
    try:
        summary = _run(_config(tiny_gpt_run, tiny_tokenizer, train, tmp / "run", steps=20))
    finally:
        if created:
            dist.destroy_process_group()
    return tmp / "run", train, summary


def test_reward_model_learns_a_known_preference(known):
    out, _, summary = known
    # measured: held-out accuracy 0.50 (untrained head) -> 1.0 at step 10 and 20
    assert summary["valid_accuracy"] > 0.9, summary
    assert summary["valid_accuracy_start"] < 0.8 and summary["valid_pairs"] >= 30
    losses = [r["loss"] for r in _metrics(out) if "loss" in r]
    assert len(losses) == 20 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.2
    for name in ("config.resolved.yaml", "metrics.jsonl", "summary.json", "checkpoints/latest"):
        assert os.path.exists(os.path.join(str(out), name)), name


def test_stopped_reward_model_resumes_to_the_same_losses(known, tiny_gpt_run, tiny_tokenizer, tmp_path,
                                                         process_group):
    ref, train, _ = known
    out = tmp_path / "run"
    _run(_config(tiny_gpt_run, tiny_tokenizer, train, out, steps=6))   # saved at 4 and 6
    _run(_config(tiny_gpt_run, tiny_tokenizer, train, out, steps=12))  # from step 6
    got = np.array([r["loss"] for r in _metrics(out) if "loss" in r])
    want = np.array([r["loss"] for r in _metrics(ref) if "loss" in r][:12])
    assert got.shape == (12,) and np.abs(got - want).max() < 1e-5, (got, want)


def test_reward_checkpoint_loads_into_scalar_head_gpt(known, process_group):
    import yaml

    from training.loop.checkpoint import latest_checkpoint, load_checkpoint
    from training.loop.parallel import init_parallel, shutdown_parallel
    from training.model.heads import ScalarHeadGPT

    out, _, _ = known
    doc = yaml.safe_load(open(os.path.join(str(out), "config.resolved.yaml")))
    assert doc["kind"] == "rm" and "config" not in doc  # not a GPT: eval ppl must not take it for one
    init_parallel(tensor=1, pipeline=1, seed=0, on_gpu=False)
    try:
        model = ScalarHeadGPT(ModelConfig(**doc["model"]), vocab_size=doc["padded_vocab_size"])
        meta = load_checkpoint(latest_checkpoint(os.path.join(str(out), "checkpoints")), model)
    finally:
        shutdown_parallel()
    assert meta["step"] == 20


def test_real_preference_data_trains(tiny_gpt_run, tiny_tokenizer, tmp_path, process_group):
    """The committed real preferences (K = 4..9, constructed rankings): every prompt's pairs in one batch
    element, the loss falls."""
    d = _config(tiny_gpt_run, tiny_tokenizer, PREFERENCE_FIXTURE, tmp_path / "run", steps=6)
    d["data"]["seq_length"] = 512
    summary = _run(d)
    counts = summary["data"]
    # 5 of the 32 prompts have an answer sequence over 512 tokens of the tiny tokenizer: dropped whole
    assert counts["k_min"] >= 4 and counts["k_max"] <= 9 and counts["dropped_too_long"] == 5
    records = [r for r in _metrics(tmp_path / "run") if "loss" in r]
    assert all(r["pairs"] >= 4 * 6 for r in records)  # 4 prompts, each K >= 4: at least 6 pairs each
    assert np.isfinite(summary["valid_loss"]) and 0 <= summary["valid_accuracy"] <= 1


def test_pipeline_parallel_reward_model_is_refused(tiny_gpt_run, tiny_tokenizer):
    from schemas.config import ConfigError, config_from_dict
    from training.align.config import RMConfig

    d = _config(tiny_gpt_run, tiny_tokenizer, PREFERENCE_FIXTURE, "unused", steps=8, pipeline=2)
    with pytest.raises(ConfigError, match="parallel.pipeline 2: the reward model's scalar head"):
        config_from_dict(RMConfig, d, "test")
