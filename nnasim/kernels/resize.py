"""Integer resize, NHWC: nearest (a gather) and bilinear with fixed-point weights.

Source indices and weights come from ONNX Resize's coordinate rules, computed once per layer;
bilinear returns accumulators ``sum wy*wx*(x - x_zp)`` with real scale ``s_in * 2**(-2 * f)`` for
weights with ``f`` fraction bits. ``f`` is chosen per layer so that the largest sum fits the
accumulator (``weight_bits``): 11 bits for 8-bit inputs in an int32 accumulator (TFLite's int8
kernel uses 10), 15 for 16-bit inputs in int64.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnasim.kernels.jit import kernel

MAX_WEIGHT_BITS = 15


def weight_bits(input_bound: int, acc_bits: int) -> int:
    """Most fraction bits ``f`` (at most 15) with ``input_bound * 2**(2f)`` within a signed ``acc_bits`` sum.

    The four weights of an output sum to ``2**(2f)``, so ``|acc| <= input_bound * 2**(2f)``.
    """
    limit = (1 << (acc_bits - 1)) - 1
    bits = MAX_WEIGHT_BITS
    while bits > 0 and input_bound << (2 * bits) > limit:
        bits -= 1
    return bits


def fixed_weights(frac: np.ndarray, bits: int = MAX_WEIGHT_BITS) -> np.ndarray:
    """Weight of the upper tap with ``bits`` fraction bits; the lower tap gets ``2**bits - w``."""
    return np.rint(np.asarray(frac, np.float64) * (1 << bits)).astype(np.int64)


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
def resize_bilinear(x, x_zp, y0, y1, wy, x0, x1, wx, bits):
    """int64 accumulators (fraction ``2 * bits``) of the interpolated ``x - x_zp``."""
    n, _, _, c = x.shape
    one = np.int64(1) << bits
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
