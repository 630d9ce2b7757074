"""PPO's arithmetic checked by hand on tiny cases (numbers worked out in the comments)."""

import pytest

torch = pytest.importorskip("torch")

from training.align.ppo_math import (KLController, clipped_policy_loss, clipped_value_loss,  # noqa: E402
                                     entropy_from_logits, gae, kl_rewards, last_index, masked_moments,
                                     token_logprobs, whiten)

def same(got, want):
    torch.testing.assert_close(got.double(), torch.tensor(want, dtype=torch.float64), atol=1e-6, rtol=1e-6)


# one sequence: a prompt action position, three response tokens, one padding position
MASK = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0]])


def test_per_token_kl_reward_adds_the_score_on_the_last_response_token():
    logp = torch.tensor([[-9.0, -1.0, -2.0, -0.5, -7.0]])
    ref = torch.tensor([[-1.0, -1.5, -1.0, -0.5, -3.0]])
    rewards, kl = kl_rewards(logp, ref, MASK, torch.tensor([2.0]), beta=0.1)
    # kl = logp - ref on the response: 0.5, -1, 0; reward = -0.1 kl, + 2.0 on the last response token
    same(kl, [[0.0, 0.5, -1.0, 0.0, 0.0]])
    same(rewards, [[0.0, -0.05, 0.1, 2.0, 0.0]])


def test_last_index_and_a_response_free_row_is_refused():
    assert last_index(torch.tensor([[0.0, 1, 1, 0], [1.0, 1, 1, 1]])).tolist() == [2, 3]
    with pytest.raises(ValueError, match="no response token"):
        last_index(torch.tensor([[0.0, 0.0]]))


def test_gae_gamma_1_lambda_095_on_a_three_step_example():
    rewards = torch.tensor([[5.0, 0.0, 0.0, 1.0, 9.0]])  # prompt and padding rewards must be ignored
    values = torch.tensor([[3.0, 0.5, 0.2, 0.4, 8.0]])
    adv, ret = gae(rewards, values, MASK, gamma=1.0, lam=0.95)
    # delta_2 = 1 + 0 - 0.4 = 0.6                   A_2 = 0.6
    # delta_1 = 0 + 0.4 - 0.2 = 0.2                 A_1 = 0.2 + 0.95 * 0.6 = 0.77
    # delta_0 = 0 + 0.2 - 0.5 = -0.3                A_0 = -0.3 + 0.95 * 0.77 = 0.4315
    # returns = A + V = 0.9315, 0.97, 1.0 (with gamma = 1 and lambda = 1 every return would be 1.0)
    same(adv, [[0.0, 0.4315, 0.77, 0.6, 0.0]])
    same(ret, [[0.0, 0.9315, 0.97, 1.0, 0.0]])
    _, ret1 = gae(rewards, values, MASK, gamma=1.0, lam=1.0)
    same(ret1, [[0.0, 1.0, 1.0, 1.0, 0.0]])


def test_gae_rows_of_different_lengths_are_independent():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    values = torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    adv, _ = gae(rewards, values, mask, gamma=1.0, lam=0.95)
    # row 0: A_1 = 1 - 0.5 = 0.5, A_0 = (0 + 0.5 - 0.5) + 0.95 * 0.5 = 0.475; row 1: A = 2 - 1 = 1
    same(adv, [[0.0, 0.475, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])


def test_whitening_uses_the_masked_entries_only():
    x = torch.tensor([[100.0, 1.0, 2.0, 3.0, -50.0], [4.0, 0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    # masked entries 1, 2, 3, 4: mean 2.5, population variance 1.25
    s = 1.25 ** 0.5
    out = whiten(x, mask)
    same(out, [[0.0, -1.5 / s, -0.5 / s, 0.5 / s, 0.0], [1.5 / s, 0, 0, 0, 0]])
    assert whiten(x, mask, shift_mean=False)[0, 1].item() == pytest.approx(-1.5 / s + 2.5, abs=1e-6)
    # moments summed over two halves (two data-parallel ranks) give the same whitening
    m = masked_moments(x[:1], mask[:1]) + masked_moments(x[1:], mask[1:])
    same(whiten(x[:1], mask[:1], m), out[:1].tolist())


def test_clipped_surrogate_on_the_four_cases():
    # (ratio, advantage): 1.5, +1 -> clipped at 1.2: loss -1.2; 0.5, -1 -> clipped at 0.8: loss 0.8;
    #                     0.5, +1 -> unclipped: loss -0.5;      1.5, -1 -> unclipped: loss 1.5
    ratio = torch.tensor([[1.5, 0.5, 0.5, 1.5]])
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    old = torch.zeros(1, 4)
    logp = torch.log(ratio).requires_grad_(True)
    mask = torch.ones(1, 4)
    loss, clipped = clipped_policy_loss(logp, old, adv, mask, clip=0.2)
    same(loss, [[-1.2, 0.8, -0.5, 1.5]])
    assert clipped.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    loss.sum().backward()
    # d/dlogp of -ratio * A = -ratio * A on the unclipped tokens; 0 where the clip is active
    same(logp.grad, [[0.0, 0.0, -0.5, 1.5]])
    masked, _ = clipped_policy_loss(logp.detach(), old, adv, torch.tensor([[1.0, 0.0, 0.0, 0.0]]), clip=0.2)
    same(masked, [[-1.2, 0.0, 0.0, 0.0]])


def test_clipped_value_loss():
    old = torch.tensor([[1.0, 1.0, 1.0]])
    new = torch.tensor([[1.5, 1.5, 1.1]])
    returns = torch.tensor([[2.0, 1.0, 3.0]])
    loss, clipped = clipped_value_loss(new, old, returns, torch.ones(1, 3), clip=0.2)
    # 1: (1.5-2)^2 = 0.25, clipped V 1.2: (1.2-2)^2 = 0.64 -> 0.32 (clipped term)
    # 2: 0.25, (1.2-1)^2 = 0.04 -> 0.125;  3: inside the clip range: (1.1-3)^2 / 2 = 1.805
    same(loss, [[0.32, 0.125, 1.805]])
    assert clipped.tolist() == [[1.0, 0.0, 0.0]]


def test_entropy_and_token_logprobs():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1e9, -1e9]])
    assert entropy_from_logits(logits).tolist() == pytest.approx([torch.log(torch.tensor(4.0)).item(),
                                                                  torch.log(torch.tensor(2.0)).item()])
    assert token_logprobs(logits, torch.tensor([3, 1])).tolist() == pytest.approx([-1.3862944, -0.6931472])


def test_adaptive_kl_controller_is_ziegler_proportional_control():
    fixed = KLController(beta=0.02)
    assert fixed.update(100.0, 256) == 0.02
    c = KLController(beta=0.1, target=6.0, horizon=10000, k_beta=0.1)
    # KL 9: error 9/6 - 1 = 0.5 clipped to 0.2: beta * (1 + 0.1 * 0.2 * 256 / 10000) = 0.1 * 1.000512
    assert c.update(9.0, 256) == pytest.approx(0.1000512)
    # KL 5.7: error -0.05 (inside the clip): * (1 - 0.1 * 0.05 * 256 / 10000) = * 0.999872
    assert c.update(5.7, 256) == pytest.approx(0.1000512 * 0.999872)
    # KL 0: error -1 clipped to -0.2
    assert c.update(0.0, 10000) == pytest.approx(0.1000512 * 0.999872 * 0.98)
