"""DoReMi's math as pure functions on tensors (Xie et al. 2023, "DoReMi: Optimizing Data Mixtures Speeds Up
Language Model Pretraining", arXiv:2305.10429, Algorithm 1).

At step t, on a batch drawn with uniform domain weights u = (1/k, ..., 1/k):

    lambda_t[i] = sum over domain i's tokens of max(l_proxy - l_ref, 0) / domain i's tokens   (excess loss)
    alpha'_t    = alpha_{t-1} * exp(eta * lambda_t)                                        (exponentiated gradient)
    alpha_t     = (1 - c) * alpha'_t / sum(alpha'_t) + c * u                               (smoothing)
    the proxy takes a gradient step on L(theta, alpha_t) = sum_i alpha_t[i] * (domain i's token-mean loss)
    output      = (1/T) sum_t alpha_t

Shapes: k domains; a micro-batch is b samples of s tokens; `dataset_id` [b] names each sample's domain.
A domain absent from a batch keeps its last excess loss (the paper is silent; this is what the reference
implementation, github.com/sangmichaelxie/doremi, does).

Two normalizers of the proxy objective are offered (`objective_token_weights`):
- "domain_mean" (default, the paper's L(theta, alpha)): each domain's losses are averaged over that
  domain's tokens in the batch, then weighted by alpha. A domain's pull on the gradient is alpha_i,
  whatever share of the batch it happened to get.
- "token_weighted" (the reference implementation's training step): every token's loss is weighted by its
  domain's alpha and the sum is divided by the batch's total alpha mass, sum over tokens of alpha_{d(t)}.
  A domain's pull is alpha_i * N_i / sum_j alpha_j N_j: with uniform sampling N_i is about the same for
  every domain, so the two agree in expectation, but per batch the reference implementation's follows
  the sampling noise of N_i.
The paper's is the default because it is the objective Algorithm 1 states and its weights do not depend
on how many of a domain's samples a batch happened to draw.
"""

from __future__ import annotations

import math
from typing import Literal

Normalizer = Literal["domain_mean", "token_weighted"]
NORMALIZERS: tuple[str, ...] = ("domain_mean", "token_weighted")


def token_excess_loss(proxy_loss, reference_loss, loss_mask):
    """max(l_proxy - l_ref, 0) per token [b, s], zero where loss_mask is 0."""
    import torch

    return torch.clamp(proxy_loss.double() - reference_loss.double(), min=0.0) * loss_mask.double()


def domain_sums(token_values, loss_mask, dataset_id, k: int):
    """(per-domain sum of `token_values` [k], per-domain loss tokens [k]) of one micro-batch, float64. Sums,
    not means, so that micro-batches and data-parallel ranks can be added before dividing."""
    import torch

    sums = torch.zeros(k, dtype=torch.float64, device=token_values.device)
    tokens = torch.zeros(k, dtype=torch.float64, device=token_values.device)
    sums.index_add_(0, dataset_id, (token_values.double() * loss_mask.double()).sum(1))
    tokens.index_add_(0, dataset_id, loss_mask.double().sum(1))
    return sums, tokens


def domain_excess_loss(excess_sums, tokens, previous):
    """lambda [k]: each domain's mean excess loss over its tokens in the batch; `previous` [k] where a domain
    has no token in the batch."""
    import torch

    present = tokens > 0
    return torch.where(present, excess_sums / torch.clamp(tokens, min=1.0), previous.to(excess_sums.dtype))


def update_domain_weights(alpha, excess, *, eta: float = 1.0, smoothing: float = 1e-3):
    """alpha_t from alpha_{t-1} and lambda_t: exponentiated-gradient step, normalize, mix with uniform.

    The step is taken in log space (log alpha + eta * lambda, then softmax): the same numbers as
    alpha * exp(eta * lambda) / sum, without overflow when eta * lambda is large."""
    import torch

    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing c = {smoothing}: must lie in [0, 1]")
    if eta < 0:
        raise ValueError(f"eta = {eta}: must be >= 0")
    alpha = alpha.double()
    k = alpha.numel()
    stepped = torch.softmax(torch.log(alpha) + eta * excess.double(), dim=0)
    return (1.0 - smoothing) * stepped + smoothing / k


def running_average(average, weights, count: int):
    """The mean of `count` weight vectors, given the mean of the first count - 1 (`average`) and the last."""
    if count < 1:
        raise ValueError(f"count {count}: the average needs at least one vector")
    return average.double() + (weights.double() - average.double()) / count


def time_average(trajectory):
    """(1/T) sum_t alpha_t of a [T, k] trajectory (what Algorithm 1 returns)."""
    import torch

    t = torch.as_tensor(trajectory, dtype=torch.float64)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"trajectory of shape {tuple(t.shape)}: expected [T >= 1, k]")
    return t.mean(0)


def objective_token_weights(alpha, tokens, normalizer: Normalizer = "domain_mean"):
    """f [k]: the proxy objective is sum over the batch's tokens of f[domain of the token] * token loss.

    domain_mean:    f_i = alpha_i / N_i    (sum_i alpha_i * mean loss of domain i; 0 for an absent domain)
    token_weighted: f_i = alpha_i / sum_j alpha_j N_j
    where N_i is domain i's loss tokens in the (global) batch."""
    import torch

    alpha, tokens = alpha.double(), tokens.double()
    if normalizer == "domain_mean":
        return torch.where(tokens > 0, alpha / torch.clamp(tokens, min=1.0), torch.zeros_like(alpha))
    if normalizer == "token_weighted":
        return alpha / torch.clamp((alpha * tokens).sum(), min=1e-30)
    raise ValueError(f"normalizer {normalizer!r}: expected one of {NORMALIZERS}")


def max_weight_change(a: dict[str, float], b: dict[str, float]) -> float:
    """max_i |a_i - b_i| over the union of domains (a missing domain counts as weight 0): the stopping rule of
    iterated DoReMi."""
    return max(abs(a.get(d, 0.0) - b.get(d, 0.0)) for d in set(a) | set(b))


def uniform(k: int):
    import torch

    if k < 1:
        raise ValueError("uniform weights need at least one domain")
    return torch.full((k,), 1.0 / k, dtype=torch.float64)


def log_uniform_loss(vocab_size: int) -> float:
    """ln V: the loss of a model that predicts every token id equally (an untrained one)."""
    return math.log(vocab_size)
