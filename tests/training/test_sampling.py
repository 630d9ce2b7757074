"""The sampler shared by evaluation, SFT and PPO: filters checked by hand, seeds, EOD, greedy."""

import math

import pytest
import torch

from training.eval.sampling import SamplingConfig, filter_logits, sample


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    kept = filter_logits(logits, temperature=1.0, top_k=2, top_p=1.0)
    assert torch.isfinite(kept).tolist() == [[False, True, True, False]]


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    # 0.5 < 0.7: the second token is needed; 0.5 + 0.3 >= 0.7: the third is not
    assert torch.isfinite(filter_logits(logits, temperature=1.0, top_k=0, top_p=0.7)).tolist() == \
        [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, temperature=1.0, top_k=0, top_p=0.5)).tolist() == \
        [[True, False, False, False]]
    # the kept probabilities renormalize: 0.5 / 0.8 and 0.3 / 0.8
    p = torch.softmax(filter_logits(logits, temperature=1.0, top_k=0, top_p=0.7), -1)
    assert p[0, :2].tolist() == pytest.approx([0.625, 0.375])


def test_temperature_scales_the_logits():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    p = torch.softmax(filter_logits(logits, temperature=2.0, top_k=0, top_p=1.0), -1)
    assert p[0].tolist() == pytest.approx([1 / (1 + 3 ** 0.5), 3 ** 0.5 / (1 + 3 ** 0.5)])


class _Table:
    """A stand-in model: the next-token logits depend only on the last token (a bigram table)."""

    def __init__(self, table):
        self.table = torch.tensor(table).log()

    def eval(self):
        return self

    def __call__(self, tokens, positions, mask):
        return self.table[tokens]  # [b, s, V]


def test_greedy_follows_the_argmax_and_stops_at_eod():
    # 0 = EOD; from 1 the likeliest is 2, from 2 it is 3, from 3 it is EOD
    model = _Table([[0.1, 0.3, 0.3, 0.3], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7], [0.7, 0.1, 0.1, 0.1]])
    out = sample(model, [[1]], SamplingConfig(max_tokens=10, temperature=0), eod_id=0, vocab_size=4)
    assert out == [[2, 3]]


def test_same_seed_same_samples_and_frequencies_follow_the_table():
    model = _Table([[0.25] * 4, [0.0001, 0.6, 0.3, 0.0999], [0.0001, 0.6, 0.3, 0.0999], [0.0001, 0.6, 0.3, 0.0999]])
    cfg = SamplingConfig(max_tokens=2000, temperature=1.0, seed=3)
    a = sample(model, [[1]], cfg, eod_id=0, vocab_size=4)[0]
    assert a == sample(model, [[1]], cfg, eod_id=0, vocab_size=4)[0]
    assert a != sample(model, [[1]], SamplingConfig(max_tokens=2000, seed=4), eod_id=0, vocab_size=4)[0]
    if len(a) > 500:  # EOD has probability 1e-4 per token
        assert a.count(1) / len(a) == pytest.approx(0.6, abs=0.05)
    # top-k 1 is greedy
    assert set(sample(model, [[1]], SamplingConfig(max_tokens=50, top_k=1), eod_id=0, vocab_size=4)[0]) == {1}


def test_padding_rows_beyond_the_vocabulary_are_never_drawn():
    model = _Table([[0.01, 0.01, 0.98], [0.01, 0.01, 0.98], [0.01, 0.01, 0.98]])  # id 2 is padding
    out = sample(model, [[1]], SamplingConfig(max_tokens=100, seed=1), eod_id=0, vocab_size=2)[0]
    assert 2 not in out


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        SamplingConfig(top_p=0)
    with pytest.raises(ValueError):
        SamplingConfig(temperature=-1)
