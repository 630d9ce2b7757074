"""The files every training worker keeps in its run folder (pretraining, DoReMi's proxy, SFT, the reward model,
PPO), and resuming from them:

    <run>/checkpoints/     step-N folders and `latest`, written last (training/loop/checkpoint.py)
    <run>/metrics.jsonl    one JSON line per step, written by rank 0 (training/loop/metrics.py)
    <run>/summary.json     the run's figures, written by rank 0 when the worker ends
    <run>/index-cache/     megatron-core's sample-index cache of the blend, made anew by every worker start

Running a worker again on its run folder resumes it: `resume_from_latest` fills the model, AdamW and the
trainer state from `latest`, the metrics log is cut back to that step, and the loop goes on from it. What a
step draws at random is a function of the step (parallel.seed_step), so nothing else needs to come back.
"""

from __future__ import annotations

import json
import os
from typing import Any

from training.atomic_files import write_json_atomic

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
INDEX_CACHE = "index-cache"


def refuse_other_run(run_dir: str, *, kind: str, identity: str) -> None:
    """Raise LaunchError when `run_dir` holds a checkpointed run of another kind (pretrain, sft, rm, ppo) or with
    other training settings (its config.resolved.yaml's `identity`): resuming would mix two runs. A folder with
    no checkpoint yet is free to take the new config."""
    import yaml

    from training.loop.launch import RESOLVED, LaunchError

    path = os.path.join(run_dir, RESOLVED)
    if not os.path.exists(path) or not os.path.exists(os.path.join(run_dir, CHECKPOINTS, "latest")):
        return
    with open(path, encoding="utf-8") as f:
        before = yaml.safe_load(f) or {}
    before_kind = before.get("kind", "pretrain")  # pretraining run folders predate the field
    if (before.get("identity"), before_kind) != (identity, kind):
        raise LaunchError(f"{run_dir} holds a {before_kind} run with other training settings (identity "
                          f"{before.get('identity')}, now {kind} {identity}): resuming would mix two runs. Fix: "
                          f"choose another output.dir, or delete {run_dir}")


def resume_from_latest(run_dir: str, model, optimizer, state: dict[str, Any], *,
                       root: str = CHECKPOINTS) -> tuple[str, bool]:
    """(the checkpoint folder `run_dir/root`, created when missing; whether the run resumed). When the folder
    has a `latest` checkpoint, `model` and `optimizer` are filled from it and `state` takes the saved value of
    each of its keys (a key the checkpoint lacks keeps its starting value); otherwise the caller starts the
    weights itself (from a source checkpoint, or as built)."""
    from training.loop.checkpoint import latest_checkpoint, load_checkpoint

    ckpt_root = os.path.join(run_dir, root)
    os.makedirs(ckpt_root, exist_ok=True)
    latest = latest_checkpoint(ckpt_root)
    if latest is None:
        return ckpt_root, False
    meta = load_checkpoint(latest, model, optimizer)
    state.update({k: meta[k] for k in state if k in meta})
    return ckpt_root, True


def open_metrics(run_dir: str, *, resume_step: int, rank0: bool):
    """Rank 0's metrics log, cut back to `resume_step` (the steps a killed run logged past its checkpoint are
    run again); None on the other ranks, which log nothing."""
    from training.loop.metrics import MetricsLog

    return MetricsLog(os.path.join(run_dir, METRICS), resume_step=resume_step) if rank0 else None


def fresh_index_cache(run_dir: str, *, rank0: bool, barrier) -> str:
    """An empty `index-cache/` (rank 0 clears what an earlier start left, the others wait on `barrier`): megatron-
    core's sample-index cache is built there and read back, never from the export folder (training/data/blend.py)."""
    import shutil

    path = os.path.join(run_dir, INDEX_CACHE)
    if rank0:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    barrier()
    return path


def is_due(step: int, interval: int, total: int) -> bool:
    """Whether finished step `step` (1-based) ends an eval or save interval: every `interval` steps, and the last."""
    return step % interval == 0 or step == total


def read_summary(run_dir: str) -> dict[str, Any] | None:
    """summary.json of a run that wrote one (a finished run, run again), else None."""
    path = os.path.join(run_dir, SUMMARY)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_summary(run_dir: str, summary: dict[str, Any]) -> None:
    write_json_atomic(os.path.join(run_dir, SUMMARY), summary)
