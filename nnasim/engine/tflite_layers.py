"""Kernels the engine takes from TFLite where a rule names TFLite and the formats are TFLite's.

Used by the layer builders, each returns None where it does not apply (the engine's own kernel
runs): ``softmax_kernel``, TFLite's integer softmax (reference or optimized, see
``nnasim.kernels.tflite_softmax``) for the formats TFLite requires (int8: scale 1/256, zero point
-128; int16: input zero point 0, scale 1/32768, zero point 0); ``average_pool_kernel``,
``mean_kernel`` and ``resize_bilinear_kernel``, TFLite's integer AVERAGE_POOL_2D, MEAN and
RESIZE_BILINEAR.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnasim.ir import QuantParams
from nnasim.kernels import tflite_softmax as ts
from nnasim.kernels.fixedpoint import quantize_multiplier
from nnasim.kernels.requant import TFLITE_RULES, mbqm, mbqm_code

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
        code = mbqm_code(rule)
        return lambda x: ts.softmax_int8_reference(x, multiplier, shift, diff_min, barrel, 8, code)
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
        code = mbqm_code(rule)
        return lambda x: ts.softmax_int16(x, exp_table, reciprocal_table, multiplier, shift, code)
    return None


def _same_format(fin: QuantParams, fout: QuantParams) -> bool:
    return bool(
        np.array_equal(np.asarray(fin.scale), np.asarray(fout.scale))
        and np.array_equal(np.asarray(fin.zero_point), np.asarray(fout.zero_point))
    )


def rounded_division(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """TFLite's ``acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n`` in C integer arithmetic."""
    half = count // 2
    return np.where(total > 0, (total + half) // count, -((-total + half) // count))


def average_pool_kernel(rule: str, fin: QuantParams, fout: QuantParams):
    """TFLite's integer average pool (input and output formats equal, as TFLite requires): the raw
    integers of each window summed, divided with rounding half away from zero. None otherwise."""
    if rule not in TFLITE_RULES or not _same_format(fin, fout):
        return None
    zp = int(np.asarray(fin.zero_point).reshape(-1)[0])
    return lambda sums, counts: rounded_division(sums + zp * counts, counts)


def mean_kernel(rule: str, fin: QuantParams, fout: QuantParams, count: int):
    """TFLite's reference integer MEAN (QuantizedMeanOrSum): the Q31 multiplier of ``s_in / s_out``
    divided by the element count ``n`` in integers (``(M << k) // n`` with ``k`` the position of
    n's top bit, capped at 32 and at ``31 + shift``), then one MultiplyByQuantizedMultiplier of
    ``sum(x - zp)`` and the output zero point."""
    if rule not in ("fixedpoint", "single-rounding"):
        return None
    real = float(np.asarray(fin.scale, np.float64)) / float(np.asarray(fout.scale, np.float64))
    multiplier, shift = quantize_multiplier(real)
    top_bit = min(int(count).bit_length() - 1, 32, 31 + shift)
    multiplier, shift = (multiplier << top_bit) // count, shift - top_bit
    code = mbqm_code(rule)
    zo = int(np.asarray(fout.zero_point).reshape(-1)[0])

    def run(sums: np.ndarray) -> np.ndarray:
        values = np.array([mbqm(code, int(v), multiplier, shift) for v in sums.reshape(-1)], np.int64) + zo
        return np.clip(values.reshape(sums.shape), fout.qmin, fout.qmax)

    return run


def bilinear_taps(out_size: int, in_size: int, align_corners: bool, half_pixel: bool):
    """TFLite's integer bilinear coordinates in 1/1024 units: (low, high, scaled position)."""
    if align_corners and out_size > 1:
        scale_10 = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale_10 = ((1 << 10) * in_size + out_size // 2) // out_size
    value = np.arange(out_size, dtype=np.int64) * scale_10
    if half_pixel:
        value = value + scale_10 // 2 - (1 << 9)
    low = np.maximum(_c_div(value, 1 << 10), 0)
    high = np.minimum(_c_div(value + (1 << 10) - 1, 1 << 10), in_size - 1)
    return low, high, value


def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """C integer division (truncation toward zero)."""
    return np.where(a >= 0, a // b, -((-a) // b))


def resize_bilinear_kernel(rule: str, fin: QuantParams, fout: QuantParams, shape_in, size, ctm: str):
    """TFLite's ResizeBilinearInteger (raw integers, 10-bit weights, one rounding of the 20-bit
    sum), for equal input and output formats; None otherwise."""
    if (
        rule not in TFLITE_RULES
        or not _same_format(fin, fout)
        or ctm not in ("align_corners", "half_pixel", "asymmetric")
    ):
        return None
    (_, _, h, w), (oh, ow) = shape_in, size
    align, half = ctm == "align_corners", ctm == "half_pixel"
    y0, y1, ys = bilinear_taps(oh, h, align, half)
    x0, x1, xs = bilinear_taps(ow, w, align, half)
    wy = ((1 << 10) - (ys - (1 << 10) * y0))[None, :, None, None]
    wx = ((1 << 10) - (xs - (1 << 10) * x0))[None, None, :, None]
    vy = (ys - (1 << 10) * y0)[None, :, None, None]
    vx = (xs - (1 << 10) * x0)[None, None, :, None]
    single = rule == "single-rounding"

    def run(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.int64)
        top, bottom = x[:, y0], x[:, y1]
        total = (
            top[:, :, x0] * wy * wx
            + bottom[:, :, x0] * vy * wx
            + top[:, :, x1] * wy * vx
            + bottom[:, :, x1] * vy * vx
        )
        if single:
            return (total + (1 << 19)) >> 20
        return _c_div(total + np.where(total > 0, 1 << 19, -(1 << 19)), 1 << 20)

    return run


def xnnpack_leaky_relu_kernel(fin: QuantParams, fout: QuantParams, alpha: float):
    """XNNPACK's qs8 leaky ReLU: 8-bit fraction multipliers ``lrintf(256 * s)`` with
    ``s = float32(s_in / s_out)`` (times ``alpha`` below zero), ``(zo << 8) + 128`` as bias, an
    arithmetic shift by 8."""
    positive = np.float32(np.float32(fin.scale) / np.float32(fout.scale))
    negative = np.float32(positive * np.float32(alpha))
    m_pos, m_neg = (int(np.rint(np.float32(256.0) * s)) for s in (positive, negative))
    zi = int(np.asarray(fin.zero_point).reshape(-1)[0])
    bias = (int(np.asarray(fout.zero_point).reshape(-1)[0]) << 8) + 0x80

    def run(x: np.ndarray) -> np.ndarray:
        centred = x.astype(np.int64) - zi
        values = (bias + centred * np.where(centred >= 0, m_pos, m_neg)) >> 8
        return np.clip(values, fout.qmin, fout.qmax).astype(np.int32)

    return run
