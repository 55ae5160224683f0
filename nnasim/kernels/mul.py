"""Integer elementwise multiply: accumulator ``(a - za) * (b - zb)``, rescaled by the output stage."""

from __future__ import annotations

import numpy as np

from nnasim.kernels.jit import kernel


def mul(a: np.ndarray, b: np.ndarray, za: int, zb: int) -> np.ndarray:
    """int64 products of the broadcast inputs (real scale: scale_a * scale_b)."""
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.size, np.int64)
    _mul_flat(
        np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel(), np.int64(za), np.int64(zb), out
    )
    return out.reshape(a.shape)


@kernel
def _mul_flat(a, b, za, zb, out):
    for i in range(a.shape[0]):
        out[i] = (np.int64(a[i]) - za) * (np.int64(b[i]) - zb)
