"""Model side of the Megatron-core backend: config translation, layer specs, position encodings."""
