"""Weight initialization that does not depend on the parallel layout.

megatron-core initializes each rank's parameters from that rank's random stream, so a model cut into
two pipeline stages starts from other weights than the same model in one stage. Here every tensor is
drawn whole from its own generator, seeded by (seed, the tensor's global key, its layer), and each rank
keeps its slice: the same weights at any TP x PP layout, so layouts can be compared step by step and
a checkpoint means the same thing everywhere. The slices come from megatron-core's own description of
this rank's pieces (GPTModel.sharded_state_dict: global shape and offset of each piece).

The distributions are megatron-core's (and GPT-2's): normal(0, std) for weight matrices and
embeddings, normal(0, std / sqrt(2 * num_layers)) for the two matrices that write into the residual
stream (attention output projection, MLP output), ones for norm scales, zeros for biases.
"""

from __future__ import annotations

import hashlib
import math


def _fill(key: str, std: float, num_layers: int) -> tuple[str, float]:
    leaf = key.rsplit(".", 1)[-1]
    if leaf.endswith("bias"):
        return "zeros", 0.0
    if "norm" in key.rsplit(".", 2)[-2] or "norm" in leaf:
        return "ones", 0.0
    if key.endswith(("linear_proj.weight", "linear_fc2.weight")):
        return "normal", std / math.sqrt(2.0 * num_layers)
    return "normal", std


def init_weights(model, *, seed: int, std: float, num_layers: int) -> None:
    """Overwrite every parameter of this rank's model in place (see the module docstring)."""
    import torch
    from megatron.core.dist_checkpointing.dict_utils import nested_values
    from megatron.core.dist_checkpointing.mapping import ShardedTensor, apply_factories

    pieces = model.sharded_state_dict()
    apply_factories(pieces)
    seen: set[tuple[int, int]] = set()  # (address, size) of each piece: a tied output layer is the embedding
    last: tuple | None = None
    full = None
    with torch.no_grad():
        for piece in nested_values(pieces):
            if not isinstance(piece, ShardedTensor):
                continue
            kind, sigma = _fill(piece.key, std, num_layers)
            p = piece.prepend_axis_num
            if kind != "normal":
                piece.data.fill_(1.0 if kind == "ones" else 0.0)
            else:
                ident = (piece.key, tuple(piece.global_offset[:p]))
                if ident != last:  # SwiGLU's gate and up halves are two pieces of one tensor
                    digest = hashlib.blake2b(f"{seed}|{ident[0]}|{ident[1]}".encode(), digest_size=8).digest()
                    gen = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
                    full = torch.empty(piece.global_shape[p:], dtype=torch.float32).normal_(0.0, sigma, generator=gen)
                    last = ident
                box = tuple(slice(o, o + n) for o, n in zip(piece.global_offset[p:], piece.data.shape))
                piece.data.copy_(full[box].to(piece.data.dtype))
            seen.add((piece.data.data_ptr(), piece.data.numel()))
    covered = sum(n for _, n in seen)
    total = sum(q.numel() for q in model.parameters())
    if covered != total:
        raise AssertionError(f"layout-independent init covered {covered} of {total} parameter elements")
