"""Marks exact duplicates found by an `exact_dedup` phase: adds `exact_cluster_v1` (the survivor's node
key) and `exact_duplicate_v1`. The job's `select` drops them:
`{column: exact_duplicate_v1, op: "==", value: true, reason: exact_duplicate}`.
"""

from __future__ import annotations

import dataclasses

from corpus.config import setting
from corpus.stages.minhash_dedup import marker_spec


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExactMarkConfig:
    index_phase: str = setting(doc="name of the exact_dedup phase of this job whose results to join")


SPEC = marker_spec("exact_dedup", ExactMarkConfig, "exact_cluster_v1", "exact_duplicate_v1")
