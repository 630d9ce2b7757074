"""Train, evaluate, save and load the quality classifier (logistic regression on hashed word n-grams).

The model follows GPT-3 (appendix A) and LLaMA-1 (section 2, "CommonCrawl"): a linear classifier on word
features separating reference-like text from random web text. Features: scikit-learn's HashingVectorizer
over lowercased word 1- and 2-grams, 2^20 buckets, l2-normalised, no sign flipping; a hashing vectorizer
has no vocabulary to fit or ship, so the saved model is small and scoring needs no state but the weights.

Probabilities: logistic regression minimises log-loss, a proper scoring rule, so its own predict_proba is
calibrated on the distribution it was trained on; CalibratedClassifierCV would add a cross-validation
loop for a monotone remap that cannot change ROC AUC. The classes are balanced by subsampling the larger
one (class weights would move every probability, subsampling keeps the model's prior at 0.5), and the
held-out Brier score and expected calibration error are reported so calibration is checked, not assumed.

The saved model is two files: `<name>.npz`, the model as plain data (corpus/quality/model.py: the
vectorizer settings as JSON text, the weights and the intercept; it loads without unpickling), and
`<name>.json`, a record for people (features, training data, date, held-out metrics, the sha256 of the
.npz to copy into a job file). Nothing reads the .json back to decide what to trust: the quality stage
checks the .npz against the sha256 the job file gives.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import random
from typing import Any

import numpy as np

from corpus.io.assets import file_sha256
from corpus.quality.data import Example
from corpus.quality.model import FORMAT, from_pipeline, write_model

MODEL_VERSION = "quality_v1"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class TrainSettings:
    n_features: int = 1 << 20
    ngram_max: int = 2
    c: float = 4.0
    """Inverse L2 strength of the logistic regression."""
    held_out: float = 0.2
    """Fraction of groups (pages / articles) kept out of training."""
    seed: int = 0


def _pipeline(s: TrainSettings):
    try:
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
    except ImportError as exc:
        raise ImportError("training the quality classifier needs `pip install scikit-learn` "
                          "(or `pip install refinery[quality]`)") from exc
    vectorizer = HashingVectorizer(n_features=s.n_features, ngram_range=(1, s.ngram_max), lowercase=True,
                                   alternate_sign=False, norm="l2", dtype=np.float32)
    return Pipeline([("features", vectorizer),
                     ("model", LogisticRegression(C=s.c, max_iter=1000, solver="liblinear"))])


def split_by_group(examples: list[Example], held_out: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Train / held-out split that never puts two chunks of one page on both sides."""
    groups = sorted({e.group for e in examples})
    random.Random(seed).shuffle(groups)
    test_groups = set(groups[: int(round(held_out * len(groups)))])
    return ([e for e in examples if e.group not in test_groups], [e for e in examples if e.group in test_groups])


def _balance(examples: list[Example], seed: int) -> list[Example]:
    pos = [e for e in examples if e.label == 1]
    neg = [e for e in examples if e.label == 0]
    n = min(len(pos), len(neg))
    rng = random.Random(seed)
    return rng.sample(pos, n) + rng.sample(neg, n)


def evaluate(pipeline, examples: list[Example], threshold: float = 0.5) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

    y = np.array([e.label for e in examples])
    p = pipeline.predict_proba([e.text for e in examples])[:, 1]
    pred = p >= threshold
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    return {"n": int(len(y)), "positives": int(y.sum()), "threshold": threshold,
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "roc_auc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p)),
            "ece_10_bins": float(ece)}


def train(examples: list[Example], settings: TrainSettings = TrainSettings()) -> tuple[Any, dict[str, Any]]:
    """(fitted pipeline, metrics on the held-out groups at thresholds 0.5 and RedPajama's 0.25)."""
    train_set, test_set = split_by_group(examples, settings.held_out, settings.seed)
    train_set = _balance(train_set, settings.seed)
    pipeline = _pipeline(settings)
    pipeline.fit([e.text for e in train_set], [e.label for e in train_set])
    held_out = _balance(test_set, settings.seed)
    metrics = {"train_examples": len(train_set), "held_out": evaluate(pipeline, held_out),
               "held_out_at_0.25": evaluate(pipeline, held_out, 0.25)}
    return pipeline, metrics


def save_model(pipeline, path: str, settings: TrainSettings, metrics: dict[str, Any],
               training_data: dict[str, Any]) -> dict[str, Any]:
    """Writes `path` (.npz, plain data) and its metadata next to it (.json); returns the metadata."""
    write_model(from_pipeline(pipeline), path)
    meta = {"version": MODEL_VERSION, "format": FORMAT, "sha256": file_sha256(path), "file": os.path.basename(path),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "features": {"kind": "sklearn HashingVectorizer", "ngram_range": [1, settings.ngram_max],
                         "n_features": settings.n_features, "lowercase": True, "norm": "l2",
                         "alternate_sign": False},
            "model": {"kind": "sklearn LogisticRegression", "C": settings.c, "solver": "liblinear",
                      "probability": "LogisticRegression.predict_proba (balanced classes)"},
            "settings": dataclasses.asdict(settings), "training_data": training_data, "metrics": metrics}
    with open(metadata_path(path), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    return meta


def metadata_path(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + ".json"
