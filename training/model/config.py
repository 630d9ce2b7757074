"""The GPT model's settings, and the one translation to megatron-core's `TransformerConfig`.

Our config is small on purpose: the handful of choices that define a LLaMA-style or GPT-2-style
decoder. Everything else megatron-core can tune keeps the value this translation sets, stated here
once, so that no `get_args()` global and no 250-field config leaks into the rest of the code.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from schemas.config import setting

VOCAB_PAD_MULTIPLE = 128
"""Embedding rows are padded to a multiple of this (GPU-friendly shapes; Megatron-LM's default). It does
not depend on the tensor-parallel size, so a model has the same shapes at TP = 1, 2, 4 or 8."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ModelConfig:
    num_layers: int = setting(2, doc="transformer layers", ge=1)
    hidden_size: int = setting(64, doc="model width", ge=8)
    num_attention_heads: int = setting(4, doc="query heads", ge=1)
    num_query_groups: int | None = setting(None, doc="key/value heads (grouped-query attention); null = one per "
                                                     "query head", ge=1)
    ffn_hidden_size: int | None = setting(None, doc="MLP width; null = 4 * hidden (gelu) or LLaMA's "
                                                    "2/3 * 4 * hidden rounded up to a multiple of 256 (swiglu; LLaMA-7B: 11008)", ge=1)
    vocab_size: int | None = setting(None, doc="token ids the model knows; null = the tokenizer's vocabulary from "
                                               "the export manifest (padded to a multiple of 128)", ge=2)
    seq_length: int = setting(128, doc="tokens per training sample", unit="tokens", ge=2)
    max_position: int | None = setting(None, doc="longest sequence the position table holds (learned positions "
                                                 "only); null = seq_length", unit="tokens", ge=2)
    position: Literal["rope", "alibi", "xpos", "learned"] = setting(
        "rope", doc="position encoding: rope (LLaMA), alibi (Press et al. 2022), xpos (Sun et al. 2022), "
                    "learned absolute (GPT-2)")
    rotary_base: float = setting(10000.0, doc="RoPE / xPos base (theta)", gt=1)
    norm: Literal["rmsnorm", "layernorm"] = setting("rmsnorm", doc="normalization (pre-norm)")
    norm_epsilon: float = setting(1e-5, doc="epsilon of the normalization", gt=0)
    activation: Literal["swiglu", "gelu"] = setting("swiglu", doc="MLP activation")
    add_bias_linear: bool = setting(False, doc="biases in linear layers (GPT-2 yes, LLaMA no)")
    tie_embeddings: bool = setting(False, doc="share the input embedding and output layer weights")
    init_std: float = setting(0.02, doc="standard deviation of the normal weight init", gt=0)
    hidden_dropout: float = setting(0.0, doc="dropout after attention and MLP", ge=0, lt=1)
    attention_dropout: float = setting(0.0, doc="dropout on attention probabilities", ge=0, lt=1)

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                             f"{self.num_attention_heads}. Fix: choose heads that divide the width.")
        groups = self.query_groups
        if self.num_attention_heads % groups:
            raise ValueError(f"num_query_groups {groups} does not divide num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.position == "xpos" and (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("xpos rotates pairs of channels: the head size must be even")
        if self.max_position is not None and self.max_position < self.seq_length:
            raise ValueError(f"max_position {self.max_position} < seq_length {self.seq_length}")

    @property
    def query_groups(self) -> int:
        return self.num_query_groups or self.num_attention_heads

    @property
    def ffn_size(self) -> int:
        if self.ffn_hidden_size:
            return self.ffn_hidden_size
        if self.activation == "swiglu":  # LLaMA: 2/3 of 4h keeps the parameter count of a 4h GELU MLP; multiple_of 256
            return -(-(8 * self.hidden_size // 3) // 256) * 256
        return 4 * self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def padded_vocab_size(vocab_size: int, tensor_parallel: int = 1) -> int:
    """`vocab_size` rounded up to a multiple of VOCAB_PAD_MULTIPLE (and of the TP size, which must divide it)."""
    multiple = VOCAB_PAD_MULTIPLE
    if multiple % tensor_parallel:
        multiple *= tensor_parallel
    return -(-vocab_size // multiple) * multiple


def parameter_count(cfg: ModelConfig, vocab_size: int) -> dict[str, int]:
    """Parameters by part, counted from the shapes (the test compares with the built model)."""
    h, f, kv = cfg.hidden_size, cfg.ffn_size, cfg.query_groups * cfg.head_dim
    bias = cfg.add_bias_linear
    norm = h * (2 if cfg.norm == "layernorm" else 1)
    attn = h * (h + 2 * kv) + (h + 2 * kv if bias else 0) + h * h + (h if bias else 0)
    fc1_out = 2 * f if cfg.activation == "swiglu" else f
    mlp = h * fc1_out + (fc1_out if bias else 0) + f * h + (h if bias else 0)
    layers = cfg.num_layers * (attn + mlp + 2 * norm)
    embedding = vocab_size * h
    positions = (cfg.max_position or cfg.seq_length) * h if cfg.position == "learned" else 0
    output = 0 if cfg.tie_embeddings else vocab_size * h
    total = layers + norm + embedding + positions + output
    return {"total": total, "non_embedding": layers + norm, "embedding": embedding + positions + output}


def flops_per_token(cfg: ModelConfig, vocab_size: int) -> float:
    """Training FLOPs per token (forward + backward = 3 x forward), counting matrix multiplies only.

    Forward, per layer and token: 2 * h * (h + 2 kv) for the QKV projection, 2 * h * h for the output
    projection, 2 * 2 * s * h for QK^T and attention x V over all s positions (causal masking not
    discounted, as Megatron-LM's and PaLM's MFU count it), 2 * h * f per MLP matrix (3 matrices for
    SwiGLU, 2 for GELU); plus 2 * h * V for the logits. Norms, softmax and activations are left out.
    """
    h, s, f, kv = cfg.hidden_size, cfg.seq_length, cfg.ffn_size, cfg.query_groups * cfg.head_dim
    mlp_mats = 3 if cfg.activation == "swiglu" else 2
    per_layer = 2 * h * (h + 2 * kv) + 2 * h * h + 4 * s * h + mlp_mats * 2 * h * f
    return 3.0 * (cfg.num_layers * per_layer + 2 * h * vocab_size)


def to_transformer_config(cfg: ModelConfig, *, tensor_parallel: int, pipeline_parallel: int,
                          on_gpu: bool):
    """The one translation of our settings to megatron-core's TransformerConfig.

    Parameters stay float32 (master weights); bf16 runs through torch autocast around the forward, so
    the optimizer never sees low-precision weights. The fused kernels are on only on GPU (they are CUDA
    or Apex code); on CPU megatron-core falls back to plain torch.
    """
    import torch
    from megatron.core.transformer.transformer_config import TransformerConfig

    activation = torch.nn.functional.silu if cfg.activation == "swiglu" else torch.nn.functional.gelu
    return TransformerConfig(
        num_layers=cfg.num_layers,
        hidden_size=cfg.hidden_size,
        num_attention_heads=cfg.num_attention_heads,
        num_query_groups=cfg.query_groups,
        ffn_hidden_size=cfg.ffn_size,
        kv_channels=cfg.head_dim,
        normalization="RMSNorm" if cfg.norm == "rmsnorm" else "LayerNorm",
        layernorm_epsilon=cfg.norm_epsilon,
        activation_func=activation,
        gated_linear_unit=cfg.activation == "swiglu",
        add_bias_linear=cfg.add_bias_linear,
        add_qkv_bias=cfg.add_bias_linear,
        hidden_dropout=cfg.hidden_dropout,
        attention_dropout=cfg.attention_dropout,
        init_method_std=cfg.init_std,
        tensor_model_parallel_size=tensor_parallel,
        pipeline_model_parallel_size=pipeline_parallel,
        params_dtype=torch.float32,
        pipeline_dtype=torch.float32,
        # Identical master weights at any TP size: each rank takes its slice of the full initialized matrix.
        use_cpu_initialization=True,
        bias_activation_fusion=on_gpu and cfg.activation == "swiglu" and not cfg.add_bias_linear,
        bias_dropout_fusion=on_gpu,
        masked_softmax_fusion=False,
        persist_layer_norm=False,
        apply_rope_fusion=False,
        gradient_accumulation_fusion=False,
    )
