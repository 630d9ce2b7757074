"""Where an SFT or reward-model run starts, and its run folder's resolved config; the driver side that SFT, the
reward model and PPO share (prepare_align_run, run_align_worker, launch_align), so that the three launch alike.

The driver resolves `init.checkpoint` (a run folder or a checkpoints/step-N folder) once: the model
is the source run's ModelConfig, the tokenizer must be the one the source was trained with (sha256
against its export manifest), and the run folder refuses a config with other training settings.

config.resolved.yaml of an alignment run:

    kind: sft | rm
    identity: ...                 the training identity a resume must match
    sft: {...} | rm: {...}        this run's config, every default filled in
    model: {...}                  the ModelConfig the weights have (seq_length: this run's)
    padded_vocab_size: 1024       embedding rows
    tokenizer: /abs/tokenizer     the tokenizer folder
    source: {run, checkpoint, step, kind}
    config: {...}                 SFT only: the chain's pretraining config with this model and output.dir,
                                  so that readers of GPT run folders (eval ppl, eval generate) read it
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import yaml

from training.atomic_files import write_text_atomic
from training.loop.config import PretrainConfig, config_to_dict, parse_pretrain_config
from training.loop.launch import RESOLVED, LaunchError
from training.loop.run_folder import refuse_other_run
from training.model.config import ModelConfig, padded_vocab_size


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Source:
    run_dir: str
    checkpoint: str
    step: int
    kind: str
    """pretrain | sft"""
    pretrain: PretrainConfig
    """The chain's pretraining config (its model is the source's)."""
    vocab_size: int
    """The tokenizer's vocabulary (unpadded)."""


def resolve_source(checkpoint: str, tokenizer_dir: str) -> Source:
    from training.eval.loaded import read_manifest, resolve_checkpoint
    from training.loop.checkpoint import read_meta
    from training.tokenizer import load_tokenizer

    try:
        run_dir, ckpt = resolve_checkpoint(checkpoint)
    except FileNotFoundError as exc:
        raise LaunchError(f"init.checkpoint: {exc}") from exc
    resolved = os.path.join(run_dir, RESOLVED)
    if not os.path.exists(resolved):
        raise LaunchError(f"init.checkpoint: {resolved} is missing: is {run_dir} a training run folder?")
    with open(resolved, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    kind = doc.get("kind", "pretrain")
    if kind not in ("pretrain", "sft") or "config" not in doc:
        raise LaunchError(f"init.checkpoint: {run_dir} is a {kind} run; SFT and the reward model start from a GPT "
                          f"(a pretraining or SFT run)")
    pretrain = parse_pretrain_config(doc["config"], where=resolved)
    manifest = read_manifest(pretrain.data.export_dir)
    tok = load_tokenizer(tokenizer_dir)
    trained_on = manifest["tokenizer"]["tokenizer_sha256"]
    if tok.sha256 != trained_on:
        raise LaunchError(f"init.tokenizer: {tokenizer_dir} is tokenizer {tok.sha256[:12]}, {run_dir} was trained on "
                          f"{trained_on[:12]}. Fix: the tokenizer folder of the source run")
    return Source(run_dir=run_dir, checkpoint=ckpt, step=int(read_meta(ckpt)["step"]), kind=kind, pretrain=pretrain,
                  vocab_size=pretrain.model.vocab_size or tok.vocab_size)


def run_model(source: Source, seq_length: int | None, parallel) -> ModelConfig:
    """The source's model at this run's sequence length, checked against the layout like a pretraining config."""
    model = source.pretrain.model
    if seq_length is not None and seq_length != model.seq_length:
        table = model.max_position or model.seq_length
        if model.position == "learned" and seq_length > table:
            raise LaunchError(f"data.seq_length {seq_length}: the source's learned positions stop at {table}")
        # a learned position table keeps its trained size (it is part of the weights)
        model = dataclasses.replace(model, seq_length=seq_length, max_position=max(table, seq_length))
    try:  # pretraining's checks of the layout against the model (heads, MLP width, layers, tied embeddings)
        neutral = dataclasses.replace(source.pretrain.schedule, micro_batch_size=1, global_batch_size=parallel.data,
                                      warmup_steps=0)  # batches are this run's business, checked by its config
        dataclasses.replace(source.pretrain, model=model, parallel=parallel, schedule=neutral)
    except ValueError as exc:
        raise LaunchError(str(exc)) from exc
    return model


def prepare_run_folder(run_dir: str, *, kind: str, identity: str, config: dict[str, Any], source: Source,
                       model: ModelConfig, tokenizer: str) -> int:
    """Refuse a run folder holding another run, write config.resolved.yaml; returns the padded vocabulary."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, RESOLVED)
    refuse_other_run(run_dir, kind=kind, identity=identity)
    vocab = padded_vocab_size(source.vocab_size)
    doc = {"kind": kind, "identity": identity, kind: config, "model": config_to_dict(model),
           "padded_vocab_size": vocab, "tokenizer": tokenizer,
           "source": {"run": source.run_dir, "checkpoint": source.checkpoint, "step": source.step,
                      "kind": source.kind}}
    if kind == "sft":
        pretrain = dataclasses.replace(source.pretrain, model=model,
                                       output=dataclasses.replace(source.pretrain.output, dir=run_dir))
        doc["config"] = config_to_dict(pretrain)
    write_text_atomic(path, yaml.safe_dump(doc, sort_keys=False))
    return vocab


def absolute(cfg):
    """The config with absolute paths: workers may start in another working directory."""
    init = dataclasses.replace(cfg.init, checkpoint=os.path.abspath(cfg.init.checkpoint),
                               tokenizer=os.path.abspath(cfg.init.tokenizer))
    data = dataclasses.replace(cfg.data, train=os.path.abspath(cfg.data.train),
                               valid=os.path.abspath(cfg.data.valid) if cfg.data.valid else None)
    return dataclasses.replace(cfg, init=init, data=data,
                               output=dataclasses.replace(cfg.output, dir=os.path.abspath(cfg.output.dir)))


def prepare_align_run(cfg, kind: str) -> tuple[Any, dict[str, Any]]:
    """Driver side of an SFT or RM run (`kind`): absolute paths, the source, the run folder; returns (config, the
    workers' arguments). The workers get the resolved model rather than re-reading the source run."""
    from training.align.config import align_identity

    cfg = absolute(cfg)
    source = resolve_source(cfg.init.checkpoint, cfg.init.tokenizer)
    model = run_model(source, cfg.data.seq_length, cfg.parallel)
    prepare_run_folder(cfg.output.dir, kind=kind, identity=align_identity(cfg), config=config_to_dict(cfg),
                       source=source, model=model, tokenizer=cfg.init.tokenizer)
    return cfg, {"config": config_to_dict(cfg), "model": config_to_dict(model),
                 "source_checkpoint": source.checkpoint}


def run_align_worker(run, config_cls, args: dict[str, Any], *, on_gpu: bool, local_rank: int) -> None:
    """One rank of an SFT or RM run: `run` (run_sft, run_rm) on the config and model prepare_align_run sent."""
    from schemas.config import config_from_dict

    run(config_from_dict(config_cls, args["config"], "config"),
        model_cfg=config_from_dict(ModelConfig, args["model"], "model"),
        source_checkpoint=args["source_checkpoint"], on_gpu=on_gpu, local_rank=local_rank)


def launch_align(kind: str, entry: str, cfg, args: dict[str, Any], *, total: int, log_interval: int,
                 postfix: tuple[str, ...], address: str | None, progress: bool) -> dict[str, Any]:
    """Run the workers `entry` ("module:function") of an alignment run (sft, rm, ppo) on Ray Train with a progress
    bar over `total` steps read from metrics.jsonl; returns the summary.json rank 0 wrote."""
    import json

    from training.loop.launch import Progress, launch_workers

    run_dir = cfg.output.dir
    bar = Progress(metrics=os.path.join(run_dir, "metrics.jsonl"), total=total, desc=kind,
                   log_interval=log_interval, postfix=postfix)
    launch_workers(entry, args, parallel=cfg.parallel, run_dir=run_dir, address=address,
                   progress=bar if progress else None)
    with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)
