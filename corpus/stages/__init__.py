"""Per-document stages. `STAGES` maps the name used in job files to each stage's StageSpec."""

from corpus.stages import chaos, exact_dedup, length, line_dedup, minhash_dedup, normalize, perplexity, select
from corpus.stages import c4_lines, c4_rules, gopher_quality, gopher_repetition, langid, quality
from corpus.stages.base import BuildContext, StageSpec

STAGES: dict[str, StageSpec] = {m.SPEC.name: m.SPEC for m in (normalize, length, select, chaos, line_dedup, exact_dedup, minhash_dedup, perplexity,
                                                  langid, c4_rules, c4_lines, gopher_quality, gopher_repetition, quality)}

__all__ = ["STAGES", "StageSpec", "BuildContext"]
