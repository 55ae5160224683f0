"""Integer resize, NHWC: nearest (a gather) and bilinear with Q15 fixed-point weights.

Source indices and weights come from ONNX Resize's coordinate rules, computed once per layer;
bilinear returns int64 accumulators ``sum wy*wx*(x - x_zp)`` with real scale ``s_in * 2**-30``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnasim.kernels.jit import kernel

WEIGHT_BITS = 15


def fixed_weights(frac: np.ndarray) -> np.ndarray:
    """Q15 weight of the upper tap; the lower tap gets ``2**15 - w``, so each pair sums to one."""
    return np.rint(np.asarray(frac, np.float64) * (1 << WEIGHT_BITS)).astype(np.int64)


@kernel
def resize_nearest(x, rows, cols):
    n, _, _, c = x.shape
    out = np.empty((n, rows.shape[0], cols.shape[0], c), np.int32)
    for b in range(n):
        for oy in range(rows.shape[0]):
            for ox in range(cols.shape[0]):
                for ch in range(c):
                    out[b, oy, ox, ch] = x[b, rows[oy], cols[ox], ch]
    return out


@kernel(parallel=True)
def resize_bilinear(x, x_zp, y0, y1, wy, x0, x1, wx):
    """int64 accumulators in Q30 of the interpolated ``x - x_zp``."""
    n, _, _, c = x.shape
    one = np.int64(1) << 15
    oh, ow = y0.shape[0], x0.shape[0]
    out = np.empty((n, oh, ow, c), np.int64)
    for row in prange(n * oh):
        b, oy = row // oh, row % oh
        for ox in range(ow):
            w00 = (one - wy[oy]) * (one - wx[ox])
            w01 = (one - wy[oy]) * wx[ox]
            w10 = wy[oy] * (one - wx[ox])
            w11 = wy[oy] * wx[ox]
            for ch in range(c):
                out[b, oy, ox, ch] = (
                    w00 * (np.int64(x[b, y0[oy], x0[ox], ch]) - x_zp)
                    + w01 * (np.int64(x[b, y0[oy], x1[ox], ch]) - x_zp)
                    + w10 * (np.int64(x[b, y1[oy], x0[ox], ch]) - x_zp)
                    + w11 * (np.int64(x[b, y1[oy], x1[ox], ch]) - x_zp)
                )
    return out
