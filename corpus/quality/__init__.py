"""Training and evaluation of the quality-side models: the quality classifier and the language-ID check."""
