"""A trained language model (SentencePiece + KenLM) and CCNet's document perplexity.

`refinery lm train` writes, per language, `<lang>.sp.model`, `<lang>.kenlm` and `<lang>.json` (metadata
with the sha256 of both model files). The folder may be local or a URI (s3://, gs://): `LanguageModel`
resolves each file through corpus.io.assets, which checks its sha256 (and copies a remote file once into
the node-local cache), so a model file replaced behind the metadata's back fails loudly instead of
silently changing every score.

Scoring follows CCNet's DocLM: each line is normalized (corpus.lm.normalize), cut into SentencePiece
pieces, and scored by KenLM as one sentence with <s> and </s>, which gives its log10 probability. A line
of k pieces counts k + 1 tokens (the </s>). Document perplexity = 10 ** (-sum of line log10 / sum of
tokens). Blank lines are skipped: they carry no text, and scoring them would reward documents for
having many of them (each would add p(</s> | <s>) with one token).

CCNet's own pipeline (mine.py) normalizes the whole document before SentencePiece, and its
normalization deletes control characters, newline included: DocLM then sees a single line in which
paragraphs are glued together ("...end.Next paragraph"). `per_line=False` reproduces that exactly,
for comparison with CCNet's published buckets; the default scores each line, as DocLM was written to.
"""

from __future__ import annotations

import os

from corpus.io.assets import resolve_asset
from corpus.io.files import join, read_json
from corpus.lm.normalize import VERSION as NORMALIZATION, normalize_line, normalized_lines

METADATA_FORMAT = "refinery-lm/1"


def metadata_path(model_dir: str, lang: str) -> str:
    """`<model_dir>/<lang>.json`; a local folder may start with ~."""
    if "://" not in model_dir:
        return os.path.join(os.path.expanduser(model_dir), f"{lang}.json")
    return join(model_dir, f"{lang}.json")


def read_metadata(path: str) -> dict:
    meta = read_json(path)
    if meta.get("format") != METADATA_FORMAT:
        raise ValueError(f"{path}: not a refinery language model metadata file "
                         f"(format {meta.get('format')!r}, expected {METADATA_FORMAT!r})")
    if meta.get("normalization") != NORMALIZATION:
        raise ValueError(f"{path}: trained with normalization {meta.get('normalization')!r}, this "
                         f"scorer applies {NORMALIZATION!r}; retrain with `refinery lm train`")
    return meta


def perplexity(log10_sum: float, n_tokens: int) -> float:
    """CCNet's pp(): 10 ** (-log10 probability / number of tokens)."""
    return 10.0 ** (-log10_sum / n_tokens)


class LanguageModel:
    """One language's SentencePiece + KenLM pair, loaded once (per actor) after a sha256 check."""

    def __init__(self, metadata_file: str, expected_kenlm_sha256: str | None = None):
        try:
            import kenlm
            import sentencepiece
        except ImportError as exc:
            raise ImportError(f"perplexity scoring needs `{exc.name}`: pip install kenlm sentencepiece "
                              f"(or the `quality` extra: pip install -e '.[quality]')") from exc
        self.metadata = read_metadata(metadata_file)
        recorded = self.metadata["files"]["kenlm"]["sha256"]
        if expected_kenlm_sha256 and expected_kenlm_sha256.lower() != recorded:
            raise ValueError(f"{metadata_file} describes the KenLM model {recorded}, the job pins "
                             f"{expected_kenlm_sha256}. Fix: point the job at the pinned model, or update "
                             f"the pin if the model was retrained on purpose")
        folder = metadata_file.rsplit("/", 1)[0] if "/" in metadata_file else "."
        paths = {role: resolve_asset(join(folder, entry["path"]), entry["sha256"])
                 for role, entry in self.metadata["files"].items()}
        self.lang = self.metadata["lang"]
        self.sp = sentencepiece.SentencePieceProcessor(model_file=paths["sentencepiece"])
        self.lm = kenlm.Model(paths["kenlm"])

    def pieces(self, lines: list[str]) -> list[list[str]]:
        return self.sp.encode(lines, out_type=str) if lines else []

    def score_texts(self, texts: list[str | None], per_line: bool = True) -> list[float | None]:
        """Document perplexities; None for a null text or one with no non-blank line."""
        # All lines of the batch go to SentencePiece in one call; KenLM then scores line by line.
        owners, lines = [], []
        for i, text in enumerate(texts):
            if text:
                for line in normalized_lines(text) if per_line else [normalize_line(text)]:
                    if line:
                        owners.append(i)
                        lines.append(line)
        sums = [0.0] * len(texts)
        counts = [0] * len(texts)
        score = self.lm.score
        for owner, pieces in zip(owners, self.pieces(lines)):
            sums[owner] += score(" ".join(pieces), bos=True, eos=True)
            counts[owner] += len(pieces) + 1
        return [perplexity(s, n) if n else None for s, n in zip(sums, counts)]
