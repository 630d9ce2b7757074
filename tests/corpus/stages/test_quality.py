"""Quality classifier: trained on a small real sample it separates held-out real data; the saved model
is verified by sha256; the scorer adds typed columns; the Pareto keep rule is deterministic and follows
GPT-3's distribution."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("fasttext")

from corpus.quality.train import TrainSettings, load_model, save_model, train  # noqa: E402
from corpus.stages.quality import PARETO_REASON, QualityConfig, QualityScorer, pareto_keep  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from corpus.quality.data import sample_examples
    from corpus.sources.samples import SampleUnavailable

    try:
        # 800 Wikipedia leads; the first 40 files of each web sample (plus the Common Crawl WARC pages).
        examples, folders = sample_examples(max_positives=800, max_pages=40)
    except SampleUnavailable as exc:
        pytest.skip(str(exc))
    settings = TrainSettings(n_features=1 << 18)
    pipeline, metrics = train(examples, settings)
    path = str(tmp_path_factory.mktemp("model") / "quality_v1.joblib")
    save_model(pipeline, path, settings, metrics, {"samples": folders})
    return path, metrics, examples


def test_held_out_roc_auc_above_0_9(trained):
    _, metrics, examples = trained
    held = metrics["held_out"]
    assert sum(e.label == 0 for e in examples) >= 100  # enough real negatives to mean something
    assert held["n"] >= 50 and 0 < held["positives"] < held["n"]
    assert held["roc_auc"] > 0.9
    assert held["precision"] > 0.8 and held["recall"] > 0.8


def test_metadata_and_sha256_check(trained, tmp_path):
    path, _, _ = trained
    with open(path.replace(".joblib", ".json")) as f:
        meta = json.load(f)
    assert meta["features"]["kind"] == "sklearn HashingVectorizer" and meta["metrics"]["held_out"]["roc_auc"]
    assert len(meta["sha256"]) == 64 and meta["created"]
    _, loaded_meta = load_model(path)
    assert loaded_meta["sha256"] == meta["sha256"]
    bad = tmp_path / "quality_v1.joblib"
    shutil.copy(path, bad)
    shutil.copy(path.replace(".joblib", ".json"), tmp_path / "quality_v1.json")
    with open(bad, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        load_model(str(bad))
    with pytest.raises(ValueError, match="sha256"):
        QualityScorer(QualityConfig(model_path=path, model_sha256="0" * 64))


def test_scorer_columns_and_ordering(trained):
    path, _, examples = trained
    scorer = QualityScorer(QualityConfig(model_path=path, pareto_alpha=9.0, seed=3))
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
