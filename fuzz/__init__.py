"""Mutation fuzzing of nnasim's loaders (ONNX models, hardware profiles)."""
