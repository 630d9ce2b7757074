"""PPO's arithmetic for RLHF as pure functions on tensors (InstructGPT: Ouyang et al. 2022, whose PPO
setup follows Stiennon et al. 2020 and Ziegler et al. 2019).

Every tensor is [b, t] over the action positions of a batch of sequences: position i holds the
quantities of the token at sequence position i + 1 (its log-probability under the policy and the
reference, the value of the state before it), and `mask` is 1 where that token is a response token
and 0 over the prompt and the padding. A sequence's response tokens are contiguous in the mask.

    per-token reward r_i = -beta * (log pi(a_i) - log pi_ref(a_i))   (+ the reward model's score on the
                                                                        last response token)
    GAE (Schulman et al. 2016): delta_i = r_i + gamma V_{i+1} - V_i,  A_i = delta_i + gamma lambda A_{i+1},
                                 V after the last response token = 0,  returns R_i = A_i + V_i
    policy loss (Schulman et al. 2017): -min(rho A, clip(rho, 1 - eps, 1 + eps) A),  rho = pi / pi_old
    value loss: 1/2 max((V - R)^2, (clip(V, V_old - eps_v, V_old + eps_v) - R)^2)
    whitening: (x - mean) / sqrt(var + 1e-8) over the masked entries
    adaptive KL (Ziegler et al. 2019, section 2.2): beta <- beta (1 + K_beta clip(KL / target - 1, -0.2, 0.2)
                                                               n_steps / horizon)

Loss functions return per-token terms (masked); the caller reduces them over the global batch so that
data-parallel ranks take one step on one mean.
"""

from __future__ import annotations

import dataclasses

WHITEN_EPS = 1e-8


def masked_sum(x, mask):
    return (x * mask).sum()


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp_min(1)


def kl_rewards(logp, ref_logp, mask, scores, *, beta: float):
    """(rewards [b, t], kl [b, t]): -beta times the per-token KL estimate log pi - log pi_ref on every
    response token, plus each sequence's score [b] on its last response token (the reward model scores
    a whole response once). kl is the estimate itself, 0 outside the mask; its sum over a sequence is an
    unbiased estimate of KL(pi || pi_ref) of that response (the responses are drawn from pi)."""
    import torch

    kl = (logp - ref_logp) * mask
    rewards = -beta * kl
    last = last_index(mask)  # [b]
    rewards = rewards.clone()
    rewards[torch.arange(mask.size(0)), last] += scores.to(rewards.dtype)
    return rewards, kl


def last_index(mask):
    """Index [b] of each row's last masked position (every row must have one)."""
    import torch

    t = mask.size(1)
    if bool((mask.sum(1) == 0).any()):
        raise ValueError("a sequence has no response token: nothing to score")
    positions = torch.arange(t, device=mask.device).expand_as(mask)
    return torch.where(mask > 0, positions, torch.full_like(positions, -1)).max(1).values


def gae(rewards, values, mask, *, gamma: float, lam: float):
    """(advantages, returns) [b, t] by generalized advantage estimation over the response tokens; 0 outside
    the mask. The episode ends after the last response token (its next value is 0); prompt and padding
    positions neither add reward nor pass value back."""
    import torch

    rewards, values, mask = rewards * mask, values * mask, mask.to(rewards.dtype)
    b, t = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(b, dtype=rewards.dtype, device=rewards.device)
    next_adv = torch.zeros_like(next_value)
    for i in reversed(range(t)):
        m = mask[:, i]
        delta = rewards[:, i] + gamma * next_value - values[:, i]
        adv = delta + gamma * lam * next_adv
        advantages[:, i] = adv * m
        # a padding position (m = 0) carries the later state's quantities through unchanged: padding lies
        # after the response, where they are zero, so the last response token sees V = 0, A = 0 after it
        next_value = torch.where(m > 0, values[:, i], next_value)
        next_adv = torch.where(m > 0, adv, next_adv)
    returns = (advantages + values) * mask
    return advantages, returns


def masked_moments(x, mask):
    """(sum, sum of squares, count) of the masked entries, as a float64 tensor [3]: summed over data-parallel
    ranks before whitening, so that every rank whitens with the global batch's mean and variance."""
    import torch

    m = mask.double()
    xd = x.double()
    return torch.stack([(xd * m).sum(), (xd * xd * m).sum(), m.sum()])


def whiten(x, mask, moments=None, *, shift_mean: bool = True):
    """(x - mean) / sqrt(var + 1e-8) over the masked entries (population variance), 0 outside the mask.
    `moments`: global (sum, sum of squares, count) from masked_moments (default: this batch's)."""
    import torch

    s, s2, n = (moments if moments is not None else masked_moments(x, mask)).tolist()
    mean = s / n
    var = max(s2 / n - mean * mean, 0.0)
    out = (x - mean) * (1.0 / (var + WHITEN_EPS) ** 0.5)
    if not shift_mean:
        out = out + mean
    return torch.where(mask > 0, out, torch.zeros_like(out))


def clipped_policy_loss(logp, old_logp, advantages, mask, *, clip: float):
    """(per-token loss [b, t], per-token clipped indicator [b, t]): PPO's clipped surrogate, negated to be
    minimized. A token counts as clipped when the clipped term is the one the minimum picked (its
    gradient is then zero)."""
    import torch

    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    loss = -torch.minimum(unclipped, clipped) * mask
    clipped_used = (clipped < unclipped).to(logp.dtype) * mask
    return loss, clipped_used


def clipped_value_loss(values, old_values, returns, mask, *, clip: float):
    """(per-token loss [b, t], per-token clipped indicator [b, t]): 1/2 max((V - R)^2, (V_clip - R)^2) with V_clip
    the new value kept within `clip` of the rollout's value (as in PPO2's baselines and Stiennon et al.)."""
    import torch

    v_clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    a = (values - returns) ** 2
    b = (v_clipped - returns) ** 2
    loss = 0.5 * torch.maximum(a, b) * mask
    return loss, (b > a).to(values.dtype) * mask


def entropy_from_logits(logits):
    """Entropy [...] of the softmax over the last axis (nats)."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def token_logprobs(logits, tokens):
    """log softmax(logits)[token] [...]: logits [..., V], tokens [...] (int)."""
    import torch

    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@dataclasses.dataclass(kw_only=True, slots=True)
class KLController:
    """The KL coefficient beta: fixed, or Ziegler et al.'s proportional controller towards a target KL.

    Its state is `beta` (saved in PPO checkpoints); `update` is called once per rollout batch with that
    batch's mean per-sequence KL and its number of sequences."""
    beta: float
    target: float | None = None
    """target KL per sequence (nats); None = beta stays fixed"""
    horizon: float = 10000.0
    """sequences over which the controller closes the gap (Ziegler et al.: 10000)"""
    k_beta: float = 0.1
    """proportional gain (Ziegler et al.: 0.1)"""

    def update(self, kl: float, n_steps: int) -> float:
        if self.target is None:
            return self.beta
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.beta *= 1.0 + self.k_beta * error * n_steps / self.horizon
        return self.beta
