"""Core attention for megatron-core's layer spec: torch SDPA with ALiBi / xPos applied inside.

SDPACoreAttention replaces megatron-core's DotProductAttention as SelfAttention's `core_attention`
submodule (same constructor and forward). It exists because megatron-core applies only RoPE and
learned positions; ALiBi is a bias on the scores and xPos a per-position scale of q and k, both of
which belong where the scores are made. SDPA picks flash / memory-efficient kernels on GPU and runs on
CPU, without the [b, n, sq, sk] probabilities DotProductAttention keeps. ALiBi still builds an
[n, sq, sk] bias per call, and a bias rules out the flash kernel (memory-efficient runs instead).
"""

import contextlib
import math
from typing import Optional

import torch
import torch.nn.functional as F
from megatron.core import tensor_parallel
from megatron.core.packed_seq_params import PackedSeqParams
from megatron.core.process_groups_config import ProcessGroupCollection
from megatron.core.transformer.enums import AttnMaskType
from megatron.core.transformer.module import MegatronModule
from megatron.core.transformer.spec_utils import ModuleSpec
from megatron.core.transformer.transformer_config import TransformerConfig
from megatron.core.utils import divide, get_pg_rank, get_pg_size

from training.model.positions import alibi_bias, alibi_slopes, apply_rope, apply_xpos

POSITIONS = ("none", "rope", "alibi", "xpos")
_CAUSAL_TYPES = (AttnMaskType.causal, AttnMaskType.padding_causal)


def alibi_slopes_for_rank(num_heads: int, tp_rank: int, tp_size: int) -> torch.Tensor:
    """Slopes [num_heads // tp_size] of the heads a tensor-parallel rank holds.

    ColumnParallelLinear gives rank r the global heads [r * n_local, (r + 1) * n_local), so the
    slopes are the same slice of the global sequence: a model is the same model at any TP size.
    """
    n_local = divide(num_heads, tp_size)
    return alibi_slopes(num_heads)[tp_rank * n_local:(tp_rank + 1) * n_local]


class SDPACoreAttention(MegatronModule):
    """Drop-in for megatron-core's DotProductAttention, plus `position` = none | rope | alibi | xpos.

    "none": positions are handled outside (megatron-core's RoPE in SelfAttention, or learned embeddings);
    "rope": RoPE applied here to q and k, fused by torch.compile on GPU.
    """

    def __init__(self, config: TransformerConfig, layer_number: int, attn_mask_type: AttnMaskType,
                 attention_type: str, attention_dropout: Optional[float] = None,
                 softmax_scale: Optional[float] = None, cp_comm_type: Optional[str] = None,
                 pg_collection: Optional[ProcessGroupCollection] = None, *, position: str,
                 rotary_base: float = 10000, xpos_gamma: float = 0.4, xpos_scale_base: float = 512):
        super().__init__(config=config)
        if position not in POSITIONS:
            raise ValueError(f"position={position!r}: expected one of {', '.join(POSITIONS)}")
        # What DotProductAttention supports and we do not: fail at build time, not in a silent variant.
        if config.context_parallel_size != 1:
            raise ValueError("SDPACoreAttention does not split sequences: set context_parallel_size=1")
        if config.softmax_type != "vanilla":
            raise ValueError(f"softmax_type={config.softmax_type!r}: SDPA has only the vanilla softmax")
        if config.window_size is not None:
            raise ValueError("window_size is set: sliding-window attention is not implemented here")
        self.layer_number = max(1, layer_number)
        self.attn_mask_type = attn_mask_type
        self.attention_type = attention_type
        self.position = position
        self.rotary_base = rotary_base
        self.xpos_gamma, self.xpos_scale_base = xpos_gamma, xpos_scale_base

        if pg_collection is None:
            pg_collection = ProcessGroupCollection.use_mpu_process_groups(required_pgs=["tp"])
        self.pg_collection = pg_collection
        tp_size, tp_rank = get_pg_size(pg_collection.tp), get_pg_rank(pg_collection.tp)
        self.num_heads_per_partition = divide(config.num_attention_heads, tp_size)
        self.num_groups_per_partition = divide(config.num_query_groups, tp_size)
        self.head_dim = config.kv_channels
        # apply_query_key_layer_scaling divides and re-multiplies the scores by layer_number in
        # DotProductAttention: a no-op on the result, so it is not reproduced here.
        self.softmax_scale = 1.0 / math.sqrt(self.head_dim) if softmax_scale is None else softmax_scale
        self.dropout_p = config.attention_dropout if attention_dropout is None else attention_dropout
        # A plain attribute, not a buffer: Float16Module casts buffers to bf16, which would round the
        # slopes of non-power-of-two head counts. Moved to the compute device on first use.
        self.alibi_slopes = (alibi_slopes_for_rank(config.num_attention_heads, tp_rank, tp_size)
                             if position == "alibi" else None)
        self._compiled_rope = None

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: Optional[torch.Tensor], attn_mask_type: Optional[AttnMaskType] = None,
                attention_bias: Optional[torch.Tensor] = None,
                packed_seq_params: Optional[PackedSeqParams] = None) -> torch.Tensor:
        """q [sq, b, np, hn], k/v [sk, b, ng, hn], attention_mask bool, True = masked -> [sq, b, np*hn]."""
        assert packed_seq_params is None, "packed sequences: give a block-diagonal attention_mask"
        assert attention_bias is None, "attention_bias is not supported (as in DotProductAttention)"
        sq, b, n, hn = query.shape
        sk = key.size(0)
        causal = (attn_mask_type or self.attn_mask_type) in _CAUSAL_TYPES

        if self.position == "rope":
            k_pos = torch.arange(sk, device=query.device)  # [sk]; queries are the last sq positions
            rotate = self._rope_kernel(query)
            query = rotate(query, k_pos[sk - sq:], rotary_base=self.rotary_base)
            key = rotate(key, k_pos, rotary_base=self.rotary_base)
        if self.position == "xpos":
            # keys at 0..sk-1, queries the last sq of them (sk > sq only when decoding with a cache)
            k_pos = torch.arange(sk, device=query.device)  # [sk]
            xpos = dict(rotary_base=self.rotary_base, gamma=self.xpos_gamma,
                        scale_base=self.xpos_scale_base)
            query = apply_xpos(query, k_pos[sk - sq:], key=False, **xpos)
            key = apply_xpos(key, k_pos, key=True, **xpos)

        groups = n // key.size(2)
        if groups > 1:  # GQA: each of the ng key/value heads serves n / ng consecutive query heads
            key = key.repeat_interleave(groups, dim=2)
            value = value.repeat_interleave(groups, dim=2)

        # [s, b, n, hn] -> [b, n, s, hn], SDPA's layout
        q, k, v = (t.permute(1, 2, 0, 3) for t in (query, key, value))
        # SDPA's is_causal aligns the causal band to the top-left corner, right only when sq == sk;
        # a given mask or the ALiBi bias needs an explicit mask anyway, which then carries causality.
        explicit = attention_mask is not None or self.position == "alibi" or (causal and sq != sk)
        mask = self._sdpa_mask(attention_mask, causal, sq, sk, query) if explicit else None
        dropout_p = self.dropout_p if self.training else 0.0
        # the RNG stream DotProductAttention draws attention dropout from: the model-parallel one
        # (different per TP rank, whose heads differ), except under sequence parallelism
        fork = dropout_p > 0.0 and not self.config.sequence_parallel
        with tensor_parallel.get_cuda_rng_tracker().fork() if fork else contextlib.nullcontext():
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                                 is_causal=causal and not explicit,
                                                 scale=self.softmax_scale)
        return out.permute(2, 0, 1, 3).reshape(sq, b, n * hn)  # [b, n, sq, hn] -> [sq, b, n*hn]

    def _rope_kernel(self, query: torch.Tensor):
        """apply_rope, compiled into one fused kernel on GPU (torch.compile; eager where Triton is missing)."""
        if not query.is_cuda:
            return apply_rope
        if self._compiled_rope is None:
            try:
                import triton  # noqa: F401  torch.compile's GPU backend

                self._compiled_rope = torch.compile(apply_rope, dynamic=False)
            except ImportError:
                self._compiled_rope = apply_rope
        return self._compiled_rope

    def _sdpa_mask(self, attention_mask: Optional[torch.Tensor], causal: bool, sq: int, sk: int,
                   query: torch.Tensor) -> torch.Tensor:
        """A bool mask (True = attend, SDPA's convention) or, for ALiBi, an additive float mask."""
        device = query.device
        allowed = torch.ones(sq, sk, dtype=torch.bool, device=device)  # [sq, sk]
        if causal:  # query i sits at key position i + sk - sq
            allowed = torch.tril(allowed, diagonal=sk - sq)
        if attention_mask is not None:
            allowed = allowed & ~attention_mask.to(device=device, dtype=torch.bool)  # [.., sq, sk]
        if self.position != "alibi":
            return allowed
        if self.alibi_slopes.device != device:
            self.alibi_slopes = self.alibi_slopes.to(device)
        bias = alibi_bias(self.alibi_slopes, sq, sk)  # [n, sq, sk], float32
        # Built in float32, rounded once to the compute dtype (SDPA wants the mask in q's dtype).
        # A row with every key masked: torch 2.13's CPU path gives zeros, GPU kernels promise
        # nothing, so callers keep each query's own position unmasked.
        return bias.masked_fill(~allowed, float("-inf")).to(query.dtype)  # [(b,) n, sq, sk]

    def sharded_state_dict(self, prefix: str = "", sharded_offsets: tuple = (),
                           metadata: Optional[dict] = None) -> dict:
        """No parameters: ALiBi slopes and xPos scales are recomputed, never checkpointed."""
        return {}


def core_attention_spec(position: str, *, rotary_base: float = 10000, xpos_gamma: float = 0.4,
                        xpos_scale_base: float = 512) -> ModuleSpec:
    """The ModuleSpec to put at SelfAttention's submodules.core_attention."""
    if position not in POSITIONS:
        raise ValueError(f"position={position!r}: expected one of {', '.join(POSITIONS)}")
    return ModuleSpec(module=SDPACoreAttention,
                      params={"position": position, "rotary_base": rotary_base,
                              "xpos_gamma": xpos_gamma, "xpos_scale_base": xpos_scale_base})
