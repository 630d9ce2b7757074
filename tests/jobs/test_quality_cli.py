"""`refinery quality train` writes the plain-data .npz and prints the sha256 a job file needs; the job
that names it validates, and the model scores."""

import json
import re

import numpy as np
import pytest

pytest.importorskip("sklearn")

from corpus.stages.quality import QualityConfig, QualityScorer  # noqa: E402
from jobs.cli import main  # noqa: E402


def test_train_refuses_a_joblib_output(tmp_path, capsys):
    assert main(["quality", "train", "--output", str(tmp_path / "q.joblib")]) == 1
    assert "must end with .npz" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_train_writes_npz_and_the_job_line(tmp_path, capsys):
    words = ["river", "history", "century", "museum", "province", "treaty", "species", "empire"]
    noise = ["click", "login", "cart", "cookie", "menu", "share", "subscribe", "home"]
    rng = np.random.default_rng(0)
    for name, vocab in (("pos", words), ("neg", noise)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            for _ in range(60):
                f.write(json.dumps({"text": " ".join(rng.choice(vocab, 30))}) + "\n")
    model = tmp_path / "models" / "quality_v1.npz"
    assert main(["quality", "train", "--out", str(model), "--positives", str(tmp_path / "pos.jsonl"),
                 "--negatives", str(tmp_path / "neg.jsonl")]) == 0
    out = capsys.readouterr().out
    sha256 = re.search(r"model_sha256: ([0-9a-f]{64})", out).group(1)
    assert model.exists() and not (tmp_path / "models" / "quality_v1.joblib").exists()
    (tmp_path / "in.jsonl").write_text('{"text": "a document"}\n')
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps({"name": "q", "inputs": [{"source": "jsonl", "paths": ["in.jsonl"], "domain": "c4"}],
                               "phases": [{"name": "s", "stages": [
                                   {"quality": {"model_path": str(model), "model_sha256": sha256}}]}]}))
    assert main(["validate", str(job)]) == 0
    scores = QualityScorer(QualityConfig(model_path=str(model), model_sha256=sha256)).score(
        ["the river and the empire of the century", "click login cart cookie"])
    assert scores[0] > 0.5 > scores[1]
