"""DoReMi's math (training/mixture/doremi.py) against hand-computed values and its invariants."""

import math

import pytest

torch = pytest.importorskip("torch")

from training.mixture.doremi import (  # noqa: E402
    domain_excess_loss, domain_sums, max_weight_change, objective_token_weights, running_average, time_average,
    token_excess_loss, uniform, update_domain_weights)


def test_excess_loss_clips_per_token_and_averages_over_the_domains_tokens():
    proxy = torch.tensor([[3.0, 1.0, 9.0], [2.0, 2.0, 4.0]])
    ref = torch.tensor([[1.0, 2.0, 0.0], [2.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])   # the 9.0 is padding: not counted
    ids = torch.tensor([0, 1])
    excess = token_excess_loss(proxy, ref, mask)
    assert excess.tolist() == [[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]]   # 1 - 2 clipped to 0, not -1
    sums, tokens = domain_sums(excess, mask, ids, 3)
    assert sums.tolist() == [2.0, 4.0, 0.0] and tokens.tolist() == [2.0, 3.0, 0.0]
    lam = domain_excess_loss(sums, tokens, previous=torch.tensor([9.0, 9.0, 0.7]))
    assert lam.tolist() == pytest.approx([1.0, 4.0 / 3.0, 0.7])   # domain 2 absent: keeps its last value


def test_sums_add_over_micro_batches_like_one_batch():
    g = torch.Generator().manual_seed(0)
    values, mask = torch.rand(6, 5, generator=g), (torch.rand(6, 5, generator=g) > 0.3).double()
    ids = torch.tensor([0, 2, 1, 0, 2, 2])
    whole = domain_sums(values, mask, ids, 3)
    a, b = domain_sums(values[:4], mask[:4], ids[:4], 3), domain_sums(values[4:], mask[4:], ids[4:], 3)
    assert torch.allclose(whole[0], a[0] + b[0]) and torch.allclose(whole[1], a[1] + b[1])


def test_update_matches_hand_computed_values():
    alpha = torch.tensor([0.5, 0.5])
    lam = torch.tensor([math.log(2.0), 0.0])
    # alpha' = (0.5 * 2, 0.5 * 1) -> normalized (2/3, 1/3)
    assert update_domain_weights(alpha, lam, eta=1.0, smoothing=0.0).tolist() == pytest.approx([2 / 3, 1 / 3])
    # smoothed with c = 0.1: 0.9 * (2/3, 1/3) + 0.1 / 2
    assert update_domain_weights(alpha, lam, eta=1.0, smoothing=0.1).tolist() == pytest.approx([0.65, 0.35])
    # eta = 2 squares the factor: (0.5 * 4, 0.5) -> (0.8, 0.2)
    assert update_domain_weights(alpha, lam, eta=2.0, smoothing=0.0).tolist() == pytest.approx([0.8, 0.2])
    # three domains, default eta = 1 and c = 1e-3
    alpha3 = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    lam3 = torch.tensor([1.0, 0.5, 0.0])
    raw = [0.2 * math.e, 0.3 * math.exp(0.5), 0.5]
    want = [(1 - 1e-3) * r / sum(raw) + 1e-3 / 3 for r in raw]
    assert update_domain_weights(alpha3, lam3).tolist() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_weights_stay_on_the_simplex_and_above_c_over_k(seed):
    g = torch.Generator().manual_seed(seed)
    k, c = 7, 1e-3
    alpha = uniform(k)
    for _ in range(50):
        lam = torch.rand(k, generator=g, dtype=torch.float64) * 20   # large steps push weights to the corners
        alpha = update_domain_weights(alpha, lam, eta=1.0, smoothing=c)
        assert float(alpha.sum()) == pytest.approx(1.0, abs=1e-12)
        assert float(alpha.min()) >= c / k - 1e-15
        assert torch.isfinite(alpha).all()


def test_eta_zero_and_equal_losses_give_uniform():
    k = 5
    lam = torch.tensor([0.1, 3.0, 0.0, 7.5, 2.0], dtype=torch.float64)
    assert torch.allclose(update_domain_weights(uniform(k), lam, eta=0.0), uniform(k))
    assert torch.allclose(update_domain_weights(uniform(k), torch.full((k,), 2.3)), uniform(k))
    # the average of a trajectory of uniform weights is uniform
    assert torch.allclose(time_average([uniform(k).tolist()] * 4), uniform(k))


def test_no_overflow_when_eta_times_excess_is_huge():
    alpha = update_domain_weights(uniform(3), torch.tensor([1000.0, 0.0, 0.0]), smoothing=1e-3)
    assert alpha.tolist() == pytest.approx([1 - 2e-3 / 3, 1e-3 / 3, 1e-3 / 3])


def test_time_average_and_running_average_agree():
    traj = [[0.5, 0.5], [0.7, 0.3], [0.9, 0.1]]
    assert time_average(traj).tolist() == pytest.approx([0.7, 0.3])
    avg = torch.zeros(2, dtype=torch.float64)
    for t, w in enumerate(traj, start=1):
        avg = running_average(avg, torch.tensor(w), t)
    assert avg.tolist() == pytest.approx([0.7, 0.3])
    with pytest.raises(ValueError):
        time_average([])


def test_objective_weights_paper_and_reference_normalizers():
    alpha = torch.tensor([0.6, 0.3, 0.1])
    tokens = torch.tensor([10.0, 30.0, 0.0])
    # the paper: alpha_i / N_i, so sum_t f * loss = sum_i alpha_i * mean_i
    assert objective_token_weights(alpha, tokens, "domain_mean").tolist() == pytest.approx([0.06, 0.01, 0.0])
    # the reference implementation: alpha_i / sum_j alpha_j N_j = alpha_i / 15
    assert objective_token_weights(alpha, tokens, "token_weighted").tolist() == pytest.approx([0.04, 0.02, 0.1 / 15])
    # with the same tokens per domain both are proportional to alpha
    same = torch.tensor([8.0, 8.0, 8.0])
    a = objective_token_weights(alpha, same, "domain_mean")
    b = objective_token_weights(alpha, same, "token_weighted")
    assert torch.allclose(a / a.sum(), b / b.sum())
    with pytest.raises(ValueError, match="normalizer"):
        objective_token_weights(alpha, tokens, "mean")


def test_bad_settings_and_max_change():
    with pytest.raises(ValueError, match="smoothing"):
        update_domain_weights(uniform(2), torch.zeros(2), smoothing=1.5)
    with pytest.raises(ValueError, match="eta"):
        update_domain_weights(uniform(2), torch.zeros(2), eta=-1)
    assert max_weight_change({"a": 0.5, "b": 0.5}, {"a": 0.4, "b": 0.55, "c": 0.05}) == pytest.approx(0.1)
