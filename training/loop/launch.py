"""Launch a pretraining run on Ray Train: one TorchTrainer worker per rank (per GPU, or per CPU process).

The driver does everything that must happen once and before any worker starts: it resolves the mixture
weights and writes them, with the resolved config, into the run folder; it refuses to resume a run
folder whose training settings differ; it checks that the cluster has the GPUs (or CPUs) the layout
asks for. Ray Train then creates the process group (gloo on CPU, NCCL on GPU) and each worker runs
training/pretrain.py. `launch_workers` is that path for every training kind (DoReMi, SFT, reward model,
PPO): an entry point "module:function" run on each rank. The same code path serves the embedded local
Ray, a cluster (`--address`), and `ray job submit`. A progress bar follows metrics.jsonl, which rank 0 writes step by step (Ray Train
2.60's own result metrics can come back empty).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any

import yaml

from schemas.local_ray import start_ray
from training.atomic_files import write_text_atomic
from training.loop.config import ParallelConfig, PretrainConfig, config_to_dict, training_identity

RESOLVED = "config.resolved.yaml"
MIXTURE = "mixture.json"


class LaunchError(RuntimeError):
    """The run cannot start as configured (resources, run folder, data): the message says why and the fix."""


def resolve_weights(cfg: PretrainConfig, manifest: dict[str, Any], manifest_path: str):
    """The mixture named by data.mixture as a validated MixtureWeights."""
    return resolve_mixture(cfg.data.mixture, manifest, manifest_path, where="data.mixture")


def resolve_mixture(name: str, manifest: dict[str, Any], manifest_path: str, *, where: str):
    """The mixture `name` (natural, uniform, llama1 or a weights file) over the export of `manifest`, as a
    validated MixtureWeights; `where` names the setting in errors."""
    from schemas.mixture import load_mixture_weights
    from training.mixture_weights import BASELINES, baseline_weights

    if name in BASELINES:
        return baseline_weights(name, manifest, manifest_path)
    if not os.path.exists(name):
        raise LaunchError(f"{where}: {name!r} is neither natural, uniform, llama1 nor an existing file")
    return load_mixture_weights(name)


def prepare_run(cfg: PretrainConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Check the data and the run folder, write the resolved config and mixture; returns (weights, manifest)."""
    from schemas.mixture import write_mixture_weights
    from training.loop.run_folder import refuse_other_run

    manifest_path = os.path.join(cfg.data.export_dir, "manifest.json")
    if not os.path.exists(manifest_path):
        raise LaunchError(f"data.export_dir: {manifest_path} does not exist. Fix: run `refinery export megatron "
                          f"RUN_DIR --tokenizer DIR --out {cfg.data.export_dir}` first")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    mixture = resolve_weights(cfg, manifest, manifest_path)
    run_dir = cfg.output.dir
    os.makedirs(run_dir, exist_ok=True)
    identity = training_identity(cfg)
    refuse_other_run(run_dir, kind="pretrain", identity=identity)
    resolved_path = os.path.join(run_dir, RESOLVED)
    doc = {"identity": identity, "config": config_to_dict(cfg), "mixture_method": mixture.method}
    write_text_atomic(resolved_path, yaml.safe_dump(doc, sort_keys=False))
    write_mixture_weights(os.path.join(run_dir, MIXTURE), mixture)
    return mixture.weights, manifest


def check_resources(cfg: PretrainConfig, resources: dict[str, float]) -> bool:
    """Whether the run uses GPUs; raises LaunchError when the cluster cannot hold the layout."""
    return check_layout(cfg.parallel, resources)


def check_layout(p: ParallelConfig, resources: dict[str, float]) -> bool:
    """Whether a run with layout `p` uses GPUs; raises LaunchError when the cluster cannot hold it."""
    gpus = float(resources.get("GPU", 0))
    on_gpu = p.device == "gpu" or (p.device == "auto" and gpus > 0)
    if on_gpu and p.world_size > gpus:
        raise LaunchError(f"parallel: TP {p.tensor} x PP {p.pipeline} x DP {p.data} = {p.world_size} GPUs, the Ray "
                          f"cluster has {gpus:g}. Fix: a smaller layout, or a cluster with more GPUs")
    cpus = float(resources.get("CPU", 0))
    if not on_gpu and p.world_size * p.cpus_per_worker > cpus:
        raise LaunchError(f"parallel: {p.world_size} CPU workers x {p.cpus_per_worker} CPUs, the Ray cluster has "
                          f"{cpus:g} CPUs. Fix: a smaller layout or parallel.cpus_per_worker")
    return on_gpu


def quiet_ray_train_workers() -> None:
    """Ray worker setup hook. Ray Train's placement-group cleaner polls the state API, which needs the
    dashboard that our embedded cluster does not start: it would warn every few seconds of a run."""
    import logging

    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(logging.ERROR)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Progress:
    """A progress bar fed by a metrics.jsonl that rank 0 appends a line per step to."""
    metrics: str
    total: int
    desc: str
    log_interval: int = 1
    postfix: tuple[str, ...] = ("loss", "lr")
    """record fields shown beside the bar (those present)"""


def _start_ray(address: str | None, *, workers: int, cpus_per_worker: int) -> None:
    """Join `address`, or start the embedded local cluster (schemas/local_ray.py) with a CPU per worker plus
    one for Ray Train's controller."""
    import ray

    if ray.is_initialized():
        return
    runtime_env: dict = {"worker_process_setup_hook": "training.loop.launch.quiet_ray_train_workers"}
    if address and ":" in address and "://" not in address:
        # Ray Train's own actors look the cluster up without an address; with two clusters on one machine
        # (a pipeline's and another user's) that lookup is ambiguous and fails noisily. Name it for them.
        runtime_env["env_vars"] = {"RAY_ADDRESS": address}
    start_ray(address, num_cpus=max(os.cpu_count() or 1, workers * cpus_per_worker + 1), runtime_env=runtime_env)


def _worker(payload: dict[str, Any]) -> None:
    """Ray Train's train_loop_per_worker: the process group exists; call the entry point for this rank."""
    import importlib
    import logging

    import ray.train

    logging.getLogger("megatron").setLevel(logging.WARNING)
    module, name = payload["entry"].split(":")
    entry = getattr(importlib.import_module(module), name)
    entry(payload["args"], on_gpu=payload["on_gpu"], local_rank=ray.train.get_context().get_local_rank())


def launch_workers(entry: str, args: dict[str, Any], *, parallel: ParallelConfig, run_dir: str,
                   address: str | None = None, progress: Progress | None = None) -> None:
    """Run `entry` ("module:function", called as function(args, on_gpu=..., local_rank=...)) on one Ray Train
    worker per rank of `parallel` (gloo on CPU, NCCL on GPU). Every training kind (pretraining, DoReMi,
    SFT, reward model, PPO) starts its ranks here. `args` must be plain data (it crosses processes)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    import ray

    _start_ray(address, workers=parallel.world_size, cpus_per_worker=parallel.cpus_per_worker)
    on_gpu = check_layout(parallel, ray.cluster_resources())
    p = parallel
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"entry": entry, "args": args, "on_gpu": on_gpu},
        scaling_config=ScalingConfig(num_workers=p.world_size, use_gpu=on_gpu,
                                     resources_per_worker={"CPU": p.cpus_per_worker, **({"GPU": 1} if on_gpu else {})}),
        torch_config=TorchConfig(backend="nccl" if on_gpu else "gloo"),
        run_config=RunConfig(name="ray-train", storage_path=os.path.join(os.path.abspath(run_dir), "ray")),
    )
    stop = threading.Event()
    watcher = threading.Thread(target=_follow, args=(progress, stop), daemon=True) if progress else None
    if watcher:
        watcher.start()
    try:
        trainer.fit()
    finally:
        stop.set()
        if watcher:
            watcher.join(timeout=5)


def pretrain_worker(args: dict[str, Any], *, on_gpu: bool, local_rank: int) -> None:
    """One pretraining rank (launch_workers entry point)."""
    from training.loop.config import parse_pretrain_config
    from training.pretrain import run_pretrain

    run_pretrain(parse_pretrain_config(args["config"]), weights=args["weights"], on_gpu=on_gpu, local_rank=local_rank)


def launch_pretrain(cfg: PretrainConfig, *, address: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the pretraining run of `cfg` on Ray Train; returns summary.json."""
    cfg_abs = _absolute_paths(cfg)
    weights, _ = prepare_run(cfg_abs)
    bar = Progress(metrics=os.path.join(cfg_abs.output.dir, "metrics.jsonl"), total=cfg.schedule.train_steps,
                   desc="pretrain", log_interval=cfg.schedule.log_interval)
    launch_workers("training.loop.launch:pretrain_worker", {"config": config_to_dict(cfg_abs), "weights": weights},
                   parallel=cfg_abs.parallel, run_dir=cfg_abs.output.dir, address=address,
                   progress=bar if progress else None)
    with open(os.path.join(cfg_abs.output.dir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def _absolute_paths(cfg: PretrainConfig) -> PretrainConfig:
    """Workers may start in another working directory: give them absolute paths (relative ones are read
    from the driver's working directory)."""
    import dataclasses

    data = dataclasses.replace(cfg.data, export_dir=os.path.abspath(cfg.data.export_dir),
                               mixture=cfg.data.mixture if cfg.data.mixture in ("natural", "uniform", "llama1")
                               else os.path.abspath(cfg.data.mixture))
    return dataclasses.replace(cfg, data=data, output=dataclasses.replace(cfg.output, dir=os.path.abspath(cfg.output.dir)))


def _follow(progress: Progress, stop: threading.Event) -> None:
    """Update the progress bar from the metrics file until `stop` is set."""
    from tqdm import tqdm

    path = progress.metrics
    bar = tqdm(total=progress.total, desc=progress.desc, unit="step")
    offset = 0
    while not stop.wait(0.5):
        if not os.path.exists(path):
            continue
        if os.path.getsize(path) < offset:
            offset = 0  # a resumed run cut the file back to its checkpoint
        with open(path, encoding="utf-8") as f:
            f.seek(offset)
            chunk = f.read()
        lines = chunk.split("\n")
        offset += len(chunk) - len(lines[-1])  # keep a half-written last line for the next read
        for line in lines[:-1]:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            bar.n = record["step"]
            if record["step"] % progress.log_interval == 0:
                bar.set_postfix({k: f"{record[k]:.4g}" for k in progress.postfix
                                 if isinstance(record.get(k), (int, float))})
            bar.refresh()
    bar.close()
