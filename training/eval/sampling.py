"""Sampled continuations from a GPT: temperature, top-k, top-p (nucleus), max tokens, seed.

The one sampler of the project: evaluation's generations, SFT's logged samples and PPO's rollouts all
draw through `sample`. Each new token re-runs the whole sequence (no key/value cache): simple and
exact for the small models and short generations it serves here; long generation needs a cache.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SamplingConfig:
    max_tokens: int = 64
    """Tokens generated after the prompt (fewer when EOD is drawn)."""
    temperature: float = 1.0
    """Logits are divided by it; 0 = greedy (argmax)."""
    top_k: int = 0
    """Keep only the k most likely tokens (0 = all)."""
    top_p: float = 1.0
    """Keep the smallest set of most likely tokens whose probability reaches p (1 = all)."""
    seed: int = 0

    def __post_init__(self):
        if self.max_tokens < 1 or self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"sampling settings out of range: {self}")


def filter_logits(logits, *, temperature: float, top_k: int, top_p: float):
    """Scaled logits [b, V] with the tokens outside top-k / top-p set to -inf (temperature > 0)."""
    import torch

    logits = logits.float() / temperature
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # [b, 1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # probability of the more likely tokens
        drop_sorted = before >= top_p  # a token is kept while the ones before it have not reached p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample(model, prompts: list[list[int]], cfg: SamplingConfig, *, eod_id: int, vocab_size: int,
           device: str = "cpu") -> list[list[int]]:
    """Continuations (token ids, prompt excluded, EOD excluded) of each prompt; the model must be on one rank
    (TP = PP = 1) and return logits [b, s, V] when called without labels. `vocab_size` drops padding rows."""
    import torch

    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    model.eval()
    out = []
    with torch.no_grad():
        for prompt in prompts:  # one at a time: prompts differ in length and no padding is needed
            ids = list(prompt) or [eod_id]  # an empty prompt starts after a document boundary
            new: list[int] = []
            limit = getattr(model, "max_sequence_length", None) if learned_positions(model) else None
            for _ in range(cfg.max_tokens):
                if limit is not None and len(ids) >= limit:
                    break  # learned positions end here
                tokens = torch.tensor([ids], device=device)
                positions = torch.arange(len(ids), device=device)[None]
                logits = model(tokens, positions, None)[:, -1, :vocab_size]  # [1, V]
                if cfg.temperature == 0:
                    token = int(logits.argmax(-1))
                else:
                    probs = torch.softmax(filter_logits(logits, temperature=cfg.temperature, top_k=cfg.top_k,
                                                        top_p=cfg.top_p), dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=gen))
                if token == eod_id:
                    break
                ids.append(token)
                new.append(token)
            out.append(new)
    return out


def learned_positions(model) -> bool:
    return getattr(model, "position_embedding_type", None) == "learned_absolute"
