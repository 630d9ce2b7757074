"""Quality classifier: trained on a small real sample it separates held-out real data; saved as plain
data it scores exactly as the fitted scikit-learn pipeline did; the scorer adds typed columns; the Pareto
keep rule is deterministic and follows GPT-3's distribution. (Refusing pickles and wrong digests:
test_quality_safety.py.)"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("fasttext")

from corpus.io.assets import file_sha256  # noqa: E402
from corpus.quality.model import read_model  # noqa: E402
from corpus.quality.train import TrainSettings, metadata_path, save_model, train  # noqa: E402
from corpus.stages.quality import PARETO_REASON, QualityConfig, QualityScorer, pareto_keep  # noqa: E402
from run_helpers import sample_unavailable  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from corpus.quality.data import sample_examples
    from corpus.samples import SampleUnavailable

    try:
        # 800 Wikipedia leads; the first 40 files of each web sample (plus the Common Crawl WARC pages).
        examples, folders = sample_examples(max_positives=800, max_pages=40)
    except SampleUnavailable as exc:
        sample_unavailable(exc)
    settings = TrainSettings(n_features=1 << 18)
    pipeline, metrics = train(examples, settings)
    path = str(tmp_path_factory.mktemp("model") / "quality_v1.npz")
    save_model(pipeline, path, settings, metrics, {"samples": folders})
    return path, metrics, examples, pipeline


def test_held_out_roc_auc_above_0_9(trained):
    _, metrics, examples, _ = trained
    held = metrics["held_out"]
    assert sum(e.label == 0 for e in examples) >= 100  # enough real negatives to mean something
    assert held["n"] >= 50 and 0 < held["positives"] < held["n"]
    assert held["roc_auc"] > 0.9
    assert held["precision"] > 0.8 and held["recall"] > 0.8


def test_plain_data_model_scores_as_the_fitted_pipeline(trained):
    path, _, examples, pipeline = trained
    texts = [e.text for e in examples] + ["", "x", "Ünïcödé words, AND Punctuation!"]
    before = pipeline.predict_proba(texts)[:, 1]  # what the pickled pipeline scored, in memory
    scorer = QualityScorer(QualityConfig(model_path=path, model_sha256=file_sha256(path)))
    after = scorer.score(texts)
    assert after.dtype == np.float64 and after.shape == before.shape
    assert np.max(np.abs(after - before)) <= 1e-9
    clipped = QualityScorer(QualityConfig(model_path=path, model_sha256=file_sha256(path), max_chars=200))
    assert np.max(np.abs(clipped.score(texts) - pipeline.predict_proba([t[:200] for t in texts])[:, 1])) <= 1e-9


def test_metadata_records_the_sha256_to_put_in_a_job(trained):
    path, _, _, _ = trained
    with open(metadata_path(path)) as f:
        meta = json.load(f)
    assert meta["features"]["kind"] == "sklearn HashingVectorizer" and meta["metrics"]["held_out"]["roc_auc"]
    assert meta["sha256"] == file_sha256(path) and meta["created"] and meta["format"] == "refinery-quality-npz-1"
    model = read_model(path, meta["sha256"])
    assert model.settings["n_features"] == 1 << 18 and model.settings["ngram_range"] == [1, 2]
    assert model.coef.shape == (1 << 18,)


def test_scorer_columns_and_ordering(trained):
    path, _, examples, _ = trained
    scorer = QualityScorer(QualityConfig(model_path=path, model_sha256=file_sha256(path), pareto_alpha=9.0, seed=3))
    wiki = next(e.text for e in examples if e.label == 1)
    web = next(e.text for e in examples if e.label == 0)
    batch = pa.table({"id": ["a", "b", "c"], "text": pa.array([wiki, web, None], pa.string())})
    out = scorer(batch)
    q = out.column("quality_v1").to_pylist()
    assert all(0.0 <= x <= 1.0 for x in q) and q[0] > q[1]
    assert set(out.column("quality_pareto_reason_v1").to_pylist()) <= {None, PARETO_REASON}
    assert out.equals(scorer(batch))  # deterministic per id
    empty = scorer(batch.slice(0, 0))
    assert empty.schema.field("quality_v1").type == pa.float64()
    assert empty.schema.field("quality_pareto_reason_v1").type == pa.string()


def test_pareto_keep_follows_gpt3_distribution():
    # P(pareto(alpha) > 1 - s) = (2 - s) ** -alpha for numpy's Lomax pareto.
    ids = [f"doc-{i}" for i in range(40_000)]
    for s in (0.2, 0.5, 0.9, 1.0):
        keep = pareto_keep(ids, np.full(len(ids), s), 9.0, seed=0)
        expected = (2 - s) ** -9.0
        assert abs(keep.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / len(ids)) + 1e-4
    a = pareto_keep(ids[:1000], np.full(1000, 0.7), 9.0, seed=0)
    assert (a == pareto_keep(ids[:1000], np.full(1000, 0.7), 9.0, seed=0)).all()
    assert (a != pareto_keep(ids[:1000], np.full(1000, 0.7), 9.0, seed=1)).any()


# Stored vectorizer settings other than the trained model's: n-gram ranges, stop words, accents,
# case, binary counts, norms, signed hashing, a character analyzer.
@pytest.mark.parametrize("settings", [
    {},
    {"ngram_range": (1, 3), "stop_words": "english", "strip_accents": "unicode"},
    {"ngram_range": (2, 2), "lowercase": False, "binary": True, "norm": "l1"},
    {"ngram_range": (1, 1), "norm": None, "alternate_sign": True, "dtype": np.float64},
    {"analyzer": "char_wb", "ngram_range": (2, 4), "strip_accents": "ascii"},
])
def test_hashed_features_equal_the_vectorizer_bit_for_bit(trained, settings):
    from sklearn.feature_extraction.text import HashingVectorizer

    from corpus.quality.features import HashedFeatures

    _, _, examples, _ = trained
    texts = [e.text for e in examples[:300]] + ["", "x", "Ünïcödé words, AND Punctuation!", "a b a b a b"]
    vectorizer = HashingVectorizer(**{"n_features": 1 << 18, "alternate_sign": False, **settings})
    want, got = vectorizer.transform(texts), HashedFeatures(vectorizer).transform(texts)
    assert got.dtype == want.dtype and got.shape == want.shape
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got, part), getattr(want, part)), part
