"""A DoReMi config: the data, the model shared by the reference and the proxy, their training, and DoReMi's knobs.

    refinery mix doremi jobs/doremi_tiny.yaml [--set doremi.eta=0.5]

Loaded strictly like a pretraining config (schemas.config). `data.mixture` names the reference weights of the
first round (natural by default, as the paper's Pile runs started from the Pile's own weights); later rounds
train their reference on the previous round's output.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal


from schemas.config import config_from_dict, setting
from training.loop.config import (DataConfig, OptimizerConfig, OutputConfig, ParallelConfig, PretrainConfig,
                                  ScheduleConfig, config_json_schema, load_config_file)
from training.model.config import ModelConfig


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DoremiSettings:
    eta: float = setting(1.0, doc="step size of the exponentiated-gradient update of the domain weights (paper: 1)",
                         ge=0)
    smoothing: float = setting(1e-3, doc="c: the weights are mixed with uniform, (1 - c) alpha + c / k, so each stays "
                                         ">= c / k (paper: 1e-3)", ge=0, le=1)
    normalizer: Literal["domain_mean", "token_weighted"] = setting(
        "domain_mean", doc="proxy objective: domain_mean = sum_i alpha_i x (domain i's token-mean loss), the paper's; "
                           "token_weighted = each token weighted by its domain's alpha over the batch's alpha mass, "
                           "the reference implementation's")
    rounds: int = setting(1, doc="iterated DoReMi: at most this many rounds; each round's output weights are the "
                                 "next round's reference weights", ge=1)
    tolerance: float = setting(1e-3, doc="stop the rounds when the largest weight change of a round is below this",
                               gt=0)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DoremiConfig:
    data: DataConfig = setting(doc="the export; data.mixture = the reference weights of round 1 (natural, uniform, "
                                   "llama1 or a weights file)")
    model: ModelConfig = setting(ModelConfig(), doc="the reference and proxy model (the same size, as in the paper)")
    optimizer: OptimizerConfig = setting(OptimizerConfig(), doc="AdamW of both models")
    schedule: ScheduleConfig = setting(ScheduleConfig(), doc="steps and batches of each model")
    parallel: ParallelConfig = setting(ParallelConfig(), doc="layout of each run (the proxy needs pipeline: 1)")
    doremi: DoremiSettings = setting(DoremiSettings(), doc="DoReMi's step size, smoothing, objective and rounds")
    target: str | None = setting(None, doc="a pretraining config whose compute the search is compared with "
                                           "(printed as a FLOPs ratio); null = none")
    output: OutputConfig = setting(doc="folder of the search: round-N/{reference,proxy}/, weights.json, trajectory")

    def __post_init__(self):
        if self.parallel.pipeline > 1:
            raise ValueError(f"parallel.pipeline {self.parallel.pipeline}: the DoReMi proxy needs each token's proxy "
                             f"and reference loss on one rank, which only the last pipeline stage has. Fix: "
                             f"parallel.pipeline: 1 (use tensor or data parallelism)")
        run_config(self, mixture=self.data.mixture, out=self.output.dir)  # the shared checks of a training run


def run_config(cfg: DoremiConfig, *, mixture: str, out: str, seed: int | None = None) -> PretrainConfig:
    """The pretraining config of one of the search's runs (a reference, or the proxy with mixture uniform)."""
    schedule = cfg.schedule if seed is None else dataclasses.replace(cfg.schedule, seed=seed)
    return PretrainConfig(data=dataclasses.replace(cfg.data, mixture=mixture), model=cfg.model,
                          optimizer=cfg.optimizer, schedule=schedule, parallel=cfg.parallel, output=OutputConfig(dir=out))


def parse_doremi_config(data: Any, where: str = "config") -> DoremiConfig:
    return config_from_dict(DoremiConfig, data, where)


def load_doremi_config(path: str, overrides: list[str] = ()) -> DoremiConfig:
    return load_config_file(DoremiConfig, path, overrides)


def doremi_json_schema() -> dict[str, Any]:
    return config_json_schema(DoremiConfig, "doremi", "DoReMi")


if __name__ == "__main__":
    print(json.dumps(doremi_json_schema(), indent=2))
