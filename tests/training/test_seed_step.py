"""The random stream of a training step is a function of (seed, step) alone (training/loop/parallel.py:seed_step):
what a resumed run relies on to draw the dropout masks the uninterrupted run drew."""

import pytest

pytest.importorskip("megatron.core")


def _masks(seed, step):
    import torch

    from training.loop.parallel import seed_step

    seed_step(seed, step, on_gpu=False)
    return torch.nn.functional.dropout(torch.ones(4096), p=0.5)


def test_a_step_draws_the_same_masks_whatever_ran_before(megatron_cpu):
    import torch

    first = _masks(1234, 7)
    torch.rand(1000)  # what a kill, an evaluation or a sampler would have drawn in between
    _masks(1234, 3)
    again = _masks(1234, 7)
    assert torch.equal(first, again)
    assert not torch.equal(first, _masks(1234, 8)) and not torch.equal(first, _masks(99, 7))
    assert 0.4 < (first == 0).float().mean() < 0.6  # it is dropout, not a constant
