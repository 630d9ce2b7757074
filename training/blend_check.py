"""Check an export with megatron-core itself: every domain dataset opens with IndexedDataset, and
BlendedMegatronDatasetBuilder + GPTDataset, given mixture weights, blend samples in those proportions.

The realized proportion of a domain is the share of blend samples whose `dataset_index` points at it;
megatron-core's blending (helpers_cpp.build_blending_indices) picks, for each sample, the dataset
furthest behind its target, so on N samples the error is O(1/N). Samples are also read through
GPTDataset.__getitem__ to prove the token files decode, and their tokens are checked against the
dataset's own vocabulary bound.

The datasets are opened through links in a fresh private temporary folder, so that megatron-core's
index cache (read back with numpy's allow_pickle) never comes from the export folder: see
training/data/blend.py.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Mapping

import numpy as np

from training.data.blend import IdsTokenizer, link_privately


def check_blend(export_dir: str, manifest: Mapping[str, Any], weights: Mapping[str, float], *,
                num_samples: int = 20000, seq_length: int = 128, seed: int = 1234, tolerance: float = 0.01,
                read_samples: int = 32) -> dict[str, Any]:
    """Open, blend and measure; returns a report with `ok` and the per-domain realized proportions."""
    try:
        from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
        from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
        from megatron.core.datasets.indexed_dataset import IndexedDataset
    except ImportError as exc:
        raise ImportError("the blend check needs megatron-core and torch: "
                          "pip install -c constraints.txt megatron-core==0.16.1 torch") from exc
    domains = [d for d in sorted(weights) if weights[d] > 0]
    missing = [d for d in domains if d not in manifest["domains"] or not manifest["domains"][d]["prefix"]]
    if missing:
        raise ValueError(f"mixture weights name domains with no exported data: {missing}")
    prefixes = [os.path.join(export_dir, manifest["domains"][d]["prefix"]) for d in domains]
    opened = {}
    for d, prefix in zip(domains, prefixes):
        ds = IndexedDataset(prefix)
        opened[d] = {"documents": int(len(ds.document_indices) - 1),
                     "tokens": int(np.sum(ds.sequence_lengths, dtype=np.int64))}
    tok = manifest["tokenizer"]
    tokenizer = IdsTokenizer(tok)
    with tempfile.TemporaryDirectory(prefix="refinery-blend-check-") as private:
        linked = list(link_privately(dict(zip(domains, prefixes)), private).values())
        config = GPTDatasetConfig(random_seed=seed, sequence_length=seq_length,
                                  blend=(linked, [float(weights[d]) for d in domains]), split="100,0,0",
                                  tokenizer=tokenizer, reset_position_ids=False, reset_attention_mask=False,
                                  eod_mask_loss=False, path_to_cache=None)
        train, _, _ = BlendedMegatronDatasetBuilder(GPTDataset, [num_samples, 0, 0], lambda: True, config).build()
        index = np.asarray(train.dataset_index if hasattr(train, "dataset_index") else np.zeros(len(train), int))
        counts = np.bincount(index, minlength=len(domains))
        vocab = tok["vocab_size"]
        for i in np.linspace(0, len(train) - 1, num=min(read_samples, len(train)), dtype=np.int64):
            sample = train[int(i)]
            tokens = sample["tokens"] if isinstance(sample, dict) else sample
            tokens = np.asarray(tokens)
            if tokens.shape[-1] != seq_length or tokens.min() < 0 or tokens.max() >= vocab:
                raise AssertionError(f"blend sample {i}: shape {tokens.shape} or ids out of [0, {vocab})")
    realized = {d: float(counts[i] / len(index)) for i, d in enumerate(domains)}
    errors = {d: abs(realized[d] - float(weights[d])) for d in domains}
    return {"ok": bool(max(errors.values()) <= tolerance), "samples": int(len(index)), "seq_length": seq_length,
            "tolerance": tolerance, "weights": {d: float(weights[d]) for d in domains}, "realized": realized,
            "max_abs_error": max(errors.values()), "opened": opened}
