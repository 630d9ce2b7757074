"""A GPT trunk with a scalar head: the reward model (and PPO's value model).

    tokens [b, s] -> megatron-core GPTModel without its output layer (post_process=False) -> hidden [s, b, h]
    -> final norm -> Linear(h, 1) -> one scalar per token [b, s]

InstructGPT's reward model (Ouyang et al. 2022, section 3.5) is the SFT model with its unembedding layer
replaced by a projection to a scalar; the reward of a (prompt, answer) is the scalar at the answer's
last token (`scores_at_last_token`). The per-token values are kept so that PPO's value model can use
the same class.

The trunk's final norm lives in GPTModel only when it has an output layer, so the head brings its own
norm and copies the pretrained one in `init_trunk_from_checkpoint`. The head runs in float32 under bf16
autocast: the reward differences the loss sees are small, and rounding them to bf16 (8 bits of
mantissa) would be noise of the same size.

Checkpoints: `sharded_state_dict` is megatron-core's default recursion (the trunk's pieces under
`trunk.`, the norm and head as pieces replicated over TP and DP), so training/loop/checkpoint.py saves,
reshards and loads this model like a GPT. Pipeline parallelism is not supported: the head would sit on
the last stage, and the reward loss is not a per-token loss the pipeline schedule can carry.
"""

from __future__ import annotations

from typing import Any

import torch
from megatron.core.transformer.module import MegatronModule

from training.model.config import ModelConfig


class ScalarHeadGPT(MegatronModule):
    """GPT trunk + final norm + Linear(h, 1); forward -> per-token scalars [b, s] (float32). Parallel state
    must be set up with PP = 1. `vocab_size` is the padded size (training.model.config.padded_vocab_size);
    with `seed`, every weight (head included) is drawn layout-independently (training/model/init.py)."""

    def __init__(self, cfg: ModelConfig, *, vocab_size: int, tensor_parallel: int = 1, on_gpu: bool = False,
                 seed: int | None = None):
        from training.model.gpt import build_gpt
        from training.model.init import init_weights

        trunk = build_gpt(cfg, vocab_size=vocab_size, tensor_parallel=tensor_parallel, pipeline_parallel=1,
                          pre_process=True, post_process=False, on_gpu=on_gpu, seed=None)
        super().__init__(config=trunk.config)
        self.model_config = cfg
        self.vocab_size = vocab_size
        self.trunk = trunk
        norm = torch.nn.RMSNorm if cfg.norm == "rmsnorm" else torch.nn.LayerNorm
        self.final_norm = norm(cfg.hidden_size, eps=cfg.norm_epsilon)
        self.score = torch.nn.Linear(cfg.hidden_size, 1, bias=True)
        if seed is not None:
            # one init for the whole model, keyed by each tensor's name: the head's weight normal(0, init_std),
            # its bias 0, the norm's scale 1
            init_weights(self, seed=seed, std=cfg.init_std, num_layers=cfg.num_layers)

    def set_input_tensor(self, tensor) -> None:
        raise NotImplementedError("ScalarHeadGPT runs as one pipeline stage (parallel.pipeline: 1)")

    def forward(self, tokens, position_ids, attention_mask=None):
        """tokens, position_ids [b, s]; attention_mask None (causal) or bool [b, 1, s, s], True = masked
        -> per-token scalars [b, s], float32."""
        hidden = self.trunk(tokens, position_ids, attention_mask)  # [s, b, h]
        with torch.autocast(device_type="cuda" if hidden.is_cuda else "cpu", enabled=False):
            values = self.score(self.final_norm(hidden.float()))  # [s, b, 1]
        return values.squeeze(-1).transpose(0, 1).contiguous()  # [b, s]


def scores_at_last_token(values, nonpad):
    """values [b, s], nonpad bool [b, s] (True = a real token, left or right padding) -> values [b] at each
    row's last real token."""
    if not bool(nonpad.any(dim=1).all()):
        raise ValueError("a sequence without any real token has no last token to score")
    positions = torch.arange(nonpad.size(1), device=nonpad.device).expand_as(nonpad)  # [b, s]
    last = torch.where(nonpad, positions, torch.full_like(positions, -1)).max(dim=1).values  # [b]
    return values.gather(1, last[:, None]).squeeze(1)


def init_trunk_from_checkpoint(model: ScalarHeadGPT, checkpoint: str, *, on_gpu: bool = False) -> dict[str, Any]:
    """Fill `model`'s trunk and final norm from a GPT checkpoint folder (pretraining or SFT, a checkpoints/step-N
    folder); the GPT's output layer is dropped and the scalar head keeps its own init. Returns the checkpoint's
    meta. The GPT is built on this rank with the same layout, loaded with the resharding loader, then copied."""
    from training.loop.checkpoint import load_checkpoint
    from training.model.gpt import build_gpt

    gpt = build_gpt(model.model_config, vocab_size=model.vocab_size,
                    tensor_parallel=model.config.tensor_model_parallel_size, pipeline_parallel=1,
                    on_gpu=on_gpu).to(next(model.parameters()).device)
    meta = load_checkpoint(checkpoint, gpt)
    full = gpt.state_dict()
    trunk = {k: v for k, v in full.items() if not k.startswith(("output_layer.", "decoder.final_layernorm."))}
    missing, unexpected = model.trunk.load_state_dict(trunk, strict=False)
    missing = [k for k in missing if not k.endswith("_extra_state")]
    if missing or unexpected:
        raise ValueError(f"{checkpoint}: the GPT does not fit the trunk: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    norm = {k.removeprefix("decoder.final_layernorm."): v for k, v in full.items()
            if k.startswith("decoder.final_layernorm.") and not k.endswith("_extra_state")}
    with torch.no_grad():
        model.final_norm.load_state_dict(norm, strict=True)
    del gpt
    return meta
