"""Integer fully connected layer / matrix multiply: ``(x - x_zp) @ W + bias`` with exact int64 sums."""

from __future__ import annotations

import numpy as np

from nnasim.kernels.gemm import ExactMatmul


class FullyConnected:
    """``weight`` is int (K, N); ``input_bound`` is the largest |x - x_zp| possible."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, input_bound: int):
        self.matmul = ExactMatmul(np.asarray(weight, np.int64), input_bound)
        self.bias = None if bias is None else np.asarray(bias, np.int64)

    def __call__(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """int64 accumulators, bias included."""
        acc = self.accumulate(x, x_zp).astype(np.int64)
        return acc if self.bias is None else acc + self.bias

    def accumulate(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """Accumulators without the bias: int64 or floats holding exact integers (see ``gemm``)."""
        cols = np.subtract(x.reshape(-1, x.shape[-1]), self.matmul.dtype(x_zp), dtype=self.matmul.dtype)
        return self.matmul(cols).reshape(*x.shape[:-1], -1)
