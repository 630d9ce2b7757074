"""Quality classifier score: the probability that a document reads like reference text (Wikipedia-like).

A scoring stage: it adds `quality_v1` (float64, the calibrated probability of the model that
`refinery quality train` saved) and, when `pareto_alpha` is set, `quality_pareto_reason_v1`.

Two keep rules, both applied by the job's select step:
- threshold (RedPajama kept documents scoring above 0.25):
  `{column: quality_v1, op: "<", value: 0.25, reason: quality_low}`;
- GPT-3's Pareto sampling (Brown et al. 2020, appendix A): keep a document when
  `np.random.pareto(alpha) > 1 - score`, alpha = 9, so most low-scoring documents go but a few stay for
  diversity. The draw is made from a uniform derived from (seed, document id), so a rerun or another
  worker makes the same decision: `quality_pareto_reason_v1` is "quality_pareto_rejected" or null, and
  `{column: quality_pareto_reason_v1, op: not_null, reason_from_column: true}` drops.
The model loads once per actor, in the constructor, after its bytes are checked against the sha256 the
job file gives (`model_sha256`, required). The model is plain data (corpus/quality/model.py: JSON settings
and float arrays in one .npz read with allow_pickle=False), so loading it runs no code; the old pickled
.joblib format is refused with the command that retrains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import numpy as np
import pyarrow as pa

from corpus.config import setting
from corpus.quality.model import RETRAIN, SUFFIX, read_model
from corpus.stages.base import StageSpec

PARETO_REASON = "quality_pareto_rejected"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class QualityConfig:
    model_path: str = setting(
        doc="path or URI of the .npz written by `refinery quality train` (plain data: no pickle)")
    model_sha256: str = setting(
        doc="sha256 of model_path (`refinery quality train` prints it); a file with other bytes is refused")
    pareto_alpha: float | None = setting(
        None, doc="GPT-3 Pareto keep rule shape (9 in GPT-3); null = no Pareto column", gt=0)
    seed: int = setting(0, doc="seed of the per-document Pareto draw", ge=0)
    max_chars: int = setting(0, doc="score only the first max_chars characters (0 = the whole document)",
                             unit="characters", ge=0)

    def __post_init__(self) -> None:
        if not self.model_path.endswith(SUFFIX):
            raise ValueError(f"quality.model_path {self.model_path!r} is not a {SUFFIX} model: the pickled "
                             f".joblib format is no longer loaded, since unpickling a file runs code. {RETRAIN}.")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", self.model_sha256):
            raise ValueError(f"quality.model_sha256 {self.model_sha256!r} is not a sha256 (64 hex digits). "
                             f"Fix: use the sha256 `refinery quality train` printed, or `sha256sum` of the model.")


def pareto_keep(ids: list[str], scores: np.ndarray, alpha: float, seed: int) -> np.ndarray:
    """GPT-3's rule, pareto(alpha) > 1 - score, with a uniform drawn from (seed, id) per document."""
    u = np.empty(len(ids), dtype=np.float64)
    prefix = f"{seed}:".encode()
    for i, doc_id in enumerate(ids):
        digest = hashlib.blake2b(prefix + str(doc_id).encode(), digest_size=8).digest()
        u[i] = (int.from_bytes(digest, "little") >> 11) * (1.0 / (1 << 53))  # uniform on [0, 1)
    # numpy's pareto is the Lomax distribution: inverse CDF (1 - u)^(-1/alpha) - 1.
    draw = (1.0 - u) ** (-1.0 / alpha) - 1.0
    return draw > 1.0 - scores


class QualityScorer:
    def __init__(self, cfg: QualityConfig):
        self.cfg = cfg
        self.model = read_model(cfg.model_path, cfg.model_sha256)
        self._features = self.model.features()

    def score(self, texts: list[str | None]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        end = self.cfg.max_chars or None
        return self.model.score([(t or "")[:end] for t in texts], self._features)

    def __call__(self, batch: pa.Table) -> pa.Table:
        scores = self.score(batch.column("text").to_pylist())
        batch = batch.append_column(pa.field("quality_v1", pa.float64()), pa.array(scores, pa.float64()))
        if self.cfg.pareto_alpha is None:
            return batch
        keep = pareto_keep(batch.column("id").to_pylist(), scores, self.cfg.pareto_alpha, self.cfg.seed)
        reason = pa.array(np.where(keep, None, PARETO_REASON).tolist(), pa.string())
        return batch.append_column(pa.field("quality_pareto_reason_v1", pa.string()), reason)


SPEC = StageSpec(
    name="quality",
    config=QualityConfig,
    kind="score",
    build=lambda cfg, _ctx: QualityScorer(cfg),
    reads=lambda cfg: ("text",) if cfg.pareto_alpha is None else ("id", "text"),
    writes=lambda cfg: ("quality_v1",) if cfg.pareto_alpha is None
    else ("quality_v1", "quality_pareto_reason_v1"),
    types=lambda _cfg: {"quality_v1": pa.float64(), "quality_pareto_reason_v1": pa.string()},
    files=lambda cfg: ((cfg.model_path, f"refinery quality train --out {cfg.model_path}"),),
)
