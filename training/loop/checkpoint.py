"""Sharded, atomic, resumable checkpoints that reshard on load and never unpickle.

    <run>/checkpoints/step-00000100/shard-00000.safetensors ...   one file per rank that owns a piece
    <run>/checkpoints/step-00000100/meta.json                     trainer state (step, samples, layout)
    <run>/checkpoints/latest                                      "step-00000100", written last

What a piece is comes from megatron-core itself: `GPTModel.sharded_state_dict()` describes this rank's
slice of every parameter (a global key, the global shape, this slice's offset, and a replica id),
with factories for tensors stored in another layout (the SwiGLU fc1 matrix is stored as its gate and
up halves, so that a change of tensor-parallel size splits it correctly). Each rank writes the pieces
it is the main replica of (replica id all zeros: one data-parallel copy, one copy of what TP ranks
share) as `key|offset,offset,...`. AdamW's exp_avg and exp_avg_sq get the same description under
`optimizer.exp_avg.<key>`.

Loading asks megatron-core for the current layout's pieces and fills each from the saved pieces that
overlap it (box intersection), so TP=2 x DP=2 loads at TP=1 x DP=1 and back. Every element must be
covered exactly once, or the load fails.

The folder is written as `step-N.tmp`, then renamed; `latest` is replaced last, so a crash at any
moment leaves the previous checkpoint as `latest`. safetensors holds tensors and a JSON header only:
unlike torch.distributed.checkpoint's and megatron-core's torch_dist metadata (a pickle), nothing in a
checkpoint can run code on load. The run folder must be visible to every rank (one machine, or a
shared filesystem).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from typing import Any

from training.atomic_files import publish_dir, write_json_atomic, write_text_atomic

FORMAT = "refinery-checkpoint-v1"
LATEST = "latest"
_OPT_KEYS = ("exp_avg", "exp_avg_sq")


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def latest_checkpoint(root: str) -> str | None:
    """The folder `latest` names, or None when the run has no checkpoint yet."""
    marker = os.path.join(root, LATEST)
    if not os.path.exists(marker):
        return None
    with open(marker, encoding="utf-8") as f:
        name = f.read().strip()
    path = os.path.join(root, name)
    if not os.path.exists(os.path.join(path, "meta.json")):
        replaced = sorted(d for d in os.listdir(root) if d.startswith(f"{name}.old-"))
        hint = (f" A save of that step was killed while replacing it: {replaced[-1]} is the copy it replaced; "
                f"rename it to {name} to resume from it." if replaced and not os.path.exists(path) else "")
        raise FileNotFoundError(f"{marker} names {name}, which has no meta.json: the checkpoint folder was "
                                f"removed or damaged. Fix: point {marker} at an intact step-* folder.{hint}")
    return path


def read_meta(path: str) -> dict[str, Any]:
    with open(os.path.join(path, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def _sharded_pieces(model, optimizer, *, with_optimizer_state: bool):
    """(megatron's sharded state dict with factories, the same with factories applied): the model's
    parameters under "model" and AdamW's moments under "optimizer"."""
    from megatron.core.dist_checkpointing.mapping import apply_factories
    from megatron.core.dist_checkpointing.optimizer import make_sharded_optimizer_tensor

    def describe():
        model_sd = model.sharded_state_dict()
        by_param = _by_param(model_sd)
        opt_sd = {}
        if with_optimizer_state:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    state = optimizer.state[p]
                    name, sh = by_param[id(p)]
                    for k in _OPT_KEYS:
                        opt_sd[f"{k}.{name}"] = make_sharded_optimizer_tensor(sh, state[k], prefix=f"optimizer.{k}")
        return {"model": model_sd, "optimizer": opt_sd}

    with_factories = describe()
    built = describe()
    apply_factories(built)
    return with_factories, built


def _pieces(built) -> list:
    from megatron.core.dist_checkpointing.dict_utils import nested_values
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    out = []
    for v in nested_values(built):
        if isinstance(v, ShardedObject):
            continue  # `_extra_state` of megatron-core's local layers: empty, nothing to keep
        if getattr(v, "flattened_range", None) is not None:
            raise NotImplementedError(f"{v.key}: flattened (distributed-optimizer) pieces are not supported")
        out.append(v)
    return out


def _name(piece) -> str:
    return f"{piece.key}|{','.join(str(o) for o in piece.global_offset)}"


def _box(piece) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(offset, shape) of a piece in its global tensor; prepended axes (the layer axis) have size 1."""
    shape = (1,) * piece.prepend_axis_num + tuple(piece.data.shape)
    return tuple(piece.global_offset), shape


def save_checkpoint(root: str, step: int, model, optimizer, trainer_state: dict[str, Any], *, rank: int,
                    barrier, keep: int) -> str:
    """Write checkpoint `step` collectively (every rank calls it); returns the final folder."""
    from megatron.core.dist_checkpointing.mapping import is_main_replica
    from safetensors.torch import save_file

    final = os.path.join(root, step_dir_name(step))
    tmp = final + ".tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # a save that died half-way
        os.makedirs(tmp)
    barrier()
    _, built = _sharded_pieces(model, optimizer, with_optimizer_state=bool(optimizer.state))
    # Stored in its box shape (prepended axes included), so the loader intersects like with like.
    tensors = {_name(p): p.data.detach().to("cpu").reshape(_box(p)[1]).contiguous().clone()
               for p in _pieces(built) if is_main_replica(p.replica_id)}
    if tensors:
        path = os.path.join(tmp, f"shard-{rank:05d}.safetensors")
        save_file(tensors, path, metadata={"format": FORMAT})
        _fsync(path)
    barrier()
    if rank == 0:
        meta = {"format": FORMAT, "step": step, **trainer_state}
        write_json_atomic(os.path.join(tmp, "meta.json"), meta)
        publish_dir(tmp, final)
        write_text_atomic(os.path.join(root, LATEST), step_dir_name(step) + "\n")
        _prune(root, keep)
    barrier()
    return final


def load_checkpoint(path: str, model, optimizer=None) -> dict[str, Any]:
    """Fill `model` (and AdamW's state, when an optimizer is given and the checkpoint has it) from `path`;
    returns its meta. Evaluation passes no optimizer: the moments are then not read."""
    import torch
    from megatron.core.dist_checkpointing.dict_utils import dict_list_map_inplace, extract_matching_values
    from megatron.core.dist_checkpointing.mapping import (ShardedObject, ShardedTensor, ShardedTensorFactory,
                                                          apply_factory_merges)
    from safetensors import safe_open

    meta = read_meta(path)
    saved: dict[str, list[tuple[str, tuple[int, ...], tuple[int, ...]]]] = {}
    files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
    handles = [safe_open(os.path.join(path, f), framework="pt") for f in files]
    for i, handle in enumerate(handles):
        for name in handle.keys():
            key, _, offsets = name.rpartition("|")
            offset = tuple(int(o) for o in offsets.split(",")) if offsets else ()
            saved.setdefault(key, []).append((i, name, offset, tuple(handle.get_slice(name).get_shape())))
    has_opt = optimizer is not None and bool(meta.get("optimizer_steps"))
    if has_opt:  # AdamW creates its state lazily: make it now so there is something to fill
        for group in optimizer.param_groups:
            for p in group["params"]:
                st = optimizer.state[p]
                for k in _OPT_KEYS:
                    st[k] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] = torch.tensor(float(meta["optimizer_steps"]))
    with_factories, built = _sharded_pieces(model, optimizer, with_optimizer_state=has_opt)

    def fill(piece):
        if isinstance(piece, ShardedObject):
            return None  # `_extra_state` of local layers: empty
        if not isinstance(piece, ShardedTensor):
            return piece
        offset, shape = _box(piece)
        out = torch.empty(shape, dtype=piece.data.dtype)
        covered = 0
        for i, name, s_off, s_shape in saved.get(piece.key, []):
            lo = [max(a, b) for a, b in zip(offset, s_off)]
            hi = [min(a + n, b + m) for a, n, b, m in zip(offset, shape, s_off, s_shape)]
            if any(h <= low for low, h in zip(lo, hi)):
                continue
            src = tuple(slice(low - b, h - b) for low, h, b in zip(lo, hi, s_off))
            dst = tuple(slice(low - a, h - a) for low, h, a in zip(lo, hi, offset))
            out[dst] = handles[i].get_slice(name)[src].to(out.dtype)
            covered += math.prod(h - low for low, h in zip(lo, hi))
        if covered != math.prod(shape):
            raise ValueError(f"checkpoint {path}: {piece.key} at offset {offset} shape {shape}: saved pieces cover "
                             f"{covered} of {math.prod(shape)} elements (a different model shape?)")
        return out.reshape(piece.data.shape).to(piece.data.device)

    dict_list_map_inplace(fill, built)
    factories, _ = extract_matching_values(with_factories, lambda v: isinstance(v, ShardedTensorFactory))
    merged = apply_factory_merges(built, factories)
    state = {k: v for k, v in merged["model"].items() if v is not None}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("_extra_state")]
    if missing or unexpected:
        raise ValueError(f"checkpoint {path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if has_opt:
        described = _by_param(with_factories["model"])
        for group in optimizer.param_groups:
            for p in group["params"]:
                for k in _OPT_KEYS:
                    optimizer.state[p][k].copy_(merged["optimizer"][f"{k}.{described[id(p)][0]}"])
    return meta


def _by_param(model_sd) -> dict[int, tuple[str, Any]]:
    """id(parameter) -> (its state-dict name, its ShardedTensor or ShardedTensorFactory). The name, not the
    global key, identifies a parameter: the layers of a stage share one key and differ by offset."""
    return {id(v.data): (name, v) for name, v in model_sd.items() if hasattr(v, "key") and hasattr(v, "data")}


_STEP_DIR = re.compile(r"step-\d{8}")


def _prune(root: str, keep: int) -> None:
    """Keep the `keep` newest step folders. Only exact step names count: a save killed between the two
    renames of publish_dir leaves `step-N.old-*`, the copy it was replacing, which must not push a real
    checkpoint out of the window (it sorts after step-N), and is removed only once step-N is in place."""
    names = os.listdir(root)
    steps = sorted(d for d in names if _STEP_DIR.fullmatch(d))
    stale = [d for d in names if ".old-" in d and d.split(".old-")[0] in steps]
    for old in steps[:-keep] + stale:
        shutil.rmtree(os.path.join(root, old), ignore_errors=True)


def _fsync(path: str) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
