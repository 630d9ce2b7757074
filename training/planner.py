"""Data-size planner: how many tokens a model needs, how many each domain has, and the shortfall.

- Tokens needed: the Chinchilla rule, about 20 training tokens per parameter (Hoffmann et al. 2022,
  "Training Compute-Optimal Large Language Models", arXiv:2203.15556: Table 3 lists 1.4T tokens for
  67B parameters, i.e. ~20.9 tokens per parameter, and 1.5T for 70B per section 4.2; 20 is the
  usual rounding).
- Epochs a domain may be repeated: LLaMA-1 (Touvron et al. 2023, arXiv:2302.13971, Table 1) trained
  Wikipedia for 2.45 epochs and Books for 2.23, the other sources about once (CommonCrawl 1.10, C4
  1.06, GitHub 0.64, ArXiv 1.06, StackExchange 1.03). Those are the defaults here; a domain not in the
  table gets 1 epoch.
- Per domain, for a mixture weight w: budget = w * tokens needed; usable = available * max epochs;
  epochs needed = budget / available; shortfall = max(0, budget - usable); tokens still to collect =
  shortfall / max epochs (fresh tokens, repeated as often as the domain allows).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

CHINCHILLA_TOKENS_PER_PARAM = 20.0
"""Hoffmann et al. 2022 (arXiv:2203.15556), rounded from Table 3 (67B params -> 1.4T tokens)."""

LLAMA1_EPOCHS: dict[str, float] = {
    "commoncrawl": 1.10, "c4": 1.06, "github": 0.64, "wikipedia": 2.45,
    "books": 2.23, "arxiv": 1.06, "stackexchange": 1.03,
}
"""Epochs per source in LLaMA-1 pretraining (Touvron et al. 2023, arXiv:2302.13971, Table 1)."""

LLAMA1_SAMPLING: dict[str, float] = {
    "commoncrawl": 0.670, "c4": 0.150, "github": 0.045, "wikipedia": 0.045,
    "books": 0.045, "arxiv": 0.025, "stackexchange": 0.020,
}
"""Sampling proportions per source in LLaMA-1 (Touvron et al. 2023, Table 1); they sum to 1."""

DEFAULT_EPOCHS = 1.0


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class DomainPlan:
    domain: str
    weight: float
    budget_tokens: float
    """weight * tokens needed: what training will draw from this domain."""
    available_tokens: float | None
    """Tokens in the export manifest (EOD included); None without a manifest."""
    max_epochs: float
    epochs_needed: float | None
    usable_tokens: float | None
    """available * max_epochs."""
    shortfall_tokens: float | None
    """max(0, budget - usable): tokens the budget lacks even at max_epochs."""
    tokens_to_collect: float | None
    """shortfall / max_epochs: fresh tokens to gather so that the budget is met at max_epochs."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    params: float
    tokens_per_param: float
    tokens_needed: float
    domains: list[DomainPlan]

    @property
    def total_shortfall(self) -> float | None:
        if any(d.shortfall_tokens is None for d in self.domains):
            return None
        return math.fsum(d.shortfall_tokens for d in self.domains)

    def to_json(self) -> dict[str, Any]:
        return {"params": self.params, "tokens_per_param": self.tokens_per_param,
                "tokens_needed": self.tokens_needed, "total_shortfall": self.total_shortfall,
                "domains": [dataclasses.asdict(d) for d in self.domains]}


def tokens_needed(params: float, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> float:
    if params <= 0:
        raise ValueError(f"params={params}: must be positive")
    return params * tokens_per_param


def plan_data(*, params: float, weights: Mapping[str, float], available: Mapping[str, float] | None = None,
              epochs: Mapping[str, float] | None = None,
              tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> Plan:
    """The plan for `params` parameters with mixture `weights` (domain -> fraction, summing to 1)."""
    total = tokens_needed(params, tokens_per_param)
    max_epochs = {**LLAMA1_EPOCHS, **(epochs or {})}
    domains = sorted(set(weights) | set(available or {}))
    rows = []
    for d in domains:
        w = float(weights.get(d, 0.0))
        budget = w * total
        cap = float(max_epochs.get(d, DEFAULT_EPOCHS))
        if cap <= 0:
            raise ValueError(f"epochs[{d}]={cap}: must be positive")
        if available is None:
            rows.append(DomainPlan(domain=d, weight=w, budget_tokens=budget, available_tokens=None, max_epochs=cap,
                                   epochs_needed=None, usable_tokens=None, shortfall_tokens=None,
                                   tokens_to_collect=None))
            continue
        have = float(available.get(d, 0.0))
        usable = have * cap
        shortfall = max(0.0, budget - usable)
        rows.append(DomainPlan(domain=d, weight=w, budget_tokens=budget, available_tokens=have, max_epochs=cap,
                               epochs_needed=(budget / have) if have > 0 else (math.inf if budget > 0 else 0.0),
                               usable_tokens=usable, shortfall_tokens=shortfall,
                               tokens_to_collect=shortfall / cap))
    return Plan(params=params, tokens_per_param=tokens_per_param, tokens_needed=total, domains=rows)


def format_plan(plan: Plan) -> str:
    rule = " (Chinchilla)" if plan.tokens_per_param == CHINCHILLA_TOKENS_PER_PARAM else ""
    lines = [f"params {plan.params:.4g}  x {plan.tokens_per_param:g} tokens/param{rule} = "
             f"{plan.tokens_needed:.4g} tokens needed",
             f"{'domain':<14}{'weight':>8}{'budget':>12}{'available':>12}{'max ep':>8}{'ep need':>9}"
             f"{'shortfall':>12}{'to collect':>12}"]

    def fmt(x, spec=".4g"):
        return "-" if x is None else format(x, spec)

    for d in plan.domains:
        lines.append(f"{d.domain:<14}{d.weight:>8.4f}{d.budget_tokens:>12.4g}{fmt(d.available_tokens):>12}"
                     f"{d.max_epochs:>8.2f}{fmt(d.epochs_needed, '.3g'):>9}{fmt(d.shortfall_tokens):>12}"
                     f"{fmt(d.tokens_to_collect):>12}")
    if plan.total_shortfall is not None:
        lines.append(f"total shortfall {plan.total_shortfall:.4g} tokens")
    return "\n".join(lines)
