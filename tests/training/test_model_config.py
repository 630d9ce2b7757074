"""Model and training configs: strict loading, the JSON Schema, the TransformerConfig translation, parameter
counts against the built model, the learning-rate schedule, and `refinery plan --config`."""

import json
import math
import os

import pytest

from schemas.config import ConfigError
from training.loop.config import (OptimizerConfig, ScheduleConfig, parse_pretrain_config, pretrain_json_schema,
                                  training_identity)
from training.loop.optim import lr_at
from training.model.config import ModelConfig, padded_vocab_size, parameter_count

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = {"data": {"export_dir": "x"}, "output": {"dir": "y"}}


def test_unknown_key_wrong_type_and_cross_field_errors_name_the_field():
    with pytest.raises(ConfigError, match="config.model: unknown key 'hiden_size'. Did you mean 'hidden_size'"):
        parse_pretrain_config({**BASE, "model": {"hiden_size": 64}})
    with pytest.raises(ConfigError, match="config.model.position: 'alibii' is not allowed. Did you mean 'alibi'"):
        parse_pretrain_config({**BASE, "model": {"position": "alibii"}})
    with pytest.raises(ConfigError, match="global_batch_size 10 is not a multiple"):
        parse_pretrain_config({**BASE, "schedule": {"micro_batch_size": 4, "global_batch_size": 10}})
    with pytest.raises(ConfigError, match="parallel.tensor 3 must divide the attention heads"):
        parse_pretrain_config({**BASE, "parallel": {"tensor": 3}})


def test_committed_json_schema_is_current_and_validates_the_tiny_job():
    import jsonschema
    import yaml

    with open(os.path.join(REPO, "schemas", "pretrain_v1.schema.json")) as f:
        assert json.load(f) == pretrain_json_schema(), "regenerate: python -m training.loop.config > schemas/pretrain_v1.schema.json"
    with open(os.path.join(REPO, "jobs", "pretrain_tiny.yaml")) as f:
        doc = yaml.safe_load(f)
    jsonschema.validate(doc, pretrain_json_schema())
    parse_pretrain_config(doc)


def test_identity_ignores_layout_but_not_the_recipe():
    a = parse_pretrain_config(BASE)
    assert training_identity(a) == training_identity(parse_pretrain_config({**BASE, "parallel": {"data": 2}}))
    assert training_identity(a) != training_identity(parse_pretrain_config({**BASE, "optimizer": {"lr": 1e-3}}))


def test_lr_schedule_warmup_then_cosine_to_min():
    opt, sched = OptimizerConfig(lr=1.0, min_lr=0.1), ScheduleConfig(train_steps=110, warmup_steps=10)
    assert lr_at(0, opt, sched) == pytest.approx(0.1)
    assert lr_at(9, opt, sched) == pytest.approx(1.0)
    assert lr_at(10, opt, sched) == pytest.approx(1.0)
    assert lr_at(60, opt, sched) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(110, opt, sched) == pytest.approx(0.1)
    assert lr_at(500, opt, sched) == pytest.approx(0.1)


def test_vocab_padding_does_not_depend_on_tp():
    assert padded_vocab_size(1000) == padded_vocab_size(1000, 2) == padded_vocab_size(1000, 8) == 1024
    assert padded_vocab_size(32000) == 32000


@pytest.mark.parametrize("model", [
    {},
    {"num_query_groups": 2, "position": "learned", "norm": "layernorm", "activation": "gelu", "add_bias_linear": True},
    {"tie_embeddings": True, "position": "alibi"},
])
def test_parameter_count_matches_the_built_megatron_model(model, megatron_cpu):
    from training.model.gpt import build_gpt

    cfg = ModelConfig(**model)
    built = build_gpt(cfg, vocab_size=1024)
    assert sum(p.numel() for p in built.parameters()) == parameter_count(cfg, 1024)["total"]
    tc = built.config
    assert (tc.num_layers, tc.hidden_size, tc.num_attention_heads) == (2, 64, 4)
    assert tc.num_query_groups == cfg.query_groups and tc.ffn_hidden_size == cfg.ffn_size


def test_swiglu_width_is_llama_two_thirds_rounded_to_256():
    assert ModelConfig(hidden_size=4096, num_attention_heads=32).ffn_size == 11008  # LLaMA-7B's MLP width


def test_layout_independent_init_is_seeded_and_follows_megatron_distributions(megatron_cpu):
    import torch

    from training.model.gpt import build_gpt

    cfg = ModelConfig(num_layers=4)
    a, b = build_gpt(cfg, vocab_size=1024, seed=7), build_gpt(cfg, vocab_size=1024, seed=7)
    c = build_gpt(cfg, vocab_size=1024, seed=8)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if "norm" in name:
            assert torch.all(pa == 1), name
        else:
            assert not torch.equal(pa, pc), name
            std = cfg.init_std / (math.sqrt(2 * 4) if name.endswith(("linear_proj.weight", "linear_fc2.weight")) else 1)
            assert pa.std().item() == pytest.approx(std, rel=0.1), name
