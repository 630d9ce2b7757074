"""The scalar-head GPT (training/model/heads.py): the trunk of a GPT checkpoint, the score at the last real
token, and checkpoints that save and load through training/loop/checkpoint.py."""

import pytest

pytest.importorskip("megatron.core")

import torch  # noqa: E402

from training.model.config import ModelConfig  # noqa: E402

CFG = ModelConfig(num_layers=2, hidden_size=64, num_attention_heads=4, seq_length=16)
VOCAB = 128


def _gpt_checkpoint(tmp_path, seed=7):
    from training.loop.checkpoint import save_checkpoint
    from training.model.gpt import build_gpt

    gpt = build_gpt(CFG, vocab_size=VOCAB, seed=seed)
    opt = torch.optim.AdamW(gpt.parameters())
    path = save_checkpoint(str(tmp_path / "gpt"), 3, gpt, opt, {"step": 3}, rank=0, barrier=lambda: None, keep=1)
    return gpt, path


def test_trunk_from_a_gpt_checkpoint_reproduces_the_gpt_logits(megatron_cpu, tmp_path):
    from training.model.heads import ScalarHeadGPT, init_trunk_from_checkpoint

    gpt, path = _gpt_checkpoint(tmp_path)
    rm = ScalarHeadGPT(CFG, vocab_size=VOCAB, seed=1)
    meta = init_trunk_from_checkpoint(rm, path)
    assert meta["step"] == 3
    # With the head set to the output layer's row of token 5, the scalar is the GPT's logit of token 5:
    # same trunk, same final norm, the same projection.
    with torch.no_grad():
        rm.score.weight.copy_(gpt.output_layer.weight[5:6])
        rm.score.bias.zero_()
    tokens = torch.randint(0, VOCAB, (3, 16), generator=torch.Generator().manual_seed(0))
    positions = torch.arange(16)[None].expand(3, 16)
    gpt.eval(), rm.eval()
    with torch.no_grad():
        logits = gpt(tokens, positions, None)  # [b, s, V]
        values = rm(tokens, positions)         # [b, s]
    assert values.shape == (3, 16) and values.dtype == torch.float32
    torch.testing.assert_close(values, logits[..., 5], rtol=1e-5, atol=1e-5)


def test_score_at_the_last_real_token_left_or_right_padding():
    from training.model.heads import scores_at_last_token

    values = torch.arange(12.0).reshape(2, 6)
    nonpad = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    assert scores_at_last_token(values, nonpad).tolist() == [2.0, 11.0]
    with pytest.raises(ValueError, match="without any real token"):
        scores_at_last_token(values, torch.zeros(2, 6, dtype=torch.bool))


def test_scalar_head_checkpoint_round_trip_with_optimizer_state(megatron_cpu, tmp_path):
    from training.loop.checkpoint import load_checkpoint, save_checkpoint
    from training.model.heads import ScalarHeadGPT

    rm = ScalarHeadGPT(CFG, vocab_size=VOCAB, seed=1)
    opt = torch.optim.AdamW(rm.parameters(), lr=1e-3)
    tokens = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))
    positions = torch.arange(16)[None].expand(2, 16)
    rm(tokens, positions)[:, -1].sum().backward()
    opt.step()
    path = save_checkpoint(str(tmp_path / "rm"), 1, rm, opt, {"step": 1, "optimizer_steps": 1}, rank=0,
                           barrier=lambda: None, keep=1)
    other = ScalarHeadGPT(CFG, vocab_size=VOCAB, seed=2)
    other_opt = torch.optim.AdamW(other.parameters(), lr=1e-3)
    load_checkpoint(path, other, other_opt)
    for (name, a), b in zip(rm.state_dict().items(), other.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    for p, q in zip(rm.parameters(), other.parameters()):
        assert torch.equal(opt.state[p]["exp_avg_sq"], other_opt.state[q]["exp_avg_sq"])
    names = {k for k in rm.state_dict() if not k.endswith("_extra_state")}
    assert {"score.weight", "score.bias", "final_norm.weight"} <= names
