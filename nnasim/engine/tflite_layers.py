"""Kernels the engine takes from TFLite where a rule names TFLite and the formats are TFLite's.

Used by the layer builders: ``softmax_kernel`` returns TFLite's integer softmax (reference or
optimized, see ``nnasim.kernels.tflite_softmax``) for the output formats TFLite's kernels require
(int8: scale 1/256, zero point -128; int16: input zero point 0, scale 1/32768, zero point 0),
else None (the engine's own softmax).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnasim.ir import QuantParams
from nnasim.kernels import tflite_softmax as ts
from nnasim.kernels.requant import TFLITE_RULES, mbqm_function

RowKernel = Callable[[np.ndarray], np.ndarray]


def softmax_kernel(rule: str, fin: QuantParams, fout: QuantParams) -> RowKernel | None:
    """TFLite's softmax over the rows of a (P, C) integer array, or None where it does not apply."""
    if rule not in TFLITE_RULES:
        return None
    in_scale, out_scale = (
        float(np.asarray(fin.scale).reshape(-1)[0]),
        float(np.asarray(fout.scale).reshape(-1)[0]),
    )
    out_zp = int(np.asarray(fout.zero_point).reshape(-1)[0])
    if fin.bits == 8 and fout.bits == 8 and out_zp == -128 and abs(out_scale * 256 - 1) < 1e-3:
        if rule == "xnnpack":
            table = ts.int8_lut_table(in_scale)
            scale = np.float32(out_scale)
            return lambda x: ts.softmax_int8_lut(x, table, scale, out_zp, fout.qmin, fout.qmax)
        multiplier, shift, diff_min = ts.int8_reference_params(
            in_scale, single_rounding=rule == "single-rounding"
        )
        barrel = ts._BARREL
        mbqm = mbqm_function(rule)
        return lambda x: ts.softmax_int8_reference(x, multiplier, shift, diff_min, barrel, 8, mbqm)
    in_zp = int(np.asarray(fin.zero_point).reshape(-1)[0])
    if (
        fin.bits == 16
        and fout.bits == 16
        and in_zp == 0
        and out_zp == 0
        and abs(out_scale * 32768 - 1) < 1e-3
    ):
        exp_table, reciprocal_table = ts.int16_tables()
        multiplier, shift = ts.int16_params(in_scale)
        mbqm = mbqm_function(rule)
        return lambda x: ts.softmax_int16(x, exp_table, reciprocal_table, multiplier, shift, mbqm)
    return None
