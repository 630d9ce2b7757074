"""The quality classifier as plain data: one `.npz` that loads without unpickling anything.

A fitted HashingVectorizer has no state (its settings are the whole of it) and a binary logistic
regression is a weight vector and an intercept, so the model is three arrays in one `.npz`:
- `settings`: JSON text (a 0-d unicode array) with the format name and the vectorizer's settings;
- `coef`: float64, shape (n_features,), the weight of each hashed n-gram bucket;
- `intercept`: float64, shape ().

`read_model` checks the file's sha256 against the one the caller gives (the job file's), then reads it
with `numpy.load(allow_pickle=False)`, which refuses pickled files and object arrays: loading runs no
code. Scoring rebuilds the vectorizer from its settings and computes what
`LogisticRegression.predict_proba(X)[:, 1]` computes for a binary model: expit(X @ coef + intercept),
X being the vectorizer's features as corpus/quality/features.py computes them (same bits, less time).

One file carries both the settings and the weights, so the one sha256 in the job file pins both.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Any

import numpy as np

from corpus.io.assets import resolve_asset
from corpus.io.files import write_atomic
from corpus.quality.features import HashedFeatures

FORMAT = "refinery-quality-npz-1"
SUFFIX = ".npz"
RETRAIN = ("Fix: retrain with `refinery quality train --out models/quality_v1.npz` and set the job's "
           "model_sha256 to the sha256 it prints")
# HashingVectorizer settings stored, and the values each may take when read back. The callable settings
# (preprocessor, tokenizer, a callable analyzer) cannot be stored as data: a model using them is refused.
_SETTINGS: dict[str, tuple[type, ...]] = {
    "analyzer": (str,), "binary": (bool,), "decode_error": (str,), "dtype": (str,), "encoding": (str,),
    "input": (str,), "lowercase": (bool,), "n_features": (int,), "ngram_range": (list,), "norm": (str, type(None)),
    "stop_words": (str, list, type(None)), "strip_accents": (str, type(None)), "token_pattern": (str, type(None)),
    "alternate_sign": (bool,),
}
_DTYPES = ("float32", "float64")


class QualityModelError(ValueError):
    """A quality model file that is not a readable refinery quality model."""


def _hashing_vectorizer(**settings: Any):
    try:
        from sklearn.feature_extraction.text import HashingVectorizer
    except ImportError as exc:
        raise ImportError("the quality classifier needs `pip install scikit-learn` "
                          "(or `pip install refinery[quality]`)") from exc
    return HashingVectorizer(**settings)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class QualityModel:
    settings: dict[str, Any]
    """HashingVectorizer settings (JSON values: the dtype by name, ngram_range as a list)."""
    coef: np.ndarray
    """float64 (n_features,): logistic-regression weight per hashed feature."""
    intercept: float
    """Logistic-regression intercept."""

    def vectorizer(self):
        s = dict(self.settings)
        return _hashing_vectorizer(**{**s, "dtype": np.dtype(s["dtype"]).type, "ngram_range": tuple(s["ngram_range"])})

    def features(self) -> HashedFeatures:
        """The vectorizer's features, computed faster with the same bits (corpus/quality/features.py)."""
        return HashedFeatures(self.vectorizer())

    def score(self, texts: list[str], features: HashedFeatures | None = None) -> np.ndarray:
        """Probability of the positive (reference-like) class per text, float64 (n_texts,)."""
        from scipy.special import expit

        x = (features or self.features()).transform(texts)  # (n_texts, n_features) sparse
        return expit(np.asarray(x @ self.coef, dtype=np.float64) + self.intercept)


def from_pipeline(pipeline) -> QualityModel:
    """The plain-data form of a fitted Pipeline([HashingVectorizer, binary LogisticRegression])."""
    vectorizer, regression = pipeline[0], pipeline[-1]
    params = vectorizer.get_params()
    if type(vectorizer).__name__ != "HashingVectorizer" or len(pipeline) != 2:
        raise QualityModelError("only Pipeline([HashingVectorizer, LogisticRegression]) can be saved as data")
    if params["preprocessor"] is not None or params["tokenizer"] is not None or callable(params["analyzer"]):
        raise QualityModelError("a vectorizer with a callable preprocessor, tokenizer or analyzer cannot be "
                                "saved as data")
    if list(regression.classes_) != [0, 1] or regression.coef_.shape != (1, params["n_features"]):
        raise QualityModelError(f"expected a binary 0/1 regression over {params['n_features']} features, got "
                                f"classes {list(regression.classes_)} and coef {regression.coef_.shape}")
    settings = {k: params[k] for k in _SETTINGS}
    settings["dtype"] = np.dtype(params["dtype"]).name
    settings["ngram_range"] = list(params["ngram_range"])
    if isinstance(settings["stop_words"], (list, tuple, set, frozenset)):
        settings["stop_words"] = sorted(settings["stop_words"])
    return QualityModel(settings=settings, coef=np.asarray(regression.coef_[0], dtype=np.float64),
                        intercept=float(regression.intercept_[0]))


def write_model(model: QualityModel, path: str) -> None:
    """Writes `path` (.npz) atomically (temporary name, then rename)."""
    if not path.endswith(SUFFIX):
        raise QualityModelError(f"quality model path {path!r} must end with {SUFFIX}")
    buf = io.BytesIO()
    text = json.dumps({"format": FORMAT, "vectorizer": model.settings}, sort_keys=True)
    np.savez_compressed(buf, settings=np.array(text), coef=model.coef.astype(np.float64),
                        intercept=np.array(model.intercept, dtype=np.float64))
    write_atomic(os.path.abspath(path), buf.getvalue())


def read_model(uri: str, sha256: str) -> QualityModel:
    """The model at a path or URI whose bytes have the given sha256 (else corpus.io.assets.AssetError)."""
    if not uri.endswith(SUFFIX):
        raise QualityModelError(f"quality model {uri!r} is not a {SUFFIX} file: the pickled .joblib format is "
                                f"no longer loaded (unpickling runs code). {RETRAIN}.")
    local = resolve_asset(uri, sha256)
    try:
        loaded = np.load(local, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with loaded as npz:
            arrays = {name: npz[name] for name in ("settings", "coef", "intercept")}
    except (ValueError, KeyError, OSError, EOFError) as exc:
        # numpy refuses pickled data and object arrays with a ValueError (allow_pickle=False) whose
        # text suggests loading it anyway: say instead why it is never loaded.
        why = ("it holds pickled Python objects, which are never loaded (unpickling runs code)"
               if "pickle" in str(exc).lower() or "object" in str(exc).lower() else f"{type(exc).__name__}: {exc}")
        raise QualityModelError(f"{uri} is not a refinery quality model: {why}. {RETRAIN}.") from None
    return _from_arrays(uri, arrays)


def _from_arrays(uri: str, arrays: dict[str, np.ndarray]) -> QualityModel:
    def bad(what: str) -> QualityModelError:
        return QualityModelError(f"{uri}: {what}. {RETRAIN}.")

    text, coef, intercept = arrays["settings"], arrays["coef"], arrays["intercept"]
    if text.shape != () or text.dtype.kind != "U":
        raise bad("`settings` is not JSON text")
    try:
        doc = json.loads(str(text))
    except ValueError:
        raise bad("`settings` is not JSON text") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("vectorizer"), dict):
        raise bad(f"format {doc.get('format') if isinstance(doc, dict) else None!r}, expected {FORMAT!r}")
    settings = doc["vectorizer"]
    if set(settings) != set(_SETTINGS):
        raise bad(f"vectorizer settings {sorted(settings)}, expected {sorted(_SETTINGS)}")
    for key, types in _SETTINGS.items():
        if not isinstance(settings[key], types) or (bool in types) != isinstance(settings[key], bool):
            raise bad(f"vectorizer setting {key} = {settings[key]!r} has the wrong type")
    n, ngrams = settings["n_features"], settings["ngram_range"]
    if (settings["dtype"] not in _DTYPES or not 0 < n < 2**31 or len(ngrams) != 2
            or not all(type(k) is int for k in ngrams) or not 1 <= ngrams[0] <= ngrams[1]):
        raise bad(f"vectorizer settings out of range: dtype {settings['dtype']!r}, n_features {n}, "
                  f"ngram_range {settings['ngram_range']}")
    if coef.dtype != np.float64 or coef.shape != (n,) or intercept.dtype != np.float64 or intercept.shape != ():
        raise bad(f"expected float64 coef ({n},) and intercept (), got {coef.dtype} {coef.shape} and "
                  f"{intercept.dtype} {intercept.shape}")
    if not (np.isfinite(coef).all() and np.isfinite(intercept)):
        raise bad("coef or intercept is not finite")
    return QualityModel(settings=settings, coef=coef, intercept=float(intercept))
