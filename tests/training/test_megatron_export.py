import json
import os
import pickle
import shutil

import numpy as np
import pytest

pytest.importorskip("megatron.core")

from schemas.mixture import make_mixture_weights  # noqa: E402
from training.blend_check import check_blend  # noqa: E402
from training.data.blend import IdsTokenizer  # noqa: E402
from training.megatron_export import export_part, read_counts, token_dtype  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export


def test_dtype_follows_megatron_core():
    assert token_dtype(1000) is np.uint16
    assert token_dtype(65_499) is np.uint16
    assert token_dtype(65_500) is np.int32  # megatron-core's DType.optimal_dtype threshold
    assert token_dtype(128_256) is np.int32


def test_round_trip_one_eod_per_document(exported, tiny_run):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    out, tok, manifest, _ = exported
    _, texts_by_domain = tiny_run
    for domain, texts in texts_by_domain.items():
        ds = IndexedDataset(os.path.join(out, manifest["domains"][domain]["prefix"]))
        assert ds.index.dtype is np.uint16
        assert len(ds.document_indices) - 1 == len(ds) == len(texts)
        for i, text in enumerate(texts):
            ids = ds[i]
            assert ids[-1] == tok.eod_id and int(np.sum(ids == tok.eod_id)) == 1
            assert tok.tokenizer.decode(ids[:-1].tolist(), skip_special_tokens=False) == text


def test_part_counts_equal_read_back_and_merge_sums_them(exported, tiny_run):
    out, tok, manifest, shards = exported
    _, texts_by_domain = tiny_run
    for (domain, part), counts in shards.items():
        back = read_counts(os.path.join(out, "shards", domain, part))
        assert (back["documents"], back["tokens"]) == (counts["documents"], counts["tokens"])
    for domain, v in manifest["domains"].items():
        assert v["documents"] == len(texts_by_domain[domain])
        assert v["tokens"] == sum(c["tokens"] for (d, _), c in shards.items() if d == domain)
    assert shards[("books", "00001")]["empty_texts"] == 1


def test_export_is_deterministic(exported, tiny_run, tmp_path):
    out, tok, _, _ = exported
    run, _ = tiny_run
    src = os.path.join(run, "00-clean-abc", "data", "domain=books", "part-00000.parquet")
    export_part(src, tok.tokenizer, tok.eod_id, tok.vocab_size, str(tmp_path / "again"))
    for ext in (".bin", ".idx"):
        with open(tmp_path / f"again{ext}", "rb") as a, open(os.path.join(out, "shards", "books", f"00000{ext}"), "rb") as b:
            assert a.read() == b.read()
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]


@pytest.mark.parametrize("weights", [{"books": 0.5, "wikipedia": 0.3, "arxiv": 0.2},
                                     {"books": 0.9, "wikipedia": 0.05, "arxiv": 0.05}])
def test_blend_realizes_the_mixture_weights(exported, weights, tmp_path):
    out, _, manifest, _ = exported
    mixture = make_mixture_weights(weights, method="manual", inputs=["test"], date="2026-11-28")
    report = check_blend(out, manifest, mixture.weights, num_samples=5000, seq_length=64, tolerance=0.005)
    assert report["ok"], json.dumps(report, indent=2)
    assert report["samples"] == 5000 and report["problems"] == []
    assert sum(report["tokens_read"].values()) == 5000 * 64  # every sample read, no padding in these domains
    for d, w in weights.items():
        assert abs(report["realized"][d] - w) <= 0.005
        assert report["opened"][d]["documents"] == manifest["domains"][d]["documents"]


def test_a_mixture_file_that_does_not_fit_the_export_fails(exported):
    out, _, manifest, _ = exported
    # Made for another export: it does not name arxiv, which this export holds; training would drop it.
    report = check_blend(out, manifest, {"books": 0.5, "wikipedia": 0.5}, num_samples=2000, seq_length=64,
                         tolerance=0.005)
    assert not report["ok"] and "['arxiv']" in report["problems"][0] and "Fix:" in report["problems"][0]
    assert abs(report["realized"]["books"] - 0.5) <= 0.005  # the blend itself was right
    # Leaving arxiv out on purpose (weight 0) is a choice the check accepts.
    assert check_blend(out, manifest, {"books": 0.5, "wikipedia": 0.5, "arxiv": 0.0}, num_samples=2000,
                       seq_length=64, tolerance=0.005)["ok"]
    report = check_blend(out, manifest, {"books": 0.4, "github": 0.3, "wikipedia": 0.2, "arxiv": 0.1})
    assert not report["ok"] and "no exported data: ['github']" in report["problems"][0]
    report = check_blend(out, manifest, {"github": 1.0, "books": 0.0, "wikipedia": 0.0, "arxiv": 0.0})
    assert not report["ok"] and "realized" not in report  # nothing to blend


def test_realized_shares_come_from_the_tokens_read(exported, monkeypatch):
    # A blend that hands out other samples than its index says must show in the shares: they are counted
    # from what reading the blend returns, not from the weights.
    from megatron.core.datasets.blended_dataset import BlendedDataset

    out, _, manifest, _ = exported
    real = BlendedDataset.__getitem__
    monkeypatch.setattr(BlendedDataset, "__getitem__",
                        lambda self, i: real(self, i) if i % 2 else {**real(self, i), "dataset_id": 0})
    report = check_blend(out, manifest, {"books": 0.2, "wikipedia": 0.4, "arxiv": 0.4}, num_samples=2000,
                         seq_length=64, tolerance=0.01)
    assert not report["ok"] and "realized token shares depart" in report["problems"][-1]
    assert report["realized"]["arxiv"] > 0.5  # sorted domains: dataset 0 is arxiv


class _CreatesFile:
    """Unpickling this calls open(path, "w"): the file appearing is the proof that code ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_blend_check_never_loads_an_index_cache_from_the_export_folder(exported, tmp_path):
    # megatron-core reads its cached sample indices with numpy.load(allow_pickle=True), by default from
    # <prefix>/cache/GPTDataset_indices/: build that cache for these weights, replace every file by a pickle.
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    src, _, manifest, _ = exported
    out = tmp_path / "export"
    shutil.copytree(src, out)
    weights = {"books": 0.5, "wikipedia": 0.5}
    tok = manifest["tokenizer"]
    config = GPTDatasetConfig(random_seed=1234, sequence_length=64, split="100,0,0",
                              blend=([os.path.join(str(out), manifest["domains"][d]["prefix"]) for d in weights],
                                     list(weights.values())),
                              tokenizer=IdsTokenizer(tok),
                              reset_position_ids=False, reset_attention_mask=False, eod_mask_loss=False,
                              path_to_cache=None)
    BlendedMegatronDatasetBuilder(GPTDataset, [2000, 0, 0], lambda: True, config).build()
    planted = sorted(out.glob("*/cache/GPTDataset_indices/*.npy"))
    assert len(planted) == 3 * len(weights)  # document, sample and shuffle index per domain
    marker = tmp_path / "pwned"
    for path in planted:
        path.write_bytes(pickle.dumps(_CreatesFile(str(marker))))
    before = sorted((str(p), p.stat().st_mtime_ns) for p in out.rglob("*"))
    report = check_blend(str(out), manifest, {**weights, "arxiv": 0.0}, num_samples=2000, seq_length=64,
                         tolerance=0.005)
    assert report["ok"] and not marker.exists()
    assert sorted((str(p), p.stat().st_mtime_ns) for p in out.rglob("*")) == before  # the export is only read
