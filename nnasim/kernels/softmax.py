"""Integer softmax over the last axis.

``d = x - max(x)`` (integer, <= 0) indexes a table of ``round(exp(s_in * d) * 2**30)``; with an
output scale ``1 / R`` for an integer ``R`` (``2**k`` in nnasim's own formats, 255 in onnxruntime's
QDQ models), the output is ``zo + round(e * R / sum e)``, an exact integer division rounding
half up. Only the table construction uses floating point.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnasim.kernels.jit import kernel

EXP_BITS = 30


def exp_table(in_scale: float, levels: int) -> np.ndarray:
    """``round(exp(-in_scale * i) * 2**30)`` for i in [0, levels)."""
    return np.rint(np.exp(-in_scale * np.arange(levels, dtype=np.float64)) * (1 << EXP_BITS)).astype(np.int64)


@kernel(parallel=True)
def softmax_last_axis(x, table, out_multiplier, zo, qmax):
    """``x``: int (P, C); returns int32 (P, C) with real value ``(q - zo) / out_multiplier``."""
    p_count, c_count = x.shape
    out = np.empty((p_count, c_count), np.int32)
    for p in prange(p_count):
        top = x[p, 0]
        for c in range(c_count):
            top = max(top, x[p, c])
        total = np.int64(0)
        for c in range(c_count):
            total += table[top - x[p, c]]
        for c in range(c_count):
            numerator = table[top - x[p, c]] * out_multiplier
            value = (2 * numerator + total) // (2 * total)  # round half up; numerator >= 0
            out[p, c] = min(value + zo, qmax)
    return out
