"""Integer matrix product of two computed tensors (attention-style MatMul), numpy broadcasting.

``(a - za) @ (b - zb)`` summed exactly: in float32 or float64 BLAS when the worst sum
``K * bound_a * bound_b`` is below 2**24 or 2**53 (always for 8-bit, for 16-bit while K < 2**21),
else in int64. The result (exact integers) goes to the output stage with scale ``s_a * s_b``.
"""

from __future__ import annotations

import numpy as np

from nnasim.kernels.conv2d import exact_dtype


def matmul_activations(
    a: np.ndarray, b: np.ndarray, za: int, zb: int, bound_a: int, bound_b: int
) -> np.ndarray:
    """Exact accumulators of ``(a - za) @ (b - zb)`` (float holding integers, or int64)."""
    dtype = exact_dtype(a.shape[-1] * int(bound_a) * int(bound_b))
    return np.matmul(np.subtract(a, dtype(za), dtype=dtype), np.subtract(b, dtype(zb), dtype=dtype))
