"""Reference integer softmax with Python ints (exact division with rounding half up)."""

from __future__ import annotations

import math

import numpy as np


def softmax_ref(x, in_scale, out_multiplier, zo, qmax):
    x = np.asarray(x, np.int64)
    out = np.empty(x.shape, np.int64)
    for p in range(x.shape[0]):
        top = int(x[p].max())
        e = [round(math.exp(-in_scale * (top - int(v))) * 2**30) for v in x[p]]
        total = sum(e)
        for c, value in enumerate(e):
            q, r = divmod(value * out_multiplier, total)
            out[p, c] = min(q + (2 * r >= total) + zo, qmax)
    return out
