"""Cross-shard deduplication: CCNet line dedup, exact document dedup, MinHash-LSH fuzzy dedup.

One idea per module: `text` (normalization and vectorized 64-bit hashing), `minhash` (shingles and
signatures), `lsh` (bands x rows, parameter choice), `layout` (node keys, shuffle files, work items),
`kind` (the contract between a cross-shard phase kind and the runtime that runs it), `kinds` (the
registry of `kind:` names), `lines` / `exact` / `fuzzy` (the phase kinds), `block` (a job file's
one-block `dedup:` expanded into index phase, marker and select rule), `local` (a kind run in one
process), `components` (distributed connected components),
`results` (per-shard results that the removal stages join), `evaluate` (precision / recall / F1).
"""
