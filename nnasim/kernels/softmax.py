"""Integer softmax over the last axis.

``d = x - max(x)`` (integer, <= 0) indexes a table of ``round(exp(s_in * d) * 2**30)``; with the
output format fixed at ``scale = 2**-k``, the output is ``zo + round_half_away(e << k, sum e)``,
an exact integer division. Only the table construction uses floating point.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

EXP_BITS = 30


def exp_table(in_scale: float, levels: int) -> np.ndarray:
    """``round(exp(-in_scale * i) * 2**30)`` for i in [0, levels)."""
    return np.rint(np.exp(-in_scale * np.arange(levels, dtype=np.float64)) * (1 << EXP_BITS)).astype(np.int64)


@njit(cache=True, parallel=True)
def softmax_last_axis(x, table, out_shift, zo, qmax):
    """``x``: int (P, C); returns int32 (P, C) with real value 2**-out_shift * (q - zo)."""
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
            numerator = table[top - x[p, c]] << out_shift
            value = (2 * numerator + total) // (2 * total)  # round half up; numerator >= 0
            out[p, c] = min(value + zo, qmax)
    return out
