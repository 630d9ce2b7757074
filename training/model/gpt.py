"""Build megatron-core's GPTModel from layer specs (a layer composition as data).

The layer spec is megatron-core's local one (plain torch) on CPU, TransformerEngine's where TE is
installed and a GPU runs. Its core attention is swapped for ours (training/model/attention.py,
torch's scaled_dot_product_attention) where megatron-core has no equivalent: ALiBi and xPos, and the
local spec everywhere (SDPA reaches the flash / memory-efficient kernels on GPU; megatron's local
DotProductAttention materializes the full score matrix).
"""

from __future__ import annotations

import copy

from training.model.config import ModelConfig, to_transformer_config
from training.model.init import init_weights

POSITION_EMBEDDING = {"rope": "none", "learned": "learned_absolute", "alibi": "none", "xpos": "none"}
"""Our position setting -> GPTModel's position_embedding_type on the local spec: RoPE, ALiBi and xPos live
in our core attention (RoPE there is compiled into one kernel on GPU). TE's spec keeps megatron-core's
RoPE (TE fuses it)."""


def transformer_engine_available() -> bool:
    try:
        import transformer_engine  # noqa: F401
    except ImportError:
        return False
    return True


def layer_spec(cfg: ModelConfig, *, use_te: bool):
    """The transformer layer's ModuleSpec for this config."""
    from megatron.core.models.gpt import gpt_layer_specs

    from training.model.attention import core_attention_spec

    norm = "RMSNorm" if cfg.norm == "rmsnorm" else "LayerNorm"
    if use_te:
        spec = gpt_layer_specs.get_gpt_layer_with_transformer_engine_spec(normalization=norm)
        if cfg.position in ("rope", "learned"):
            return spec  # TE's fused attention already does these
    else:
        spec = gpt_layer_specs.get_gpt_layer_local_spec(normalization=norm)
    spec = copy.deepcopy(spec)
    ours = "none" if cfg.position == "learned" else cfg.position
    spec.submodules.self_attention.submodules.core_attention = core_attention_spec(
        ours, rotary_base=cfg.rotary_base)
    return spec


def _norm_in_compute_dtype(model) -> None:
    """Under bf16 autocast the hidden states are bf16 while norm weights stay fp32; torch's RMSNorm then
    falls back to unfused fp32 kernels (measured on an H200: 593 -> 471 ms per step of a 370M model once
    the weight is cast to the input's dtype in the forward). The parameter itself stays fp32."""
    import torch

    class RMSNormInInputDtype(torch.nn.RMSNorm):
        def forward(self, x):
            weight = self.weight
            if weight is not None and weight.dtype != x.dtype:
                weight = weight.to(x.dtype)
            return torch.nn.functional.rms_norm(x, self.normalized_shape, weight, self.eps)

    for module in model.modules():
        if type(module) is torch.nn.RMSNorm:
            module.__class__ = RMSNormInInputDtype


def build_gpt(cfg: ModelConfig, *, vocab_size: int, tensor_parallel: int = 1, pipeline_parallel: int = 1,
              pre_process: bool = True, post_process: bool = True, on_gpu: bool = False, seed: int | None = None,
              use_te: bool | None = None):
    """A GPTModel on this rank (its tensor-parallel slice and pipeline stage); parallel state must be set up.

    `vocab_size` is the padded size (training.model.config.padded_vocab_size). With `seed`, the weights are
    drawn layout-independently (training/model/init.py): the same model at any TP x PP size. `use_te` False
    keeps our core attention even where TransformerEngine is installed: it honours a given attention_mask
    (packed SFT rows), which TE's causal attention ignores.
    """
    from megatron.core.models.gpt.gpt_model import GPTModel

    use_te = on_gpu and transformer_engine_available() and use_te is not False
    config = to_transformer_config(cfg, tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel,
                                   on_gpu=on_gpu)
    model = GPTModel(
        config=config,
        transformer_layer_spec=layer_spec(cfg, use_te=use_te),
        vocab_size=vocab_size,
        max_sequence_length=cfg.max_position or cfg.seq_length,
        pre_process=pre_process,
        post_process=post_process,
        share_embeddings_and_output_weights=cfg.tie_embeddings,
        position_embedding_type="rope" if use_te and cfg.position == "rope" else POSITION_EMBEDDING[cfg.position],
        rotary_base=int(cfg.rotary_base),
    )
    if seed is not None:
        init_weights(model, seed=seed, std=cfg.init_std, num_layers=cfg.num_layers)
    if on_gpu and not use_te:
        _norm_in_compute_dtype(model)
    return model
