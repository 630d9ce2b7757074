"""Language models for perplexity scoring, the CCNet way (Wenzek et al., 2020).

normalize: CCNet's text normalization. tools: find and run KenLM's `lmplz` / `build_binary`
(built by build_kenlm.sh). train: SentencePiece + KenLM training on a reference corpus, with a metadata
file of sha256s. model: loading a trained language model and scoring documents. cutoffs: per-language
percentile cut-offs that split perplexities into head / middle / tail buckets.
"""
