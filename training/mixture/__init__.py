"""Mixture weights: DoReMi (math, proxy worker, search driver) and the comparison of mixtures."""
