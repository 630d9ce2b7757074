"""torch.distributed and megatron-core's parallel state (TP x PP x DP) for one worker process.

Ray Train (or a benchmark script) has already created the default process group; this adds
megatron-core's groups. On a machine without CUDA, megatron-core 0.16.1 still asks
`torch.cuda.current_device()` for the device of a few buffers: the one-line shim below answers "cpu".
"""

from __future__ import annotations

import dataclasses
import os
import socket


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Layout:
    rank: int
    world_size: int
    tp_rank: int
    tp_size: int
    pp_rank: int
    pp_size: int
    dp_rank: int
    dp_size: int
    device: str
    """"cpu" or "cuda:N"."""

    @property
    def first_stage(self) -> bool:
        return self.pp_rank == 0

    @property
    def last_stage(self) -> bool:
        return self.pp_rank == self.pp_size - 1


def ensure_process_group(backend: str) -> None:
    """A one-process group when none exists (a benchmark or test run without Ray Train)."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if "MASTER_ADDR" in os.environ and "MASTER_PORT" in os.environ:  # a launcher chose them
        dist.init_process_group(backend, rank=0, world_size=1)
        return
    with socket.socket() as s:  # a free port: a fixed one collides with any other run on the machine
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # tcp:// rather than MASTER_* variables: child processes must not inherit this group's port
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)


def init_parallel(*, tensor: int, pipeline: int, seed: int, on_gpu: bool, local_rank: int = 0) -> Layout:
    import torch
    import torch.distributed as dist
    from megatron.core import parallel_state as ps
    from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

    if on_gpu:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        if not torch.cuda.is_available():
            torch.cuda.current_device = lambda: "cpu"  # megatron-core asks for a CUDA device on CPU too
        device = "cpu"
    world = dist.get_world_size()
    if world % (tensor * pipeline):
        raise ValueError(f"{world} workers cannot hold TP {tensor} x PP {pipeline}")
    ps.initialize_model_parallel(tensor_model_parallel_size=tensor, pipeline_model_parallel_size=pipeline)
    # Same seed on every rank: with use_cpu_initialization each rank cuts its slice from the same full matrix.
    torch.manual_seed(seed)
    model_parallel_cuda_manual_seed(seed, inference_rng_tracker=not on_gpu)
    return Layout(rank=dist.get_rank(), world_size=world,
                  tp_rank=ps.get_tensor_model_parallel_rank(), tp_size=tensor,
                  pp_rank=ps.get_pipeline_model_parallel_rank(), pp_size=pipeline,
                  dp_rank=ps.get_data_parallel_rank(), dp_size=ps.get_data_parallel_world_size(), device=device)


def seed_step(seed: int, step: int, *, on_gpu: bool) -> None:
    """Reseed every random stream a training step draws from (dropout: torch's default generator, and on GPU
    megatron-core's tensor- and expert-parallel trackers) from (seed, step) alone. The stream of step s is then
    state of no one: a run resumed at step s draws the masks the uninterrupted run drew there, whatever ran
    before it (model init, evaluations, sampling, a kill), and checkpoints need no RNG state, whose shape
    would change with the layout. Every rank gets the same seed, as init_parallel does."""
    import numpy as np
    import torch
    from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

    step_seed = int(np.random.SeedSequence([seed, step]).generate_state(1)[0])  # uint32: megatron adds offsets
    torch.manual_seed(step_seed)
    model_parallel_cuda_manual_seed(step_seed, inference_rng_tracker=not on_gpu)


def shutdown_parallel() -> None:
    from megatron.core import parallel_state as ps

    ps.destroy_model_parallel()
