"""Per-document stages. `STAGES` maps the name used in job files to each stage's StageSpec."""

from corpus.stages import chaos, length, normalize, select
from corpus.stages.base import BuildContext, StageSpec

STAGES: dict[str, StageSpec] = {m.SPEC.name: m.SPEC for m in (normalize, length, select, chaos)}

__all__ = ["STAGES", "StageSpec", "BuildContext"]
