"""Reference integer reduction: Python sums over every reduced index."""

import itertools

import numpy as np


def reduce_sum_ref(x, zp, axes, keepdims):
    x = np.asarray(x, np.int64)
    kept = [a for a in range(x.ndim) if a not in axes]
    out = np.zeros([x.shape[a] for a in kept], np.int64)
    for index in itertools.product(*(range(x.shape[a]) for a in kept)):
        full = [slice(None)] * x.ndim
        for a, i in zip(kept, index, strict=True):
            full[a] = i
        out[index] = sum(int(v) - zp for v in x[tuple(full)].reshape(-1))
    if keepdims:
        out = out.reshape([1 if a in axes else x.shape[a] for a in range(x.ndim)])
    return out
