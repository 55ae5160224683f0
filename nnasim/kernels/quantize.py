"""A float graph input to the engine's integers: ONNX QuantizeLinear with one scale and zero
point, fused with the move from NCHW to the engine's NHWC layout.

``saturate(rint(float32(x) / float32(scale)) + zero_point)``, ties to even, NaN to 0 before the
clamp (as ``quant.params.quantize_array`` does with ``nan_to_num``), as int32; one parallel pass
where the numpy form takes six.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnasim.kernels.jit import kernel


def quantize_to_engine(x: np.ndarray, scale: float, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """int32 values of float ``x`` (ONNX layout) in the engine layout (4-D: NHWC)."""
    x = np.asarray(x, np.float32)
    args = (np.float32(scale), np.float64(zero_point), np.float64(qmin), np.float64(qmax))
    if x.ndim == 4:
        return _quantize_nchw(x, *args)
    return _quantize_flat(np.ascontiguousarray(x).reshape(-1), *args).reshape(x.shape)


@kernel(inline="always")
def _quantize_one(value, scale, zero_point, qmin, qmax):
    y = np.float64(np.rint(value / scale)) + zero_point
    if y != y:  # NaN
        y = 0.0
    return np.int32(min(max(y, qmin), qmax))


@kernel(parallel=True)
def _quantize_nchw(x, scale, zero_point, qmin, qmax):
    n, c, h, w = x.shape
    out = np.empty((n, h, w, c), np.int32)
    for row in prange(n * h):
        b, y = row // h, row % h
        for ch in range(c):
            for ix in range(w):
                out[b, y, ix, ch] = _quantize_one(x[b, ch, y, ix], scale, zero_point, qmin, qmax)
    return out


@kernel(parallel=True)
def _quantize_flat(x, scale, zero_point, qmin, qmax):
    out = np.empty(x.size, np.int32)
    for i in prange(x.size):
        out[i] = _quantize_one(x[i], scale, zero_point, qmin, qmax)
    return out
