"""A job file cannot run code through the quality model: a pickled model is refused before anything
unpickles it (checked by a side effect that must not happen), and the model's bytes must match the
sha256 in the job file, whatever a file next to the model says.

These tests need neither scikit-learn nor the samples: they stop before the vectorizer is built."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest

from corpus.config import ConfigError, config_from_dict
from corpus.io.assets import AssetError
from corpus.quality.model import QualityModel, QualityModelError, read_model, write_model
from corpus.stages.quality import QualityConfig, QualityScorer
from jobs.cli import EXIT_INVALID, main


class _CreatesFile:
    """Unpickling this calls open(path, "w"): the file appearing is the proof that code ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _payload(path, marker) -> str:
    path.write_bytes(pickle.dumps(_CreatesFile(str(marker))))
    return _sha256(path)


def _job(tmp_path, quality: dict) -> str:
    (tmp_path / "in.jsonl").write_text('{"text": "a document"}\n')
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({  # JSON is YAML
        "name": "evil", "inputs": [{"source": "jsonl", "paths": ["in.jsonl"], "domain": "c4"}],
        "phases": [{"name": "score", "stages": [{"quality": quality}]}]}))
    return str(job)


def test_the_payload_is_live(tmp_path):
    # Positive control: unpickling the payload does create its file, so its absence below means something.
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_CreatesFile(str(marker))))
    assert marker.exists()


def test_pickled_joblib_with_matching_sidecar_is_refused_by_validate(tmp_path, capsys):
    marker = tmp_path / "pwned"
    model = tmp_path / "quality_v1.joblib"
    digest = _payload(model, marker)
    (tmp_path / "quality_v1.json").write_text(json.dumps({"sha256": digest}))  # what the attacker would write
    # As the reporter tried it: the digest in the job file matches the pickle.
    assert main(["validate", _job(tmp_path, {"model_path": str(model), "model_sha256": digest})]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert "quality_v1.joblib" in err and "unpickling" in err and "refinery quality train --out " in err
    # The old way: no digest in the job, trusting the sidecar.
    assert main(["validate", _job(tmp_path, {"model_path": str(model)})]) == EXIT_INVALID
    assert "model_sha256: required setting is missing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no longer loaded"):
        QualityScorer(QualityConfig(model_path=str(model), model_sha256=digest))
    with pytest.raises(QualityModelError, match="no longer loaded"):
        read_model(str(model), digest)
    assert not marker.exists()


def test_pickle_named_npz_is_refused_when_the_stage_is_built(tmp_path):
    marker = tmp_path / "pwned"
    model = tmp_path / "quality_v1.npz"
    digest = _payload(model, marker)
    cfg = config_from_dict(QualityConfig, {"model_path": str(model), "model_sha256": digest}, "quality")
    with pytest.raises(QualityModelError, match="not a refinery quality model: it holds pickled Python objects"):
        QualityScorer(cfg)
    assert not marker.exists()


def test_object_array_inside_an_npz_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    model = tmp_path / "quality_v1.npz"
    np.savez(model, settings=np.array("{}"), coef=np.array([_CreatesFile(str(marker))], dtype=object),
             intercept=np.array(0.0))
    with pytest.raises(QualityModelError, match="pickled Python objects, which are never loaded"):
        read_model(str(model), _sha256(model))
    assert not marker.exists()


def _tiny_model(path) -> QualityModel:
    model = QualityModel(settings={
        "alternate_sign": False, "analyzer": "word", "binary": False, "decode_error": "strict", "dtype": "float32",
        "encoding": "utf-8", "input": "content", "lowercase": True, "n_features": 16, "ngram_range": [1, 2],
        "norm": "l2", "stop_words": None, "strip_accents": None, "token_pattern": r"(?u)\b\w\w+\b"},
        coef=np.linspace(-1, 1, 16), intercept=0.25)
    write_model(model, str(path))
    return model


def test_bytes_that_differ_from_the_job_digest_are_refused(tmp_path):
    path = tmp_path / "quality_v1.npz"
    model = _tiny_model(path)
    digest = _sha256(path)
    loaded = read_model(str(path), digest)  # no sidecar needed: nothing else is read
    assert loaded.settings == model.settings and np.array_equal(loaded.coef, model.coef)
    assert loaded.intercept == model.intercept
    other = tmp_path / "other.npz"
    _tiny_model(other)
    swapped = np.load(other)
    np.savez_compressed(other, settings=swapped["settings"], coef=-swapped["coef"], intercept=swapped["intercept"])
    # A swapped file, with a sidecar that vouches for it: refused, the job's digest is the only one that counts.
    (tmp_path / "other.json").write_text(json.dumps({"sha256": _sha256(other)}))
    with pytest.raises(AssetError, match="sha256 is .* the job expects " + digest):
        QualityScorer(QualityConfig(model_path=str(other), model_sha256=digest))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(AssetError, match="sha256"):
        read_model(str(truncated), digest)


@pytest.mark.parametrize("settings, match", [
    ({"model_path": "m.npz"}, "model_sha256: required setting is missing"),
    ({"model_path": "m.npz", "model_sha256": "abc"}, "not a sha256"),
    ({"model_path": "m.pkl", "model_sha256": "0" * 64}, "not a .npz model"),
])
def test_config_errors_name_the_field_and_the_fix(settings, match):
    with pytest.raises(ConfigError, match=match) as info:
        config_from_dict(QualityConfig, settings, "quality")
    assert "Fix:" in str(info.value)


def test_malformed_plain_data_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, settings=np.array(json.dumps({"format": "refinery-quality-npz-1", "vectorizer": {"x": 1}})),
             coef=np.zeros(4), intercept=np.array(0.0))
    with pytest.raises(QualityModelError, match="vectorizer settings"):
        read_model(str(path), _sha256(path))
    np.save(tmp_path / "bare.npy", np.zeros(3))
    (tmp_path / "bare.npz").write_bytes((tmp_path / "bare.npy").read_bytes())
    with pytest.raises(QualityModelError, match="not an .npz archive"):
        read_model(str(tmp_path / "bare.npz"), _sha256(tmp_path / "bare.npz"))
