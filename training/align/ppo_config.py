"""A PPO config (InstructGPT's RLHF step), loaded strictly like every training config.

    refinery train ppo jobs/ppo_tiny.yaml --set ppo.iterations=20

Policy and reference start from an SFT run (any run folder of GPT checkpoints: a pretraining run serves
too); the reward is a reward-model run's score, or a documented simple function for tests; the value
model starts from the reward model (or, with a function reward, from the policy's trunk with a new
head). The pretraining-loss term (PPO-ptx) draws batches from a `refinery export megatron` folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Literal


from schemas.config import config_from_dict, setting
from training.loop.config import OutputConfig, ParallelConfig, config_json_schema, load_config_file

INSTRUCTGPT_PTX_COEF = 27.8
"""gamma_ptx of InstructGPT's PPO-ptx models (Ouyang et al. 2022, appendix C.4)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PolicyConfig:
    sft: str = setting(doc="SFT run folder (its checkpoints/latest) or a checkpoints/step-N folder: the policy and the "
                           "frozen reference start from it (a pretraining run folder works too)")
    tokenizer: str = setting(doc="tokenizer folder the SFT model was trained with (`refinery tokenizer train`)")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RewardConfig:
    kind: Literal["model", "token_fraction"] = setting(
        "model", doc="model = the score of a reward-model run on the last response token; token_fraction = the "
                     "fraction of response tokens equal to `token` (a known reward for tests and smoke runs)")
    model: str | None = setting(None, doc="reward-model run folder or checkpoints/step-N folder (kind: model)")
    token: str | None = setting(None, doc="text that encodes to exactly one token (kind: token_fraction)")

    def __post_init__(self):
        if self.kind == "model" and not self.model:
            raise ValueError("reward.kind model needs reward.model: the reward-model run folder")
        if self.kind == "token_fraction" and not self.token:
            raise ValueError("reward.kind token_fraction needs reward.token: a text that is one token, e.g. ' the'")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DataConfig:
    prompts: str = setting(doc="prompts: a .jsonl file (rows with a `prompt`, or `messages` whose trailing assistant "
                               "turn is dropped: SFT and preference files work) or a text file, one per line")
    chat_template: bool = setting(True, doc="prompts go through the SFT chat template (User: ...\\nAssistant:); false "
                                            "= the prompt text as is (a pretrained model as the policy)")
    max_prompt_tokens: int = setting(64, doc="prompts are cut to their last this many tokens", unit="tokens", ge=1)
    ptx_export_dir: str | None = setting(None, doc="`refinery export megatron` folder of the pretraining data: the "
                                                   "source of PPO-ptx batches and of the pretraining validation loss")
    ptx_mixture: str = setting("natural", doc="mixture of the ptx batches: natural, uniform, llama1 or a weights file")
    ptx_split: str = setting("98,1,1", doc="train,valid,test shares of each domain's documents (as in pretraining)")
    ptx_seq_length: int | None = setting(None, doc="tokens per ptx sample; null = the policy's seq_length",
                                         unit="tokens", ge=2)
    ptx_batch_size: int = setting(8, doc="pretraining samples per optimizer step over all ranks", unit="samples",
                                  ge=1)
    valid_samples_per_domain: int = setting(8, doc="fixed validation samples per domain for the pretraining loss",
                                            unit="samples", ge=1)
    share_tolerance: float = setting(0.05, doc="largest allowed |realized token share - weight| of the ptx blend",
                                     gt=0, le=1)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SamplingSettings:
    max_new_tokens: int = setting(32, doc="response tokens per prompt (fewer when EOD is drawn)", unit="tokens", ge=1)
    temperature: float = setting(1.0, doc="rollout temperature; log-probabilities (ratio and KL) are taken at it too",
                                 gt=0)
    top_p: float = setting(1.0, doc="nucleus sampling mass (1 = off)", gt=0, le=1)
    top_k: int = setting(0, doc="top-k sampling (0 = off)", ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PPOSettings:
    iterations: int = setting(100, doc="rollout + update rounds", unit="iterations", ge=1)
    rollout_batch_size: int = setting(16, doc="prompts sampled per iteration over all ranks", unit="samples", ge=1)
    epochs: int = setting(2, doc="passes over each rollout batch", ge=1)
    minibatches: int = setting(1, doc="optimizer steps per epoch (the rollout batch split into this many)", ge=1)
    micro_batch_size: int = setting(8, doc="sequences per forward/backward on one rank", unit="samples", ge=1)
    clip: float = setting(0.2, doc="policy ratio clip epsilon (Schulman et al. 2017)", gt=0, lt=1)
    value_clip: float = setting(0.2, doc="value clip: a new value stays within this of the rollout's", gt=0)
    gamma: float = setting(1.0, doc="discount of GAE", ge=0, le=1)
    lam: float = setting(0.95, doc="lambda of GAE", ge=0, le=1)
    whiten_advantages: bool = setting(True, doc="advantages whitened over the global rollout batch")
    kl_beta: float = setting(0.02, doc="KL coefficient beta (initial value when kl_target is set)", ge=0)
    kl_target: float | None = setting(None, doc="target KL per response (nats) of Ziegler et al.'s adaptive "
                                                "controller; null = beta fixed", gt=0)
    kl_horizon: float = setting(10000.0, doc="adaptive controller horizon", unit="samples", gt=0)
    kl_k_beta: float = setting(0.1, doc="adaptive controller gain K_beta", gt=0)
    ptx_coef: float = setting(0.0, doc="gamma_ptx: weight of the pretraining loss (0 = plain PPO; InstructGPT's "
                                       "PPO-ptx: 27.8)", ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PPOOptimizerConfig:
    lr: float = setting(1e-5, doc="policy learning rate (constant after warmup)", gt=0)
    value_lr: float = setting(1e-5, doc="value model learning rate", gt=0)
    warmup_steps: int = setting(0, doc="linear warmup of both rates", unit="optimizer steps", ge=0)
    weight_decay: float = setting(0.0, doc="AdamW decoupled weight decay (matrices only)", ge=0)
    beta1: float = setting(0.9, doc="AdamW beta1", ge=0, lt=1)
    beta2: float = setting(0.95, doc="AdamW beta2", ge=0, lt=1)
    eps: float = setting(1e-8, doc="AdamW epsilon", gt=0)
    clip_grad: float = setting(1.0, doc="clip each model's global gradient norm to this (0 = no clipping)", ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RunSettings:
    seed: int = setting(1234, doc="seed of prompt order, sampling, minibatch order and a new value head", ge=0)
    log_interval: int = setting(1, doc="iterations between progress-bar updates", unit="iterations", ge=1)
    eval_interval: int = setting(10, doc="iterations between pretraining validation losses (and at 0 and the end)",
                                 unit="iterations", ge=1)
    save_interval: int = setting(10, doc="iterations between checkpoints (and at the end)", unit="iterations", ge=1)
    keep_checkpoints: int = setting(2, doc="checkpoints kept", ge=1)
    precision: Literal["auto", "fp32", "bf16"] = setting("auto", doc="auto = bf16 autocast on GPU, fp32 on CPU")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PPOConfig:
    policy: PolicyConfig = setting(doc="the SFT model and its tokenizer")
    reward: RewardConfig = setting(doc="where the reward comes from")
    data: DataConfig = setting(doc="prompts and pretraining batches")
    sampling: SamplingSettings = setting(SamplingSettings(), doc="rollout sampling")
    ppo: PPOSettings = setting(PPOSettings(), doc="PPO's batch sizes, clips, GAE, KL and ptx coefficients")
    optimizer: PPOOptimizerConfig = setting(PPOOptimizerConfig(), doc="AdamW of the policy and of the value model")
    run: RunSettings = setting(RunSettings(), doc="seed, intervals, precision")
    parallel: ParallelConfig = setting(ParallelConfig(), doc="layout: data parallel only (TP = PP = 1)")
    output: OutputConfig = setting(doc="run folder: resolved config, metrics.jsonl, checkpoints/, summary.json")

    def __post_init__(self):
        p, o = self.parallel, self.ppo
        if p.tensor != 1 or p.pipeline != 1:
            raise ValueError(f"parallel: PPO runs data-parallel only (TP {p.tensor}, PP {p.pipeline} given): rollouts "
                             f"use the single-rank sampler, which needs whole logits on one rank. Fix: tensor: 1, "
                             f"pipeline: 1, and scale with parallel.data")
        if o.rollout_batch_size % (p.data * o.minibatches):
            raise ValueError(f"ppo.rollout_batch_size {o.rollout_batch_size} is not a multiple of parallel.data x "
                             f"ppo.minibatches = {p.data * o.minibatches}")
        if self.data.ptx_batch_size % p.data:
            raise ValueError(f"data.ptx_batch_size {self.data.ptx_batch_size} is not a multiple of parallel.data {p.data}")
        if o.ptx_coef > 0 and not self.data.ptx_export_dir:
            raise ValueError(f"ppo.ptx_coef {o.ptx_coef} needs data.ptx_export_dir (the pretraining export)")

    @property
    def samples_per_rank(self) -> int:
        return self.ppo.rollout_batch_size // self.parallel.data


def parse_ppo_config(data: Any, where: str = "config") -> PPOConfig:
    return config_from_dict(PPOConfig, data, where)


def load_ppo_config(path: str, overrides: list[str] = ()) -> PPOConfig:
    return load_config_file(PPOConfig, path, overrides)


def ppo_identity(cfg: PPOConfig) -> str:
    """Digest of what decides the trajectory: a run folder refuses to resume under another. The layout, the
    micro-batch size, intervals and the iteration count (a run may be extended) are left out."""
    d = json.loads(json.dumps(dataclasses.asdict(cfg)))
    for volatile in ("parallel", "output"):
        d.pop(volatile)
    for key in ("log_interval", "eval_interval", "save_interval", "keep_checkpoints"):
        d["run"].pop(key)
    for key in ("iterations", "micro_batch_size"):
        d["ppo"].pop(key)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def ppo_json_schema() -> dict[str, Any]:
    return config_json_schema(PPOConfig, "ppo", "PPO")


if __name__ == "__main__":
    print(json.dumps(ppo_json_schema(), indent=2))
