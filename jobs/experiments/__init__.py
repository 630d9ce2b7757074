"""Experiments that train models on corpora refinery builds (`refinery experiment ...`)."""
