"""PPO's reward sources: a reward model's score, or a known simple function (tests, smoke runs).

Both score a rollout batch (training/align/rollout.py) with one number per response [b]:
- `ModelReward`: the reward model (training/model/heads.py's ScalarHeadGPT, loaded from an RM run) read at
  each sequence's last real token, as InstructGPT scores a (prompt, response) pair.
- `TokenFractionReward`: the fraction of response tokens (the drawn EOD included) equal to one token.
  Its optimum is known (every token is that token), so a test can watch PPO climb towards it.
"""

from __future__ import annotations


class ModelReward:
    def __init__(self, model, *, bf16: bool, device: str):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.bf16, self.device = bf16, device

    def score(self, batch):
        import torch

        from training.loop.step import autocast
        from training.model.heads import scores_at_last_token

        with torch.no_grad(), autocast(self.device, self.bf16):
            values = self.model(batch.tokens, batch.position_ids, None)  # [b, L] float32
        return scores_at_last_token(values.float(), batch.nonpad)


class TokenFractionReward:
    def __init__(self, token_id: int, *, device: str):
        self.token_id, self.device = int(token_id), device

    def score(self, batch):
        import torch

        return torch.tensor([sum(t == self.token_id for t in r) / len(r) for r in batch.response_tokens],
                            dtype=torch.float32, device=self.device)


def single_token_id(tokenizer, text: str) -> int:
    """The id of `text`, which must encode to exactly one token."""
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    if len(ids) != 1:
        raise ValueError(f"reward.token {text!r} encodes to {len(ids)} tokens {ids}; it must be exactly one. "
                         f"Fix: a shorter text, e.g. a frequent word with its leading space")
    return ids[0]
