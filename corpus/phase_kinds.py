"""Cross-shard phase kinds by the name a job file gives in `kind:`. `map` (fused per-document stages)
is built in; the others are listed here (see corpus.runtime.cross_shard)."""

from corpus.dedup import exact, fuzzy, lines
from corpus.runtime.cross_shard import PhaseKind

PHASE_KINDS: dict[str, PhaseKind] = {k.name: k for k in (lines.KIND, exact.KIND, fuzzy.KIND)}
