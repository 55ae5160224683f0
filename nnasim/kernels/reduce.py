"""Integer ReduceMean: exact int64 sums of ``x - zp`` over the reduced axes (ONNX layout).

The engine divides by the element count in the output stage (multiplier ``s_in / (count * s_out)``),
one rounding, as for average pooling.
"""

from __future__ import annotations

import numpy as np


def reduce_sum(x: np.ndarray, zp: int, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """int64 sums of ``x - zp`` over ``axes``."""
    return np.subtract(x, np.int64(zp), dtype=np.int64).sum(axis=axes, keepdims=keepdims)
