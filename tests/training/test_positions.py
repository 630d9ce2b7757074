"""Position encodings (ALiBi, xPos, megatron-core's RoPE) and SDPACoreAttention, on CPU.

References are written out here, independently of the code under test: slopes by hand from Press et al.
2022 (arXiv:2108.12409), xPos as a complex rotation times zeta^(+-n / scale_base) (Sun et al. 2022,
arXiv:2212.10554), attention as explicit scores + bias + causal mask + softmax + weighted sum.
"""

import math
import socket

import pytest
import torch

pytest.importorskip("megatron.core")

import torch.distributed as dist  # noqa: E402
from megatron.core import parallel_state, tensor_parallel  # noqa: E402
from megatron.core.models.common.embeddings import RotaryEmbedding, apply_rotary_pos_emb  # noqa: E402
from megatron.core.models.gpt import GPTModel  # noqa: E402
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec  # noqa: E402
from megatron.core.process_groups_config import ProcessGroupCollection  # noqa: E402
from megatron.core.transformer.enums import AttnMaskType  # noqa: E402
from megatron.core.transformer.transformer_config import TransformerConfig  # noqa: E402

from training.model.attention import (  # noqa: E402
    SDPACoreAttention,
    alibi_slopes_for_rank,
    core_attention_spec,
)
from training.model.positions import alibi_bias, alibi_slopes, apply_xpos, xpos_scale  # noqa: E402

HEADS, GROUPS, HIDDEN = 4, 2, 64
HEAD_DIM = HIDDEN // HEADS
ALIBI_4_HEADS = [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]  # 2^(-8 i / 4), i = 1..4


@pytest.fixture(scope="module")
def megatron_cpu():
    """megatron-core's parallel state on one CPU process (gloo), torn down for the next test file."""
    saved_current_device = torch.cuda.current_device
    if not torch.cuda.is_available():
        torch.cuda.current_device = lambda: "cpu"  # megatron-core places tensors on current_device()
    own_group = not dist.is_initialized()
    if own_group:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    parallel_state.initialize_model_parallel(tensor_model_parallel_size=1)
    tensor_parallel.model_parallel_cuda_manual_seed(1234, inference_rng_tracker=True)
    yield
    parallel_state.destroy_model_parallel()
    if own_group:
        dist.destroy_process_group()
    torch.cuda.current_device = saved_current_device


def tiny_config(**overrides) -> TransformerConfig:
    kwargs = dict(num_layers=2, hidden_size=HIDDEN, num_attention_heads=HEADS, num_query_groups=GROUPS,
                  use_cpu_initialization=True, hidden_dropout=0.0, attention_dropout=0.0,
                  params_dtype=torch.float32, pipeline_dtype=torch.float32, bias_activation_fusion=False,
                  masked_softmax_fusion=False, persist_layer_norm=False, bias_dropout_fusion=False,
                  apply_rope_fusion=False, gradient_accumulation_fusion=False)
    kwargs.update(overrides)
    return TransformerConfig(**kwargs)


# ---------------------------------------------------------------- ALiBi

def test_alibi_slopes_power_of_two():
    assert alibi_slopes(8).tolist() == [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]
    assert alibi_slopes(4).tolist() == ALIBI_4_HEADS
    assert alibi_slopes(8).dtype == torch.float32


def test_alibi_slopes_not_power_of_two():
    expected = [2.0**-k for k in range(1, 9)] + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected), rtol=0, atol=1e-7)


def test_alibi_bias_distances():
    bias = alibi_bias(torch.tensor([0.5, 0.25]), q_len=2, k_len=3)  # queries at key positions 1, 2
    expected = torch.tensor([[[-0.5, 0.0, 0.5], [-1.0, -0.5, 0.0]],
                             [[-0.25, 0.0, 0.25], [-0.5, -0.25, 0.0]]])
    torch.testing.assert_close(bias, expected)


@pytest.mark.parametrize("num_heads,tp_size", [(8, 2), (12, 2), (12, 4)])
def test_alibi_slopes_tensor_parallel_slices(num_heads, tp_size):
    global_slopes = alibi_slopes(num_heads)
    n_local = num_heads // tp_size
    for rank in range(tp_size):
        local = alibi_slopes_for_rank(num_heads, rank, tp_size)
        assert local.tolist() == global_slopes[rank * n_local:(rank + 1) * n_local].tolist()


class _FakeTPGroup:
    """Stands for rank 1 of a 2-way tensor-parallel group; only rank() and size() are asked for."""

    def rank(self):
        return 1

    def size(self):
        return 2


def test_core_attention_takes_its_tp_ranks_slopes(megatron_cpu):
    pg = ProcessGroupCollection(tp=_FakeTPGroup())
    attn = SDPACoreAttention(tiny_config(), 1, AttnMaskType.causal, "self", pg_collection=pg,
                             position="alibi")
    assert attn.num_heads_per_partition == HEADS // 2
    assert attn.alibi_slopes.tolist() == ALIBI_4_HEADS[2:]


# ---------------------------------------------------------------- RoPE and xPos

def xpos_by_hand(x: torch.Tensor, pos: torch.Tensor, *, query: bool, base=10000.0, gamma=0.4,
                 scale_base=512.0) -> torch.Tensor:
    """x [s, b, n, d]: channel pair (c, c + d/2) as one complex number, times zeta_c^(+-pos/scale_base)
    e^(i pos theta_c); float64."""
    d = x.shape[-1]
    half = d // 2
    c = torch.arange(half, dtype=torch.float64)
    theta = base ** (-2 * c / d)
    zeta = (2 * c / d + gamma) / (1 + gamma)
    sign = 1.0 if query else -1.0
    p = pos.to(torch.float64)[:, None]  # [s, 1]
    factor = torch.polar(zeta ** (sign * p / scale_base), p * theta)[:, None, None, :]  # [s, 1, 1, d/2]
    x = x.to(torch.float64)
    z = torch.complex(x[..., :half], x[..., half:]) * factor
    return torch.cat((z.real, z.imag), dim=-1)


def test_xpos_scale_by_hand():
    scale = xpos_scale(torch.tensor([0, 256, 512, 1024]), head_dim=8, gamma=0.4, scale_base=512)
    zeta = [0.4 / 1.4, 0.65 / 1.4, 0.9 / 1.4, 1.15 / 1.4]  # (2 i / 8 + 0.4) / 1.4
    expected = torch.tensor([[1.0] * 4, [math.sqrt(z) for z in zeta], zeta, [z * z for z in zeta]])
    assert scale.shape == (4, 4) and scale.dtype == torch.float32
    torch.testing.assert_close(scale, expected, rtol=1e-6, atol=0)


def test_apply_xpos_matches_hand_rotation_and_keeps_dtype():
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3, 8)
    pos = torch.tensor([0, 3, 100, 700, 2000])
    for key in (False, True):
        got = apply_xpos(x, pos, key=key)
        expected = xpos_by_hand(x, pos, query=not key)
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    assert apply_xpos(x.bfloat16(), pos, key=False).dtype == torch.bfloat16


def test_xpos_without_scale_is_megatron_rope(megatron_cpu):
    """With scale_base = inf every scale is 1: what is left must be megatron-core's RoPE exactly
    (same frequencies, same non-interleaved channel pairing), so RoPE and xPos models line up."""
    torch.manual_seed(0)
    s, d = 12, HEAD_DIM
    x = torch.randn(s, 2, 3, d)
    rope = RotaryEmbedding(kv_channels=d, rotary_percent=1.0, use_cpu_initialization=True)
    expected = apply_rotary_pos_emb(x, rope(s), config=tiny_config())
    got = apply_xpos(x, torch.arange(s), key=False, scale_base=float("inf"))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _shift_invariant(score, m: int, n: int) -> None:
    base = score(m, n)
    for t in (1, 7, 50, 300):
        torch.testing.assert_close(score(m + t, n + t), base, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(score(m + 3, n), base, rtol=1e-3)  # the offset does matter


def test_rope_score_depends_only_on_offset(megatron_cpu):
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, HEAD_DIM), torch.randn(1, 1, 1, HEAD_DIM)
    rope = RotaryEmbedding(kv_channels=HEAD_DIM, rotary_percent=1.0, use_cpu_initialization=True)
    freqs = rope(512)  # [512, 1, 1, d]
    cfg = tiny_config()

    def score(m, n):
        qm = apply_rotary_pos_emb(q, freqs[m:m + 1], config=cfg)
        kn = apply_rotary_pos_emb(k, freqs[n:n + 1], config=cfg)
        return (qm * kn).sum()

    _shift_invariant(score, 9, 4)


def test_xpos_score_depends_only_on_offset():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, HEAD_DIM), torch.randn(1, 1, 1, HEAD_DIM)

    def score(m, n):
        qm = apply_xpos(q, torch.tensor([m]), key=False)
        kn = apply_xpos(k, torch.tensor([n]), key=True)
        return (qm * kn).sum()

    _shift_invariant(score, 9, 4)


# ---------------------------------------------------------------- SDPACoreAttention

def reference_attention(q, k, v, *, position: str, mask=None) -> torch.Tensor:
    """q [sq, b, n, d], k/v [sk, b, g, d], mask bool [b, 1, sq, sk] (True = masked) -> [sq, b, n*d]."""
    sq, b, n, d = q.shape
    sk, g = k.shape[0], k.shape[2]
    q_pos, k_pos = torch.arange(sk - sq, sk), torch.arange(sk)
    if position == "xpos":
        q, k = xpos_by_hand(q, q_pos, query=True), xpos_by_hand(k, k_pos, query=False)
    q, k, v = q.double(), k.double(), v.double()
    blocked = k_pos[None, :] > q_pos[:, None]  # [sq, sk], the future
    if mask is not None:
        blocked = blocked | mask[:, 0]  # [b, sq, sk]
    out = torch.empty(sq, b, n, d, dtype=torch.float64)
    for h in range(n):
        group = h // (n // g)  # consecutive query heads share a key/value head
        scores = torch.einsum("ibd,jbd->bij", q[:, :, h], k[:, :, group]) / math.sqrt(d)  # [b, sq, sk]
        if position == "alibi":
            scores = scores - ALIBI_4_HEADS[h] * (q_pos[:, None] - k_pos[None, :])
        probs = torch.softmax(scores.masked_fill(blocked, float("-inf")), dim=-1)
        out[:, :, h] = torch.einsum("bij,jbd->ibd", probs, v[:, :, group])
    return out.reshape(sq, b, n * d)


def _qkv(sq=10, sk=10, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(sq, b, HEADS, HEAD_DIM, generator=g)
    k = torch.randn(sk, b, GROUPS, HEAD_DIM, generator=g)
    v = torch.randn(sk, b, GROUPS, HEAD_DIM, generator=g)
    return q, k, v


def _core(position: str) -> SDPACoreAttention:
    return SDPACoreAttention(tiny_config(), 1, AttnMaskType.causal, "self", position=position)


@pytest.mark.parametrize("position", ["none", "alibi", "xpos"])
def test_core_attention_matches_reference(megatron_cpu, position):
    q, k, v = _qkv()
    got = _core(position)(q, k, v, None)
    assert got.shape == (10, 2, HEADS * HEAD_DIM) and got.dtype == torch.float32
    expected = reference_attention(q, k, v, position=position)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("position", ["none", "alibi", "xpos"])
def test_core_attention_honours_a_packed_mask(megatron_cpu, position):
    """Two documents packed in one row: the mask blocks attention across them, causality stays."""
    q, k, v = _qkv()
    doc = torch.tensor([0] * 4 + [1] * 6)
    mask = (doc[:, None] != doc[None, :]).expand(2, 1, 10, 10)  # [b, 1, sq, sk]
    got = _core(position)(q, k, v, mask)
    torch.testing.assert_close(got.double(), reference_attention(q, k, v, position=position, mask=mask),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("position", ["none", "alibi", "xpos"])
def test_core_attention_last_queries_align_to_last_keys(megatron_cpu, position):
    """sq < sk (decoding with a cache): the queries are the last positions, as in the full pass."""
    q, k, v = _qkv()
    attn = _core(position)
    full = attn(q, k, v, None)
    torch.testing.assert_close(attn(q[-3:], k, v, None), full[-3:], rtol=1e-5, atol=1e-5)


def test_core_attention_dropout_only_in_training(megatron_cpu):
    q, k, v = _qkv()
    attn = SDPACoreAttention(tiny_config(attention_dropout=0.5), 1, AttnMaskType.causal, "self",
                             position="alibi")
    attn.eval()
    expected = reference_attention(q, k, v, position="alibi")
    torch.testing.assert_close(attn(q, k, v, None).double(), expected, rtol=1e-5, atol=1e-5)
    attn.train()
    assert not torch.allclose(attn(q, k, v, None), attn.eval()(q, k, v, None))


def test_core_attention_spec_and_state():
    spec = core_attention_spec("xpos", rotary_base=500000, xpos_gamma=0.5, xpos_scale_base=1024)
    assert spec.module is SDPACoreAttention
    assert spec.params == {"position": "xpos", "rotary_base": 500000, "xpos_gamma": 0.5,
                           "xpos_scale_base": 1024}
    with pytest.raises(ValueError, match="position='rotary'"):
        core_attention_spec("rotary")


# ---------------------------------------------------------------- in a megatron-core GPTModel

def _gpt(position: str | None, embedding: str) -> GPTModel:
    spec = get_gpt_layer_local_spec()
    if position is not None:  # None: the stock DotProductAttention
        spec.submodules.self_attention.submodules.core_attention = core_attention_spec(position)
    return GPTModel(tiny_config(), transformer_layer_spec=spec, vocab_size=256, max_sequence_length=32,
                    position_embedding_type=embedding)


def _batch(b=2, s=16):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 256, (b, s + 1), generator=g)
    return tokens[:, :-1], torch.arange(s).expand(b, s), tokens[:, 1:]


@pytest.mark.parametrize("position,embedding", [("alibi", "none"), ("xpos", "none"), ("none", "rope"),
                                                ("rope", "none")])
def test_gpt_model_trains_with_each_position(megatron_cpu, position, embedding):
    model = _gpt(position, embedding)
    assert model.state_dict().keys() == _gpt(None, embedding).state_dict().keys()  # no extra weights
    assert model.sharded_state_dict().keys() == _gpt(None, embedding).sharded_state_dict().keys()
    tokens, positions, labels = _batch()
    loss = model(tokens, positions, None, labels=labels)  # [b, s]
    assert loss.shape == (2, 16) and torch.isfinite(loss).all()
    loss.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    qkv = model.decoder.layers[0].self_attention.linear_qkv.weight.grad
    assert qkv.abs().sum() > 0


@pytest.mark.parametrize("position,embedding", [("none", "rope"), ("rope", "none")],
                         ids=["megatron-rope-sdpa", "our-rope"])
def test_gpt_model_rope_equals_stock_attention(megatron_cpu, position, embedding):
    """Our core attention after megatron-core's RoPE, and RoPE applied in our core attention (compiled on
    GPU), both equal megatron-core's RoPE + DotProductAttention on the same weights."""
    stock, ours = _gpt(None, "rope"), _gpt(position, embedding)
    ours.load_state_dict(stock.state_dict(), strict=True)
    tokens, positions, _ = _batch()
    causal = torch.triu(torch.ones(1, 1, 16, 16, dtype=torch.bool), diagonal=1)
    with torch.no_grad():
        expected = stock(tokens, positions, causal)  # [b, s, vocab]
        got = ours(tokens, positions, None)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
