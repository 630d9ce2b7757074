"""Check an export against a mixture file with megatron-core itself: every exported domain is accounted
for by the mixture, every domain it weights opens with IndexedDataset, and BlendedMegatronDatasetBuilder +
GPTDataset, given the weights, deliver tokens in those proportions.

The realized share of a domain is measured by reading the blend: every drawn sample is read through
BlendedDataset.__getitem__, and its trained-on tokens (loss mask 1: padding excluded) are counted for the
domain it came from. megatron-core's blending (helpers_cpp.build_blending_indices) picks, for each sample,
the dataset furthest behind its target, so on N samples the error is O(1/N). The tokens are also checked
against the dataset's own vocabulary bound.

A mixture file can be wrong for an export in ways no blend shows: it can leave out a domain the export
holds (training would silently drop it) or weight a domain that was never exported. Both fail the check,
with the fix; a domain is left out on purpose by giving it weight 0.

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
                num_samples: int = 20000, seq_length: int = 128, seed: int = 1234,
                tolerance: float = 0.01) -> dict[str, Any]:
    """Match domains, open, blend, read and measure; returns a report with `ok`, `problems` (what is
    wrong, each with its fix) and the per-domain realized token shares."""
    try:
        from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
        from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
        from megatron.core.datasets.indexed_dataset import IndexedDataset
    except ImportError as exc:
        raise ImportError("the blend check needs megatron-core and torch: "
                          "pip install -c constraints.txt megatron-core==0.16.1 torch") from exc
    exported = sorted(d for d, v in manifest["domains"].items() if v.get("prefix"))
    problems = []
    unnamed = [d for d in exported if d not in weights]
    if unnamed:
        problems.append(f"the export holds domains the mixture does not name: {unnamed}; training would leave "
                        f"them out. Fix: use the mixture made for this export, or give them weight 0 on purpose")
    missing = [d for d in sorted(weights) if weights[d] > 0 and d not in exported]
    if missing:
        problems.append(f"the mixture weights domains with no exported data: {missing} (exported: {exported}). "
                        f"Fix: use the mixture made for this export, or export those domains")
    domains = [d for d in sorted(weights) if weights[d] > 0 and d in exported]
    report: dict[str, Any] = {"ok": False, "problems": problems, "seq_length": seq_length, "tolerance": tolerance,
                              "weights": {d: float(weights[d]) for d in sorted(weights)}, "exported": exported}
    if not domains:
        return report
    prefixes = [os.path.join(export_dir, manifest["domains"][d]["prefix"]) for d in domains]
    opened = {}
    for d, prefix in zip(domains, prefixes):
        ds = IndexedDataset(prefix)
        opened[d] = {"documents": int(len(ds.document_indices) - 1),
                     "tokens": int(np.sum(ds.sequence_lengths, dtype=np.int64))}
    tok = manifest["tokenizer"]
    vocab = tok["vocab_size"]
    total = sum(float(weights[d]) for d in domains)
    with tempfile.TemporaryDirectory(prefix="refinery-blend-check-") as private:
        linked = list(link_privately(dict(zip(domains, prefixes)), private).values())
        config = GPTDatasetConfig(random_seed=seed, sequence_length=seq_length,
                                  blend=(linked, [float(weights[d]) / total for d in domains]), split="100,0,0",
                                  tokenizer=IdsTokenizer(tok), reset_position_ids=False, reset_attention_mask=False,
                                  eod_mask_loss=False, path_to_cache=None)
        train, _, _ = BlendedMegatronDatasetBuilder(GPTDataset, [num_samples, 0, 0], lambda: True, config).build()
        tokens = np.zeros(len(domains), dtype=np.int64)
        for i in range(num_samples):  # the samples a run of num_samples would draw, as it reads them
            sample = train[i]
            ids = np.asarray(sample["tokens"])
            if ids.shape[-1] != seq_length or ids.min() < 0 or ids.max() >= vocab:
                raise AssertionError(f"blend sample {i}: shape {ids.shape} or ids out of [0, {vocab})")
            tokens[int(sample.get("dataset_id", 0))] += int(np.asarray(sample["loss_mask"]).sum())
    realized = {d: float(tokens[i] / tokens.sum()) for i, d in enumerate(domains)}
    errors = {d: abs(realized[d] - float(weights[d])) for d in domains}
    far = {d: e for d, e in errors.items() if e > tolerance}
    if far:
        problems.append(f"realized token shares depart from the mixture by more than {tolerance}: "
                        + ", ".join(f"{d} {realized[d]:.4f} vs {weights[d]:.4f}" for d in far))
    report.update(ok=not problems, samples=num_samples, realized=realized, tokens_read={
        d: int(tokens[i]) for i, d in enumerate(domains)}, max_abs_error=max(errors.values()), opened=opened)
    return report
