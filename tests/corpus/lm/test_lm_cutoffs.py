"""Percentile cut-offs, buckets, the cut-offs file and the reservoir sample of user data."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.lm.cutoffs import (assign_buckets, compute_cutoffs, read_cutoffs, run_parquet_files,
                               sample_texts, write_cutoffs)


def test_percentiles_by_hand():
    # Linear interpolation over 1..100: the p-th percentile sits at 1 + p/100 * 99.
    c = compute_cutoffs([float(v) for v in range(100, 0, -1)] + [None, float("inf")])
    assert c == {"head": pytest.approx(30.7), "tail": pytest.approx(60.4), "n_docs": 100}
    c = compute_cutoffs([1.0, 2.0, 3.0, 4.0, 5.0], (50, 75))
    assert (c["head"], c["tail"]) == (3.0, 4.0)
    with pytest.raises(ValueError, match="no perplexities"):
        compute_cutoffs([None])


def test_buckets_at_the_boundaries():
    cut = {"languages": {"en": {"head": 100.0, "tail": 200.0}}}
    ppl = [99.9, 100.0, 199.9, 200.0, 5000.0, None, 50.0]
    langs = ["en", "en", "en", "en", "en", "en", "fr"]
    buckets = assign_buckets(ppl, langs, cut)
    assert buckets.type == pa.string()
    assert buckets.to_pylist() == ["head", "middle", "middle", "tail", "tail", None, None]
    assert assign_buckets([], [], cut).type == pa.string()


def test_cutoffs_file_keeps_other_languages(tmp_path):
    path = str(tmp_path / "cut.json")
    write_cutoffs(path, "en", {"head": 1.0, "tail": 2.0, "n_docs": 3}, (30.0, 60.0))
    write_cutoffs(path, "fr", {"head": 4.0, "tail": 5.0, "n_docs": 6}, (30.0, 60.0))
    data = read_cutoffs(path)
    assert sorted(data["languages"]) == ["en", "fr"]
    assert data["languages"]["en"]["tail"] == 2.0
    with pytest.raises(ValueError, match="percentiles"):
        write_cutoffs(path, "es", {"head": 1.0, "tail": 2.0, "n_docs": 1}, (20.0, 50.0))
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a cut-offs file"):
        read_cutoffs(str(tmp_path / "bad.json"))


def test_reservoir_sample_filters_language_and_is_seeded(tmp_path):
    a = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": [f"en {i}" for i in range(300)] + ["fr doc", None, ""],
                             "lang_v1": ["en"] * 300 + ["fr", "en", "en"]}), a)
    b = tmp_path / "b.parquet"  # no language column: taken to be in the requested language
    pq.write_table(pa.table({"text": [f"plain {i}" for i in range(50)]}), b)
    sample, seen = sample_texts([str(a), str(b)], lang="en", n=100, seed=1)
    assert seen == 350 and len(sample) == 100 and len(set(sample)) == 100
    assert "fr doc" not in sample
    assert sample == sample_texts([str(a), str(b)], lang="en", n=100, seed=1)[0]
    assert sample != sample_texts([str(a), str(b)], lang="en", n=100, seed=2)[0]
    everything, _ = sample_texts([str(a)], lang="fr", n=100)
    assert everything == ["fr doc"]
    # Uniformity: over many seeds each candidate is kept with probability n / seen.
    hits = np.zeros(350)
    names = [f"en {i}" for i in range(300)] + [f"plain {i}" for i in range(50)]
    index = {t: i for i, t in enumerate(names)}
    for seed in range(40):
        for t in sample_texts([str(a), str(b)], lang="en", n=35, seed=seed)[0]:
            hits[index[t]] += 1
    assert abs(hits[:175].sum() - hits[175:].sum()) < 0.15 * hits.sum()


def test_run_parquet_files(tmp_path):
    run = tmp_path / "run"
    data = run / "00-clean-abc" / "data" / "domain=c4"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["x"]}), data / "part-00000.parquet")
    (run / "01-quality-def" / "data").mkdir(parents=True)
    stale = run / "00-clean-000old" / "data" / "domain=c4"  # an older configuration's folder, sorted first
    stale.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["old"]}), stale / "part-00000.parquet")
    (run / "stats.json").write_text(json.dumps({"job": "run", "exit_code": 0, "final_data": "final", "phases": [
        {"name": "clean", "dir": "00-clean-abc"}, {"name": "quality", "dir": "01-quality-def"}]}))
    assert run_parquet_files(str(run)) == [str(data / "part-00000.parquet")]  # the phase the run recorded
    with pytest.raises(FileNotFoundError, match="no Parquet"):
        run_parquet_files(str(run), phase="quality")
    with pytest.raises(FileNotFoundError, match="named 'nope'"):
        run_parquet_files(str(run), phase="nope")
