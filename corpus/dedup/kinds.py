"""The cross-shard phase kinds by the name a job file gives in `kind:` (`map`, fused per-document
stages, is the runtime's own). The contract they implement is corpus.dedup.kind."""

from corpus.dedup import exact, fuzzy, lines
from corpus.dedup.kind import PhaseKind

PHASE_KINDS: dict[str, PhaseKind] = {k.name: k for k in (lines.KIND, exact.KIND, fuzzy.KIND)}
