"""SFT and reward-model configs, loaded strictly like pretraining configs (schemas.config).

    refinery train sft jobs/sft_tiny.yaml --set schedule.train_steps=50
    refinery train rm jobs/rm_tiny.yaml

The model is not configured here: it is the source checkpoint's (`init.checkpoint`, a pretraining or
SFT run), read from that run's config.resolved.yaml. Optimizer, schedule and parallel layout are
pretraining's dataclasses. Batch sizes count packed rows for SFT and prompts for the reward model (a
prompt brings its K ranked answers). Relative paths are read from the working directory.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any


from schemas.config import setting
from training.loop.config import (OptimizerConfig, OutputConfig, ParallelConfig, ScheduleConfig, config_json_schema,
                                  load_config_file, training_identity)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class InitConfig:
    checkpoint: str = setting(doc="where the weights start: a run folder (its checkpoints/latest) or a "
                                  "checkpoints/step-N folder of a pretraining or SFT run")
    tokenizer: str = setting(doc="the tokenizer folder the source run was trained with (`refinery tokenizer train`); "
                                 "its sha256 is checked against the source run's export manifest")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AlignDataConfig:
    train: str = setting(doc="training JSONL (SFT: prompt/response or messages rows; RM: prompt + answers ranked "
                             "best first; see training/align/data.py)")
    valid: str | None = setting(None, doc="held-out JSONL; null = hold out `valid_fraction` of the training rows")
    valid_fraction: float = setting(0.05, doc="share of training rows held out when `valid` is null (chosen by a "
                                              "hash of each row, so the split survives reordering)", gt=0, lt=1)
    seq_length: int | None = setting(None, doc="tokens per packed row (SFT) or per answer sequence (RM); null = "
                                               "the source model's seq_length. Longer examples are dropped and "
                                               "counted", unit="tokens", ge=8)
    pack: bool = setting(True, doc="SFT: pack several examples into a row (attention stays inside each example); "
                                   "false = one example per row")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SampleLogConfig:
    prompts: int = setting(4, doc="held-out prompts whose generations are written to samples.jsonl at each "
                                  "evaluation (0 = none)", ge=0)
    max_tokens: int = setting(48, doc="tokens generated per prompt", unit="tokens", ge=1)
    temperature: float = setting(0.0, doc="0 = greedy", ge=0)
    top_p: float = setting(1.0, doc="nucleus sampling threshold", gt=0, le=1)
    seed: int = setting(0, doc="sampling seed", ge=0)


def _check_batches(schedule: ScheduleConfig, parallel: ParallelConfig) -> None:
    per_step = schedule.micro_batch_size * parallel.data
    if schedule.global_batch_size % per_step:
        raise ValueError(f"schedule.global_batch_size {schedule.global_batch_size} is not a multiple of "
                         f"micro_batch_size x parallel.data = {per_step}. Fix: make it a multiple.")
    if schedule.warmup_steps >= schedule.train_steps and schedule.train_steps > 1:
        raise ValueError(f"schedule.warmup_steps {schedule.warmup_steps} >= train_steps {schedule.train_steps}")


def _fine_tuning_optimizer():
    """The optimizer setting SFT and the RM share: both fine-tune trained weights, with a lower learning rate than
    pretraining's default and no weight decay. A function, not a constant: each dataclass needs its own field."""
    return setting(OptimizerConfig(lr=1e-4, min_lr=1e-5, weight_decay=0.0), doc="AdamW and clipping")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SFTConfig:
    init: InitConfig = setting(doc="the pretrained (or SFT) checkpoint to start from, and its tokenizer")
    data: AlignDataConfig = setting(doc="instruction data")
    optimizer: OptimizerConfig = _fine_tuning_optimizer()
    schedule: ScheduleConfig = setting(ScheduleConfig(), doc="steps, batches (packed rows), schedule, intervals")
    parallel: ParallelConfig = setting(ParallelConfig(), doc="TP x PP x DP layout and device")
    samples: SampleLogConfig = setting(SampleLogConfig(), doc="generations logged at each evaluation")
    output: OutputConfig = setting(doc="where the run writes")

    def __post_init__(self):
        _check_batches(self.schedule, self.parallel)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class RMConfig:
    init: InitConfig = setting(doc="the SFT (or pretrained) checkpoint whose trunk the reward model starts from")
    data: AlignDataConfig = setting(doc="preference data: each row a prompt and K >= 2 answers, best first")
    optimizer: OptimizerConfig = _fine_tuning_optimizer()
    schedule: ScheduleConfig = setting(ScheduleConfig(), doc="steps, batches (prompts), schedule, intervals")
    parallel: ParallelConfig = setting(ParallelConfig(), doc="TP x DP layout and device (pipeline must be 1)")
    output: OutputConfig = setting(doc="where the run writes")

    def __post_init__(self):
        _check_batches(self.schedule, self.parallel)
        if self.parallel.pipeline != 1:
            raise ValueError(f"parallel.pipeline {self.parallel.pipeline}: the reward model's scalar head reads the "
                             f"last token of whole sequences and is not split into pipeline stages. Fix: "
                             f"parallel.pipeline: 1 (use tensor or data parallelism)")


def load_align_config(cls: type, path: str, overrides: list[str] = ()):
    """Read an SFT or RM YAML config, apply `--set key=value` overrides, validate everything."""
    return load_config_file(cls, path, overrides)


def align_identity(cfg: SFTConfig | RMConfig) -> str:
    """pretraining's training identity (layout, intervals and micro-batch size left out); for SFT the logged
    samples are left out too, since they do not change the weights."""
    if isinstance(cfg, SFTConfig):
        cfg = dataclasses.replace(cfg, samples=SampleLogConfig())
    return training_identity(cfg)


def align_json_schema(cls: type, name: str) -> dict[str, Any]:
    return config_json_schema(cls, name, name)


if __name__ == "__main__":
    import sys

    which = sys.argv[1] if len(sys.argv) > 1 else "sft"
    print(json.dumps(align_json_schema(SFTConfig if which == "sft" else RMConfig, which), indent=2))
