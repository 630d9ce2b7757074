"""The pretraining blend: megatron-core's builder over the tiny export, shares checked, fixed valid sets."""

import tempfile

import numpy as np
import pytest

pytest.importorskip("megatron.core")

from training.data.blend import BlendShareError, build_pretrain_data, check_share, collate  # noqa: E402


def _build(tiny_export, weights, **kw):
    out, _, manifest, _ = tiny_export
    args = dict(private_dir=tempfile.mkdtemp(), split="80,20,0", seq_length=32, seed=7, train_samples=200, valid_samples_per_domain=6,
                share_tolerance=0.02)
    args.update(kw)
    return build_pretrain_data(out, manifest, weights, **args)


def test_blend_follows_weights_and_valid_sets_are_fixed(tiny_export):
    weights = {"books": 0.5, "wikipedia": 0.3, "arxiv": 0.2}
    data = _build(tiny_export, weights)
    assert data.domains == ("arxiv", "books", "wikipedia")
    for d in data.domains:
        assert abs(data.planned_share[d] - weights[d]) <= 1 / 200 + 1e-9
        assert len(data.valid[d]) >= 6
    again = _build(tiny_export, weights)
    for d in data.domains:
        for i in range(3):
            assert np.array_equal(np.asarray(data.valid[d][i]["tokens"]), np.asarray(again.valid[d][i]["tokens"]))
    batch = collate([data.train[i] for i in range(4)])
    assert batch["tokens"].shape == (4, 32) and batch["dataset_id"].shape == (4,)
    # labels are the next tokens
    assert np.array_equal(np.asarray(data.train[0]["tokens"])[1:], np.asarray(data.train[0]["labels"])[:-1])


def test_share_check_fails_loudly():
    with pytest.raises(BlendShareError, match="books"):
        check_share({"books": 0.6, "arxiv": 0.4}, {"books": 0.5, "arxiv": 0.5}, 0.02, what="test")


def test_unknown_domain_is_refused(tiny_export):
    with pytest.raises(ValueError, match="stackexchange"):
        _build(tiny_export, {"books": 0.5, "stackexchange": 0.5})


def test_a_split_too_small_for_one_sample_is_refused(tiny_export):
    # 1% of 26 books documents is one (empty) document: megatron-core would loop forever looking for a sample
    with pytest.raises(ValueError, match=r"books: its valid split \(98,1,1\) holds 1 tokens"):
        _build(tiny_export, {"books": 0.5, "wikipedia": 0.5}, split="98,1,1")
