"""A pretraining config: data, model, optimizer, schedule, parallelism and output, loaded strictly.

    refinery train pretrain jobs/pretrain_tiny.yaml --set schedule.train_steps=50

The YAML is read with the job-file machinery (schemas.config): an unknown key, a wrong type or a value
out of range is an error that names the field, the value and the fix. Relative paths are read from
the working directory (where `runs/` lies), as `output: runs` is in job files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Literal

import yaml

from schemas.config import ConfigError, apply_overrides, config_from_dict, dataclass_schema, setting
from training.model.config import ModelConfig


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DataConfig:
    export_dir: str = setting(doc="folder written by `refinery export megatron` (manifest.json, .bin/.idx per domain)")
    mixture: str = setting("natural", doc="mixture weights: natural (token share of the export), uniform, llama1 "
                                          "(LLaMA-1 Table 1), or the path of a mixture-weights JSON file")
    split: str = setting("98,1,1", doc="train,valid,test shares of each domain's documents (megatron-core's split)")
    valid_samples_per_domain: int = setting(16, doc="fixed validation samples drawn from each domain's valid split",
                                            unit="samples", ge=1)
    share_tolerance: float = setting(0.02, doc="largest allowed |realized token share - weight| per domain",
                                     gt=0, le=1)

    def __post_init__(self):
        parts = self.split.split(",")
        if len(parts) != 3 or not all(p.strip().replace(".", "", 1).isdigit() for p in parts):
            raise ValueError(f"split {self.split!r}: expected three numbers 'train,valid,test', e.g. '98,1,1'")
        if float(parts[1]) <= 0:
            raise ValueError(f"split {self.split!r}: the valid share must be > 0 (validation is per domain)")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class OptimizerConfig:
    lr: float = setting(3e-4, doc="peak learning rate", gt=0)
    min_lr: float = setting(3e-5, doc="learning rate at the end of the cosine decay", ge=0)
    weight_decay: float = setting(0.1, doc="AdamW decoupled weight decay (matrices only; not biases or norms)", ge=0)
    beta1: float = setting(0.9, doc="AdamW beta1", ge=0, lt=1)
    beta2: float = setting(0.95, doc="AdamW beta2 (LLaMA-1)", ge=0, lt=1)
    eps: float = setting(1e-8, doc="AdamW epsilon", gt=0)
    clip_grad: float = setting(1.0, doc="clip the global gradient norm to this (0 = no clipping)", ge=0)

    def __post_init__(self):
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr {self.min_lr} > lr {self.lr}")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ScheduleConfig:
    train_steps: int = setting(100, doc="optimizer steps", unit="steps", ge=1)
    warmup_steps: int = setting(10, doc="linear warmup from 0 to lr", unit="steps", ge=0)
    decay_steps: int | None = setting(None, doc="cosine decay length after warmup; null = the rest of training",
                                      unit="steps", ge=1)
    micro_batch_size: int = setting(4, doc="samples per forward/backward on one data-parallel rank", unit="samples",
                                    ge=1)
    global_batch_size: int = setting(8, doc="samples per optimizer step over all ranks (micro batch x accumulation "
                                            "x data-parallel size)", unit="samples", ge=1)
    seed: int = setting(1234, doc="seed of the weight init and of megatron-core's sample shuffling", ge=0)
    log_interval: int = setting(1, doc="steps between progress-bar updates (metrics.jsonl gets every step)",
                                unit="steps", ge=1)
    eval_interval: int = setting(50, doc="steps between per-domain validation losses (and at the end)",
                                 unit="steps", ge=1)
    save_interval: int = setting(50, doc="steps between checkpoints (and at the end)", unit="steps", ge=1)
    keep_checkpoints: int = setting(2, doc="checkpoints kept (older ones are deleted after a save)", ge=1)
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto", doc="auto = bf16 autocast on GPU, fp32 on CPU")
    max_bad_steps: int = setting(10, doc="non-finite loss or gradient steps skipped before the run fails",
                                 unit="steps", ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ParallelConfig:
    tensor: int = setting(1, doc="tensor-parallel size (splits each layer's matrices)", ge=1)
    pipeline: int = setting(1, doc="pipeline-parallel size (splits the layers into stages)", ge=1)
    data: int = setting(1, doc="data-parallel size (model replicas)", ge=1)
    device: Literal["auto", "cpu", "gpu"] = setting(
        "auto", doc="gpu = one worker per GPU with NCCL; cpu = one worker process per rank with gloo; auto = gpu "
                    "when the Ray cluster has GPUs")
    cpus_per_worker: int = setting(1, doc="CPUs Ray reserves for each worker", ge=1)

    @property
    def world_size(self) -> int:
        return self.tensor * self.pipeline * self.data


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class OutputConfig:
    dir: str = setting(doc="run folder: resolved config, metrics.jsonl, checkpoints/, summary.json")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PretrainConfig:
    data: DataConfig = setting(doc="what to train on")
    model: ModelConfig = setting(ModelConfig(), doc="the GPT")
    optimizer: OptimizerConfig = setting(OptimizerConfig(), doc="AdamW and clipping")
    schedule: ScheduleConfig = setting(ScheduleConfig(), doc="steps, batches, learning-rate schedule, intervals")
    parallel: ParallelConfig = setting(ParallelConfig(), doc="TP x PP x DP layout and device")
    output: OutputConfig = setting(doc="where the run writes")

    def __post_init__(self):
        s, p, m = self.schedule, self.parallel, self.model
        per_step = s.micro_batch_size * p.data
        if s.global_batch_size % per_step:
            raise ValueError(f"schedule.global_batch_size {s.global_batch_size} is not a multiple of "
                             f"micro_batch_size x parallel.data = {per_step}. Fix: make it a multiple.")
        if m.num_attention_heads % p.tensor or m.query_groups % p.tensor:
            raise ValueError(f"parallel.tensor {p.tensor} must divide the attention heads ({m.num_attention_heads}) "
                             f"and query groups ({m.query_groups})")
        if m.ffn_size % p.tensor:
            raise ValueError(f"parallel.tensor {p.tensor} must divide the MLP width {m.ffn_size}")
        if m.num_layers % p.pipeline:
            raise ValueError(f"parallel.pipeline {p.pipeline} must divide model.num_layers {m.num_layers}")
        if m.tie_embeddings and p.pipeline > 1:
            raise ValueError("model.tie_embeddings with parallel.pipeline > 1: the embedding (first stage) and the "
                             "output layer (last stage) would need a gradient all-reduce we do not do. Fix: untie "
                             "them, or parallel.pipeline: 1")
        if s.warmup_steps >= s.train_steps and s.train_steps > 1:
            raise ValueError(f"schedule.warmup_steps {s.warmup_steps} >= train_steps {s.train_steps}")

    @property
    def accumulation_steps(self) -> int:
        return self.schedule.global_batch_size // (self.schedule.micro_batch_size * self.parallel.data)


def parse_pretrain_config(data: Any, where: str = "config") -> PretrainConfig:
    return config_from_dict(PretrainConfig, data, where)


def load_config_file(cls: type, path: str, overrides: list[str] = ()) -> Any:
    """Read a YAML config of any training kind (`cls`: PretrainConfig, DoremiConfig, SFTConfig, RMConfig,
    PPOConfig), apply `--set key=value` overrides, validate everything; errors name `path`."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return config_from_dict(cls, apply_overrides(data or {}, overrides), path)


def config_json_schema(cls: type, name: str, title: str) -> dict[str, Any]:
    """The JSON Schema of config class `cls`, as `refinery/<name>_v1` titled `refinery <title> config, version 1`."""
    schema = dataclass_schema(cls)
    schema.update({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"refinery/{name}_v1",
                   "title": f"refinery {title} config, version 1"})
    return schema


def load_pretrain_config(path: str, overrides: list[str] = ()) -> PretrainConfig:
    """Read a YAML training config, apply `--set key=value` overrides, validate everything."""
    return load_config_file(PretrainConfig, path, overrides)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain mapping (every default filled in) that parse_pretrain_config reads back to an equal config."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def training_identity(cfg: PretrainConfig) -> str:
    """A digest of what decides the trajectory: a run folder refuses to resume under another one.

    Parallel layout, micro-batch size (the gradient is the same mean over the global batch) and intervals
    are left out on purpose: a checkpoint taken at DP=2 resumes at DP=1,
    and a run may be extended (more train_steps) when the schedule length is pinned by decay_steps.
    """
    d = config_to_dict(cfg)
    for volatile in ("parallel", "output"):
        d.pop(volatile)
    for key in ("log_interval", "eval_interval", "save_interval", "keep_checkpoints", "max_bad_steps", "train_steps",
                "micro_batch_size"):
        d["schedule"].pop(key)
    if cfg.schedule.decay_steps is None:
        d["schedule"]["train_steps"] = cfg.schedule.train_steps  # it sets the decay length
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def pretrain_json_schema() -> dict[str, Any]:
    return config_json_schema(PretrainConfig, "pretrain", "pretraining")


if __name__ == "__main__":
    print(json.dumps(pretrain_json_schema(), indent=2))
