"""Table lookup: the integer form of unary non-linear ops (sigmoid, exp, ...).

The table maps every input integer to its output integer; it is built once per layer from the
two quantization formats, like TFLite's int8/int16 LUT kernels. At run time there is no float.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnasim.kernels.jit import kernel


def build_table(
    fn: Callable[[np.ndarray], np.ndarray], in_scale, in_zp, in_range, out_scale, out_zp, out_range
):
    """Output integer for each input integer in ``in_range`` (inclusive): quantize(fn(dequantize(q))).

    Infinities saturate; a NaN (outside the function's domain) maps to the output's zero point."""
    q = np.arange(in_range[0], in_range[1] + 1, dtype=np.int64)
    real = (q - in_zp).astype(np.float64) * in_scale
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        value = fn(real)
        y = np.rint(np.where(np.isnan(value), 0.0, value) / out_scale) + out_zp  # NaN (sqrt(-1)): real 0
    return np.clip(np.nan_to_num(y, posinf=out_range[1], neginf=out_range[0]), *out_range).astype(np.int32)


@kernel
def lookup(x, table, qmin):
    """``table[x - qmin]`` elementwise (any shape)."""
    flat = x.ravel()
    out = np.empty(flat.shape[0], np.int32)
    for i in range(flat.shape[0]):
        out[i] = table[flat[i] - qmin]
    return out.reshape(x.shape)
