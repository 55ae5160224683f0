"""Integer fully connected layer / matrix multiply: ``(x - x_zp) @ W + bias`` with exact int64 sums."""

from __future__ import annotations

import numpy as np
from numba import njit

from nnasim.kernels.gemm import ExactMatmul


class FullyConnected:
    """``weight`` is int (K, N); ``input_bound`` is the largest |x - x_zp| possible."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, input_bound: int):
        self.matmul = ExactMatmul(np.asarray(weight, np.int64), input_bound)
        self.bias = None if bias is None else np.asarray(bias, np.int64)

    def __call__(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        lead = x.shape[:-1]
        cols = centered(x.reshape(-1, x.shape[-1]), np.int64(x_zp), np.zeros(1, self.matmul.dtype))
        acc = self.matmul(cols)
        if self.bias is not None:
            acc += self.bias
        return acc.reshape(*lead, -1)


@njit(cache=True)
def centered(x, x_zp, dtype_probe):
    """``x - x_zp`` as floats of ``dtype_probe``'s type (exact: small integers)."""
    out = np.empty(x.shape, dtype_probe.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - x_zp
    return out
