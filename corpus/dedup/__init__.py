"""Cross-shard deduplication: CCNet line dedup, exact document dedup, MinHash-LSH fuzzy dedup.

One idea per module: `text` (normalization and vectorized 64-bit hashing), `minhash` (shingles and
signatures), `lsh` (bands x rows, parameter choice), `layout` (node keys, shuffle files, work items),
`lines` / `exact` / `fuzzy` (the phase kinds), `components` (distributed connected components),
`results` (per-shard results that the removal stages join), `evaluate` (precision / recall / F1).
"""
