"""Mixture weights from what we know: the token share of an export manifest, uniform, or the LLaMA-1 table.

DoReMi (training/mixture/) writes its own weights through the same `schemas.mixture` format; these are the
baselines it is compared with (`refinery mix baseline NAME --export DIR --out FILE`).
"""

from __future__ import annotations

from typing import Any, Mapping

from schemas.mixture import MixtureWeights, make_mixture_weights
from training.planner import LLAMA1_SAMPLING


def manifest_tokens(manifest: Mapping[str, Any]) -> dict[str, int]:
    """domain -> tokens (EOD included) of an export manifest."""
    return {d: int(v["tokens"]) for d, v in manifest["domains"].items()}


def natural_weights(manifest: Mapping[str, Any], manifest_path: str, date: str | None = None) -> MixtureWeights:
    """Each domain weighted by its share of the exported tokens (sampling without reweighting)."""
    return make_mixture_weights(manifest_tokens(manifest), method="natural", inputs=[manifest_path], date=date,
                                normalize=True, notes="token share of each domain in the export manifest")


def uniform_weights(manifest: Mapping[str, Any], manifest_path: str, date: str | None = None) -> MixtureWeights:
    """Every exported domain weighted equally (DoReMi's proxy samples this way)."""
    return make_mixture_weights({d: 1.0 for d in manifest["domains"]}, method="uniform", inputs=[manifest_path],
                                date=date, normalize=True)


BASELINES: tuple[str, ...] = ("natural", "uniform", "llama1")


def baseline_weights(name: str, manifest: Mapping[str, Any], manifest_path: str,
                     date: str | None = None) -> MixtureWeights:
    """The named baseline over the manifest's exported domains (those with data)."""
    exported = {"domains": {d: v for d, v in manifest["domains"].items() if v.get("prefix")}}
    if name == "natural":
        return natural_weights(exported, manifest_path, date)
    if name == "uniform":
        return uniform_weights(exported, manifest_path, date)
    if name == "llama1":
        return llama1_weights(sorted(exported["domains"]), date)
    raise ValueError(f"baseline {name!r}: expected one of {', '.join(BASELINES)}")


def llama1_weights(domains: list[str] | None = None, date: str | None = None) -> MixtureWeights:
    """LLaMA-1 sampling proportions (Touvron et al. 2023, Table 1), renormalized over `domains` if given."""
    table = dict(LLAMA1_SAMPLING)
    if domains is not None:
        unknown = sorted(set(domains) - set(table))
        if unknown:
            raise ValueError(f"no LLaMA-1 proportion for domains {unknown}; known: {sorted(table)}")
        table = {d: table[d] for d in domains}
    return make_mixture_weights(table, method="llama1_table1", inputs=["arXiv:2302.13971 Table 1"], date=date,
                                normalize=True)
