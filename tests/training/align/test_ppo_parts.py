"""PPO's config, prompt order, prompt encoding and rollout batch layout: small and fast."""

import json
import os

import pytest
import yaml

from schemas.config import ConfigError
from training.align.ppo_config import load_ppo_config, parse_ppo_config, ppo_identity, ppo_json_schema
from training.align.rollout import prompt_indices

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BASE = {"policy": {"sft": "runs/sft", "tokenizer": "runs/tok"}, "reward": {"kind": "model", "model": "runs/rm"},
        "data": {"prompts": "p.jsonl"}, "output": {"dir": "runs/ppo"}}


def with_(**changes):
    d = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        section, key = path.split("__")
        d.setdefault(section, {})[key] = value
    return d


def test_the_tiny_job_parses_and_the_schema_file_is_current():
    cfg = load_ppo_config(os.path.join(REPO, "jobs", "ppo_tiny.yaml"))
    assert cfg.ppo.clip == 0.2 and cfg.ppo.gamma == 1.0 and cfg.ppo.lam == 0.95 and cfg.ppo.kl_beta == 0.02
    with open(os.path.join(REPO, "schemas", "ppo_v1.schema.json"), encoding="utf-8") as f:
        assert json.load(f) == ppo_json_schema(), "regenerate: python -m training.align.ppo_config > schemas/ppo_v1.schema.json"
    jsonschema = pytest.importorskip("jsonschema")
    with open(os.path.join(REPO, "jobs", "ppo_tiny.yaml"), encoding="utf-8") as f:
        jsonschema.validate(yaml.safe_load(f), ppo_json_schema())


@pytest.mark.parametrize("changes, message", [
    ({"ppo__clipp": 0.1}, "unknown key 'clipp'"),
    ({"parallel__tensor": 2}, "data-parallel only"),
    ({"parallel__pipeline": 2}, "data-parallel only"),
    ({"ppo__rollout_batch_size": 6, "ppo__minibatches": 4}, "not a multiple"),
    ({"ppo__ptx_coef": 27.8}, "needs data.ptx_export_dir"),
    ({"reward__kind": "token_fraction", "reward__model": None}, "needs reward.token"),
    ({"ppo__clip": 1.5}, "clip"),
])
def test_bad_configs_are_refused_with_the_field_named(changes, message):
    with pytest.raises(ConfigError, match=message):
        parse_ppo_config(with_(**changes))


def test_identity_ignores_layout_intervals_and_length_but_not_the_math():
    base = ppo_identity(parse_ppo_config(BASE))
    assert ppo_identity(parse_ppo_config(with_(ppo__iterations=7, run__save_interval=3, parallel__data=2))) == base
    assert ppo_identity(parse_ppo_config(with_(ppo__kl_beta=0.05))) != base


def test_prompt_order_is_a_permutation_per_pass_and_depends_on_the_seed():
    first_pass = prompt_indices(10, 0, 5, seed=1) + prompt_indices(10, 1, 5, seed=1)
    assert sorted(first_pass) == list(range(10))
    # an iteration that straddles two passes: the end of pass 0, then the start of pass 1
    assert prompt_indices(10, 1, 7, seed=1)[:3] == prompt_indices(10, 0, 10, seed=1)[7:]
    assert prompt_indices(10, 0, 10, seed=2) != prompt_indices(10, 0, 10, seed=1)


def test_prompts_from_prompt_and_messages_rows_through_the_chat_template(tiny_tokenizer, tmp_path):
    from training.align.data import encode_prompt
    from training.align.rollout import read_prompt_ids
    from training.tokenizer import load_tokenizer

    tok = load_tokenizer(tiny_tokenizer)
    path = tmp_path / "p.jsonl"
    rows = [{"prompt": "Name a play."},
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"},
                          {"role": "assistant", "content": "Because."}], "answers": ["x"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = read_prompt_ids(str(path), tok, chat_template=True, max_tokens=1000)
    assert got[0] == encode_prompt(tok, [{"role": "user", "content": "Name a play."}])
    # the trailing assistant turn is dropped: the policy writes it
    assert got[1] == encode_prompt(tok, rows[1]["messages"][:2])
    assert tok.tokenizer.decode(got[1]).endswith("Assistant:")
    cut = read_prompt_ids(str(path), tok, chat_template=True, max_tokens=3)
    assert cut[1] == got[1][-3:]
    raw = read_prompt_ids(str(path), tok, chat_template=False, max_tokens=1000)
    assert raw[0] == tok.tokenizer.encode("Name a play.", add_special_tokens=False).ids
    path.write_text(json.dumps({"text": "no prompt"}) + "\n")
    with pytest.raises(ValueError, match="p.jsonl:1: expected a string `prompt`"):
        read_prompt_ids(str(path), tok, chat_template=True, max_tokens=8)


def test_rollout_batch_layout():
    from training.align.rollout import build_batch

    b = build_batch([[5, 6, 7], [8]], [[1, 2], [3, 4, 0]], pad_id=0, device="cpu")
    assert b.tokens.tolist() == [[5, 6, 7, 1, 2], [8, 3, 4, 0, 0]]
    # action i predicts token i + 1: the response tokens 1, 2 sit at 3, 4 -> actions 2, 3
    assert b.action_mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    assert b.nonpad.tolist() == [[True] * 5, [True, True, True, True, False]]
    with pytest.raises(ValueError, match="empty prompt or response"):
        build_batch([[1]], [[]], pad_id=0, device="cpu")
