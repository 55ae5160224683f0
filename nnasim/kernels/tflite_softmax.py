"""TFLite's integer softmax kernels, last axis, beta 1, reproduced to the bit.

- ``softmax_int8_reference``: the reference kernel (BUILTIN_REF): gemmlowp fixed point; the
  input difference is rescaled to Q5.26, ``exp`` is gemmlowp's ``exp_on_negative_values``, the
  sum is a Q12.19 accumulator and its reciprocal comes from Newton-Raphson
  (``one_over_one_plus_x_for_x_in_0_1``). Output scale 1/256, zero point -128.
- ``softmax_int8_lut``: the optimized kernel of the default interpreter: a float32 table of
  ``expf(-s * d)``, float32 sum and reciprocal, ``std::round``.
- ``softmax_int16``: the int16 kernel (both resolvers): two 513-entry interpolated tables
  (``exp`` on [-10, 0] and ``1 / (1 + x)`` on [0, 1]), output scale 1/32768, zero point 0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

from nnasim.kernels.fixedpoint import (
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from nnasim.kernels.jit import kernel
from nnasim.kernels.requant import mbqm

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
INT32_MAX = (1 << 31) - 1
EXP_BARREL = (
    (24, 1672461947),
    (25, 1302514674),
    (26, 790015084),
    (27, 290630308),
    (28, 39332535),
    (29, 720401),
    (30, 242),
)
_BARREL = np.array(EXP_BARREL, np.int64)


def int8_reference_params(
    input_scale: float, beta: float = 1.0, single_rounding: bool = False
) -> tuple[int, int, int]:
    """(multiplier, left shift, diff_min): PreprocessSoftmaxScaling and CalculateInputRadius
    (TFLITE_SINGLE_ROUNDING caps the multiplier one bit lower)."""
    cap = (1 << 30) - 1.0 if single_rounding else (1 << 31) - 1.0
    real = min(beta * float(input_scale) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), cap)
    multiplier, shift = quantize_multiplier(real)
    radius = math.floor(
        ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << shift)
    )
    return multiplier, shift, -radius


@kernel(inline="always")
def _wrap32(x):
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@kernel(inline="always")
def _saturating_shift_left(x, exponent):
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return -INT32_MAX - 1
    return x << exponent


@kernel(inline="always")
def _exp_on_interval_between_negative_one_quarter_and_0(a):
    x = a + (1 << 28)
    x2 = saturating_rounding_doubling_high_mul(x, x)
    x3 = saturating_rounding_doubling_high_mul(x2, x)
    x4 = saturating_rounding_doubling_high_mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = saturating_rounding_doubling_high_mul(_wrap32(x4_over_4 + x3), 715827883)
    poly = rounding_divide_by_pot(_wrap32(poly + x2), 1)
    return _wrap32(1895147668 + saturating_rounding_doubling_high_mul(1895147668, _wrap32(x + poly)))


@kernel
def exp_on_negative_values(a, barrel):
    """gemmlowp exp_on_negative_values: Q5.26 input <= 0, Q0.31 output."""
    quarter = np.int64(1) << 24
    a_mod = (a & (quarter - 1)) - quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0(_saturating_shift_left(a_mod, 5))
    remainder = _wrap32(a_mod - a)
    for k in range(barrel.shape[0]):
        if remainder & (np.int64(1) << barrel[k, 0]):
            result = saturating_rounding_doubling_high_mul(result, barrel[k, 1])
    return INT32_MAX if a == 0 else result


@kernel(inline="always")
def _rounding_half_sum(a, b):
    total = a + b
    total += 1 if total >= 0 else -1
    return total // 2 if total >= 0 else -((-total) // 2)


@kernel
def _one_over_one_plus_x_for_x_in_0_1(a):
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    x = _wrap32(1515870810 + saturating_rounding_doubling_high_mul(half_denominator, -1010580540))
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus = _wrap32((1 << 29) - half_denominator_times_x)
        x = _wrap32(x + _saturating_shift_left(saturating_rounding_doubling_high_mul(x, one_minus), 2))
    return _saturating_shift_left(x, 1)  # ExactMulByPot<-1> keeps the raw value; Rescale<0> shifts


@kernel(inline="always")
def _count_leading_zeros32(x):
    count = 0
    bit = np.int64(1) << 31
    while count < 32 and not (x & bit):
        count += 1
        bit >>= 1
    return count


@kernel
def softmax_int8_reference(x, multiplier, left_shift, diff_min, barrel, out_bits, code):
    """x: int (P, C) integers; returns int32 (P, C) with zero point -2**(out_bits-1).

    ``code`` names the rule's MultiplyByQuantizedMultiplier (``requant.mbqm_code``; shift >= 0).
    """
    rows, depth = x.shape
    out = np.empty((rows, depth), np.int32)
    qmin = -(1 << (out_bits - 1))
    qmax = (1 << (out_bits - 1)) - 1
    for p in range(rows):
        top = x[p, 0]
        for c in range(depth):
            top = max(top, x[p, c])
        total = np.int64(0)
        for c in range(depth):
            diff = np.int64(x[p, c]) - top
            if diff >= diff_min:
                scaled = mbqm(code, diff, multiplier, left_shift)
                total = _wrap32(total + rounding_divide_by_pot(exp_on_negative_values(scaled, barrel), 12))
        headroom = _count_leading_zeros32(total)
        bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom
        shifted = (((total << headroom) & 0xFFFFFFFF) - (1 << 31)) & 0xFFFFFFFF
        shifted = shifted - (1 << 32) if shifted >= (1 << 31) else shifted
        scale = _one_over_one_plus_x_for_x_in_0_1(shifted)
        exponent = bits_over_unit + 31 - out_bits
        for c in range(depth):
            diff = np.int64(x[p, c]) - top
            if diff >= diff_min:
                scaled = mbqm(code, diff, multiplier, left_shift)
                e = exp_on_negative_values(scaled, barrel)
                value = (
                    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scale, e), exponent) + qmin
                )
                out[p, c] = min(max(value, qmin), qmax)
            else:
                out[p, c] = qmin
    return out


def _libm_expf():
    """The C library's ``expf``, the function TFLite's float tables call (numpy's may differ by an ulp)."""
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    libm.expf.restype = ctypes.c_float
    libm.expf.argtypes = [ctypes.c_float]
    return libm.expf


def int8_lut_table(input_scale: float, beta: float = 1.0) -> np.ndarray:
    """PopulateSoftmaxLookupTable: ``table[255 - d] = expf(-s * beta * d)`` in float32."""
    expf = _libm_expf()
    scale = np.float32(-np.float32(input_scale) * np.float32(beta))
    table = np.empty(256, np.float32)
    for d in range(256):
        table[255 - d] = expf(float(np.float32(scale * np.float32(d))))
    return table


@kernel
def softmax_int8_lut(x, table, out_scale, zero_point, qmin, qmax):
    """The optimized kernel: float32 sum of table values, float32 reciprocal, round half away."""
    rows, depth = x.shape
    out = np.empty((rows, depth), np.int32)
    for p in range(rows):
        top = x[p, 0]
        for c in range(depth):
            top = max(top, x[p, c])
        total = np.float32(0.0)
        for c in range(depth):
            total = np.float32(total + table[255 - top + x[p, c]])
        inverse = np.float32(np.float32(1.0) / np.float32(total * out_scale))
        for c in range(depth):
            prob = np.float32(table[255 - top + x[p, c]] * inverse)
            rounded = np.floor(abs(prob) + 0.5) * (1 if prob >= 0 else -1)
            out[p, c] = min(max(np.int64(rounded) + zero_point, qmin), qmax)
    return out


def int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """gen_lut<double, int16, int16> of exp on [-10, 0] and of 1 / (1 + x) on [0, 1]."""
    return _gen_lut(np.exp, -10.0, 0.0), _gen_lut(lambda v: 1.0 / (1.0 + v), 0.0, 1.0)


def _round_away(v):
    return np.copysign(np.floor(np.abs(v) + 0.5), v)


def _gen_lut(func, lo: float, hi: float) -> np.ndarray:
    steps = 512
    step = (hi - lo) / steps
    half = step / 2
    scaling = 65536.0 / 2.0
    i = np.arange(steps, dtype=np.float64)
    val = func(lo + i * step)
    mid = func(lo + i * step + half)
    nxt = func(lo + (i + 1) * step)
    sample = _round_away(val * scaling)
    interp = _round_away((nxt * scaling + _round_away(val * scaling)) / 2)
    bias = _round_away((interp - _round_away(mid * scaling)) / 2)
    table = np.empty(steps + 1, np.int64)
    table[:steps] = np.clip(sample - bias, -32768, 32767)
    table[steps] = np.clip(_round_away(func(hi) * scaling), -32768, 32767)
    return table


def int16_params(input_scale: float, beta: float = 1.0) -> tuple[int, int]:
    """QuantizeMultiplier(s * beta / (10 / 65535)): input differences to the exp table's range."""
    return quantize_multiplier(float(input_scale) * beta / (10.0 / 65535.0))


@kernel(inline="always")
def _lut16(value, table):
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = table[index]
    slope = table[index + 1] - table[index]
    return base + ((slope * offset + 64) >> 7)


@kernel
def softmax_int16(x, exp_table, reciprocal_table, multiplier, shift, code):
    """The int16 kernel; ``code`` names the rule's 32-bit MultiplyByQuantizedMultiplier."""
    rows, depth = x.shape
    out = np.empty((rows, depth), np.int32)
    exps = np.empty(depth, np.int64)
    for p in range(rows):
        top = x[p, 0]
        for c in range(depth):
            top = max(top, x[p, c])
        total = np.int64(0)
        for c in range(depth):
            scaled = mbqm(code, np.int64(x[p, c]) - top, multiplier, shift) + 32767
            exps[c] = _lut16(min(max(scaled, -32768), 32767), exp_table)
            total += exps[c]
        headroom = _count_leading_zeros32(total)
        shifted = ((total << (headroom - 1)) + (1 << 13)) >> 14
        centred = min(max(shifted - ((1 << 15) + (1 << 16)), -32768), 32767)
        reciprocal = _lut16(centred, reciprocal_table)
        right_shift = 31 - headroom
        for c in range(depth):
            value = (exps[c] * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
            out[p, c] = min(max(value, 0), 32767)
    return out
