"""Position encodings applied inside attention: ALiBi and xPos, as pure torch functions.

RoPE and learned absolute embeddings are megatron-core's own (GPTModel's position_embedding_type);
these two have no megatron-core implementation, so SDPACoreAttention applies them.

- ALiBi: Press, Smith, Lewis 2022, "Train Short, Test Long: Attention with Linear Biases Enables Input
  Length Extrapolation", arXiv:2108.12409.
- xPos: Sun et al. 2022, "A Length-Extrapolatable Transformer", arXiv:2212.10554.
"""

import math

import torch

__all__ = ["alibi_slopes", "alibi_bias", "xpos_scale", "apply_xpos"]


def _geometric_slopes(n: int) -> list[float]:
    # n a power of two: 2^(-8 i / n), i = 1..n, so the last head's slope is always 2^-8
    return [2.0 ** (-8.0 * i / n) for i in range(1, n + 1)]


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Per-head ALiBi slopes [num_heads], float32, global head order (Press et al. 2022).

    For a head count that is not a power of two the paper's reference implementation takes the slopes
    of the closest power of two p below it, then every other slope (odd i) of 2p: the extra heads
    interpolate between the first p slopes instead of extending the sequence to very small slopes.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads={num_heads}: ALiBi needs at least one head")
    p = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = _geometric_slopes(p)
    slopes += _geometric_slopes(2 * p)[0::2][: num_heads - p]  # i = 1, 3, 5, ... of 2p
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(slopes: torch.Tensor, q_len: int, k_len: int) -> torch.Tensor:
    """Additive ALiBi bias [h, q_len, k_len] = -slope * (i - j), float32 like `slopes`.

    Query i sits at key position i + k_len - q_len (queries are the last q_len positions, as in
    incremental decoding with a KV cache). Entries with j > i are positive; causal masking removes them.
    """
    q_pos = torch.arange(k_len - q_len, k_len, device=slopes.device, dtype=slopes.dtype)  # [q_len]
    k_pos = torch.arange(k_len, device=slopes.device, dtype=slopes.dtype)  # [k_len]
    distance = q_pos[:, None] - k_pos[None, :]  # [q_len, k_len]
    return -slopes[:, None, None] * distance[None]  # [h, q_len, k_len]


def xpos_scale(positions: torch.Tensor, head_dim: int, gamma: float = 0.4,
               scale_base: float = 512) -> torch.Tensor:
    """xPos scale [s, head_dim // 2] = zeta_i ** (position / scale_base), float32.

    zeta_i = (2 i / head_dim + gamma) / (1 + gamma), i = 0..head_dim/2 - 1 (Sun et al. 2022):
    in (0, 1), so a query scaled by zeta^n and a key by zeta^-m meet with zeta^(n - m), a decay in the
    distance that is strongest for the fast-rotating (low i) dimensions.
    """
    if head_dim % 2:
        raise ValueError(f"head_dim={head_dim}: xPos rotates pairs of dimensions, it must be even")
    i = torch.arange(head_dim // 2, device=positions.device, dtype=torch.float32)  # [d/2]
    zeta = (2.0 * i / head_dim + gamma) / (1.0 + gamma)  # [d/2]
    power = positions.to(torch.float32)[:, None] / scale_base  # [s, 1]
    return zeta[None, :] ** power  # [s, d/2]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    # pairs (x_i, x_{i + d/2}) -> (-x_{i + d/2}, x_i): megatron-core's rotary_interleaved=False layout,
    # so an xPos model and a RoPE model put the same frequency on the same channels
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_xpos(x: torch.Tensor, positions: torch.Tensor, *, key: bool, rotary_base: float = 10000,
               gamma: float = 0.4, scale_base: float = 512) -> torch.Tensor:
    """Rotate x [s, b, n, d] by position * theta_i and scale it (queries) or unscale it (keys).

    theta_i = rotary_base^(-2 i / d). Rotation makes q_n . k_m depend on n - m (RoPE); the scale
    zeta^n on queries and zeta^-m on keys keeps that property and adds the decay (Sun et al. 2022).
    Computed in float32 (zeta^(s / scale_base) is far from 1 for long sequences) and cast back to
    x's dtype.
    """
    d = x.size(-1)
    pos = positions.to(device=x.device, dtype=torch.float32)  # [s]
    theta = rotary_base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)  # [d/2]
    angle = pos[:, None] * theta[None, :]  # [s, d/2]
    angle = torch.cat((angle, angle), dim=-1)[:, None, None, :]  # [s, 1, 1, d]
    scale = xpos_scale(pos, d, gamma, scale_base)  # [s, d/2]
    scale = torch.cat((scale, scale), dim=-1)[:, None, None, :]  # [s, 1, 1, d]
    if key:
        scale = scale.reciprocal()
    xf = x.float()
    rotated = xf * angle.cos() + _rotate_half(xf) * angle.sin()  # [s, b, n, d]
    return (rotated * scale).to(x.dtype)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, *, rotary_base: float = 10000) -> torch.Tensor:
    """RoPE (Su et al. 2021): rotate x [s, b, n, d] by position * theta_i, theta_i = rotary_base^(-2 i / d),
    in megatron-core's rotate-half layout (so it equals megatron-core's RotaryEmbedding +
    apply_rotary_pos_emb); float32 inside, x's dtype out. One short elementwise chain: torch.compile
    fuses it on GPU (training/model/attention.py), where the unfused chain cost ~75 ms of a 593 ms step."""
    d = x.size(-1)
    pos = positions.to(device=x.device, dtype=torch.float32)  # [s]
    theta = rotary_base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)  # [d/2]
    angle = pos[:, None] * theta[None, :]  # [s, d/2]
    angle = torch.cat((angle, angle), dim=-1)[:, None, None, :]  # [s, 1, 1, d]
    xf = x.float()
    return (xf * angle.cos() + _rotate_half(xf) * angle.sin()).to(x.dtype)  # [s, b, n, d]
