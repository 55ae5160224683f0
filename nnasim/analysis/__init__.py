"""analysis: what quantization does to the answers (compare, cascade, metrics, decoders)."""
