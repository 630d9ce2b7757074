"""The quality model's features as HashingVectorizer.transform computes them, bit for bit, in less time.

HashingVectorizer.transform spends most of its time in Python around its two C loops (the token regex
and the murmurhash of each feature): it builds each word n-gram with a `" ".join` of a list slice in a
Python loop, and wraps every feature in a `(feature, 1)` tuple from a generator before hashing it. Here
the n-grams come from `map(" ".join, zip(...))` and the features reach FeatureHasher as
`zip(features, repeat(1))` pairs: the same strings and the same counts, so the same sparse matrix with
the loops in C (tests/corpus/stages/test_quality.py checks equality; benchmarks/bench_quality_stages.py
times it). Decoding, preprocessing (lowercase, accents), tokenizing and stop words are the vectorizer's
own; a character analyzer goes through the vectorizer's own analyzer.
"""

from __future__ import annotations

from itertools import repeat
from typing import Callable


class HashedFeatures:
    """transform(texts) == vectorizer.transform(texts) for a HashingVectorizer `vectorizer`."""

    def __init__(self, vectorizer):
        from sklearn.feature_extraction import FeatureHasher

        self.vectorizer = vectorizer
        p = vectorizer.get_params()
        # "pair" input: (feature, value) pairs, hashed exactly as the "string" input hashes (feature, 1).
        self._hasher = FeatureHasher(n_features=p["n_features"], input_type="pair", dtype=p["dtype"],
                                     alternate_sign=p["alternate_sign"])
        self._features = self._word_features(p) if p["analyzer"] == "word" else vectorizer.build_analyzer()
        self._binary, self._norm = p["binary"], p["norm"]

    def _word_features(self, p) -> Callable[[str], list[str]]:
        decode, preprocess = self.vectorizer.decode, self.vectorizer.build_preprocessor()
        tokenize, stop_words = self.vectorizer.build_tokenizer(), self.vectorizer.get_stop_words()
        min_n, max_n = p["ngram_range"]

        def features(doc: str) -> list[str]:
            tokens = tokenize(preprocess(decode(doc)))
            if stop_words is not None:
                tokens = [t for t in tokens if t not in stop_words]
            out = list(tokens) if min_n == 1 else []
            for n in range(max(min_n, 2), max_n + 1):
                # zip(t[0:], t[1:], ..., t[n-1:]) yields each run of n consecutive tokens.
                out += map(" ".join, zip(*(tokens[i:] for i in range(n))))
            return out

        return features

    def transform(self, texts: list[str]):
        """Sparse (n_texts, n_features), float of the model's dtype, as HashingVectorizer.transform."""
        from sklearn.preprocessing import normalize

        x = self._hasher.transform(zip(self._features(t), repeat(1)) for t in texts)
        if self._binary:
            x.data.fill(1)
        if self._norm is not None:
            x = normalize(x, norm=self._norm, copy=False)
        return x

