"""Pretraining data: the exported domains blended by mixture weights through megatron-core's own
BlendedMegatronDatasetBuilder + GPTDataset, and a fixed validation set per domain.

- Train: one blend over all domains with a positive weight; sample i of the run is blend sample i, so
  step s reads samples [s * global_batch, (s + 1) * global_batch) on every layout: DP = 1 and DP = 2
  see the same global batch, and a resumed run continues exactly where it stopped.
- Valid: megatron-core's split ("98,1,1") cuts each domain's documents into train / valid / test
  ranges, so validation documents are never trained on. Each domain gets its own GPTDataset over its
  valid range with a fixed number of samples: the same samples at every evaluation and every run.
- Token share: every sample is `seq_length` tokens, so a domain's token share is its share of blend
  samples. The share of the samples the run will draw is checked against the weights before step 1
  (megatron-core picks, for each sample, the domain furthest behind its target, so the error is
  O(1/samples)); the run then records the share of the samples it actually read.
GPTDataset caches its sample indices as .npy files next to the dataset (`<prefix>/cache/`) and reads them
back with numpy.load(allow_pickle=True): a file planted in an export folder would run as code (and
`path_to_cache` cannot move the cache without a process group). So datasets are opened through links in
a private folder the caller owns and empties first (a fresh temporary folder; in a training run, a
folder of the run that rank 0 recreates at start, since megatron-core builds the cache on rank 0 and
the other ranks read it): the cache lands there, megatron-core reads back only what this run wrote,
and the export folder is only read.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import numpy as np


class BlendShareError(ValueError):
    """The blend's realized token shares depart from the mixture weights by more than the tolerance."""


class IdsTokenizer:
    """What GPTDataset needs of a tokenizer when the data is already tokenized: sizes and special ids
    (from the `tokenizer` entry of an export manifest)."""

    def __init__(self, tokenizer: Mapping[str, Any]):
        self.vocab_size = int(tokenizer["vocab_size"])
        self.eod = int(tokenizer["special_tokens"]["eod"]["id"])
        self.pad = int(tokenizer["special_tokens"]["pad"]["id"])
        self.unique_identifiers = {"class": "refinery.byte_level_bpe", "tokenizer_sha256": tokenizer["tokenizer_sha256"]}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PretrainData:
    domains: tuple[str, ...]
    """Domains with a positive weight, in blend order (dataset_id i is domains[i])."""
    weights: dict[str, float]
    train: Any
    """megatron-core BlendedDataset: item i -> {tokens, labels, loss_mask, position_ids, dataset_id}."""
    valid: dict[str, Any]
    """domain -> GPTDataset over that domain's valid split."""
    planned_share: dict[str, float]
    """Share of each domain among the train samples the run will draw."""


def _gpt_config(seq_length: int, seed: int, tokenizer: Mapping[str, Any], **blend):
    from megatron.core.datasets.gpt_dataset import GPTDatasetConfig

    return GPTDatasetConfig(random_seed=seed, sequence_length=seq_length, tokenizer=IdsTokenizer(tokenizer),
                            reset_position_ids=False, reset_attention_mask=False, eod_mask_loss=False,
                            create_attention_mask=False, path_to_cache=None, **blend)


def link_privately(prefixes: Mapping[str, str], private_dir: str) -> dict[str, str]:
    """name -> prefix of links in `private_dir` to each dataset's .bin and .idx (see the module docstring)."""
    linked = {}
    for name, prefix in prefixes.items():
        for ext in (".bin", ".idx"):
            target, link = os.path.abspath(prefix + ext), os.path.join(private_dir, name + ext)
            try:
                os.symlink(target, link)
            except FileExistsError:  # another rank of this run made it: it must point at the same file
                if os.readlink(link) != target:
                    raise
        linked[name] = os.path.join(private_dir, name)
    return linked


def build_pretrain_data(export_dir: str, manifest: Mapping[str, Any], weights: Mapping[str, float], *,
                        private_dir: str, split: str, seq_length: int, seed: int, train_samples: int,
                        valid_samples_per_domain: int, share_tolerance: float) -> PretrainData:
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset

    domains = tuple(d for d in sorted(weights) if weights[d] > 0)
    missing = [d for d in domains if d not in manifest["domains"] or not manifest["domains"][d].get("prefix")]
    if missing:
        raise ValueError(f"the mixture weights name domains with no exported data: {missing}. Fix: give them "
                         f"weight 0, or export them (domains in {export_dir}: {sorted(manifest['domains'])})")
    prefixes = {d: os.path.join(export_dir, manifest["domains"][d]["prefix"]) for d in domains}
    for d in domains:
        _check_split(d, prefixes[d], split, seq_length)
    prefixes = link_privately(prefixes, private_dir)
    tokenizer = manifest["tokenizer"]
    total = sum(float(weights[d]) for d in domains)
    used = {d: float(weights[d]) / total for d in domains}
    train_cfg = _gpt_config(seq_length, seed, tokenizer, split=split,
                            blend=([prefixes[d] for d in domains], [used[d] for d in domains]))
    train, _, _ = BlendedMegatronDatasetBuilder(GPTDataset, [train_samples, 0, 0], lambda: True, train_cfg).build()
    valid = build_valid_sets(prefixes, tokenizer, split=split, seq_length=seq_length, seed=seed,
                             samples=valid_samples_per_domain)
    planned = realized_share(dataset_ids(train, 0, train_samples), domains)
    check_share(planned, used, share_tolerance, what=f"the blend of the run's {train_samples} samples")
    return PretrainData(domains=domains, weights=used, train=train, valid=valid, planned_share=planned)


def build_valid_sets(prefixes: Mapping[str, str], tokenizer: Mapping[str, Any], *, split: str, seq_length: int,
                     seed: int, samples: int) -> dict[str, Any]:
    """domain -> GPTDataset over that domain's valid split (already privately linked prefixes)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset

    valid = {}
    for d, prefix in prefixes.items():
        cfg = _gpt_config(seq_length, seed, tokenizer, split=split, blend=([prefix], None))
        _, valid[d], _ = BlendedMegatronDatasetBuilder(GPTDataset, [0, samples, 0], lambda: True, cfg).build()
        if valid[d] is None or len(valid[d]) == 0:
            raise ValueError(f"domain {d}: its valid split ({split}) holds no complete sample of {seq_length} "
                             f"tokens. Fix: a larger valid share in data.split, or a shorter model.seq_length")
    return valid


def open_valid_sets(export_dir: str, manifest: Mapping[str, Any], *, private_dir: str, split: str,
                    seq_length: int, seed: int, samples: int) -> dict[str, Any]:
    """The fixed validation set of every exported domain (evaluation: no mixture, no train blend)."""
    domains = sorted(d for d, v in manifest["domains"].items() if v.get("prefix"))
    prefixes = {d: os.path.join(export_dir, manifest["domains"][d]["prefix"]) for d in domains}
    for d in domains:
        _check_split(d, prefixes[d], split, seq_length)
    return build_valid_sets(link_privately(prefixes, private_dir), manifest["tokenizer"], split=split,
                            seq_length=seq_length, seed=seed, samples=samples)


def split_documents(docs: int, split: str) -> list[tuple[int, int]]:
    """[first, last) document ranges of train, valid and test in a dataset of `docs` documents, cut as
    megatron-core cuts them (an empty range where a share is 0)."""
    from megatron.core.datasets.blended_megatron_dataset_config import (
        convert_split_vector_to_split_matrix, parse_and_normalize_split)

    out = []
    for bounds in convert_split_vector_to_split_matrix(parse_and_normalize_split(split)):
        if bounds is None:
            out.append((0, 0))
            continue
        first, last = (int(round(b * float(docs))) for b in bounds)  # megatron-core's rounding
        out.append((first, last))
    return out


def split_tokens(prefix: str, split: str) -> tuple[int, int, int]:
    """Tokens in the train, valid and test document ranges of one dataset, cut as megatron-core cuts them."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    dataset = IndexedDataset(prefix)
    docs = len(dataset.document_indices) - 1
    seq_tokens = np.concatenate([[0], np.cumsum(dataset.sequence_lengths, dtype=np.int64)])
    out = [int(seq_tokens[dataset.document_indices[last]] - seq_tokens[dataset.document_indices[first]])
           for first, last in split_documents(docs, split)]
    return out[0], out[1], out[2]


def _check_split(domain: str, prefix: str, split: str, seq_length: int) -> None:
    """A split too small for one sample would send megatron-core's epoch count into an endless loop."""
    train, valid, _ = split_tokens(prefix, split)
    for name, tokens in (("train", train), ("valid", valid)):
        if tokens < seq_length + 1:
            raise ValueError(f"domain {domain}: its {name} split ({split}) holds {tokens} tokens, less than one sample "
                             f"of {seq_length} + 1. Fix: a larger {name} share in data.split, a shorter "
                             f"model.seq_length, or more data for {domain}")


def dataset_ids(blend: Any, start: int, stop: int) -> np.ndarray:
    """dataset_id of blend samples [start, stop) (a single-domain blend is the GPTDataset itself)."""
    index = getattr(blend, "dataset_index", None)
    if index is None:
        return np.zeros(stop - start, dtype=np.int64)
    return np.asarray(index[start:stop], dtype=np.int64)


def realized_share(ids: np.ndarray, domains: tuple[str, ...]) -> dict[str, float]:
    counts = np.bincount(ids, minlength=len(domains))
    return {d: float(counts[i] / max(1, len(ids))) for i, d in enumerate(domains)}


def check_share(realized: Mapping[str, float], weights: Mapping[str, float], tolerance: float, *, what: str) -> None:
    worst = max(weights, key=lambda d: abs(realized.get(d, 0.0) - weights[d]))
    error = abs(realized.get(worst, 0.0) - weights[worst])
    if error > tolerance:
        raise BlendShareError(f"{what}: domain {worst} has token share {realized.get(worst, 0.0):.4f}, its weight is "
                              f"{weights[worst]:.4f} (|difference| {error:.4f} > tolerance {tolerance}). Fix: train on "
                              f"more samples (the error shrinks as 1/samples) or raise data.share_tolerance")


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a micro-batch: tokens, labels, loss_mask, position_ids [b, s]; dataset_id [b]."""
    import torch

    def stack(key):
        return torch.stack([torch.as_tensor(np.asarray(s[key])) for s in samples])

    batch = {k: stack(k) for k in ("tokens", "labels", "loss_mask", "position_ids")}
    batch["tokens"], batch["labels"] = batch["tokens"].long(), batch["labels"].long()
    batch["loss_mask"] = batch["loss_mask"].float()
    batch["dataset_id"] = torch.tensor([int(s.get("dataset_id", 0)) for s in samples], dtype=torch.long)
    return batch
