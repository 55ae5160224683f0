"""Reference output stage: requantize int64 accumulators with one of the rules (or ``float64``,
TFLite's reference FULLY_CONNECTED), then clamp."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from tests.reference.fixedpoint_ref import (
    INT32_MAX,
    INT32_MIN,
    mbqm32,
    mbqm64,
    mbqm_single,
    quantize_multiplier,
    round_half_away_div_pow2,
)


def scale_one(acc: int, real: float, rule: str, acc_bits: int) -> int:
    """One accumulator times one real multiplier under ``rule`` (Python ints; float32 via numpy)."""
    if rule in ("float32", "xnnpack"):  # XNNPACK's fp32 requantization is onnxruntime's arithmetic
        return int(np.rint(np.float32(acc) * np.float32(real)))
    if rule == "float64":  # TFLite's reference FC: static_cast<int32_t>(round(double(acc) * real)) on x86
        exact = Fraction(float(acc) * real)
        rounded = math.floor(abs(exact) + Fraction(1, 2)) * (1 if exact >= 0 else -1)
        return rounded if INT32_MIN <= rounded <= INT32_MAX else INT32_MIN
    sign = -1 if real < 0 else 1
    acc, real = acc * sign, abs(real)
    if rule in ("fixedpoint", "single-rounding"):
        multiplier, shift = quantize_multiplier(real)
        if acc_bits > 32:
            return mbqm64(acc, multiplier, shift)
        return (mbqm32 if rule == "fixedpoint" else mbqm_single)(acc, multiplier, shift)
    mantissa, exponent = math.frexp(real)
    if real == 0 or exponent < -47:  # the engine drops multipliers below 2**-47: in-range results are 0
        return 0
    if mantissa == 0.5:
        return round_half_away_div_pow2(acc, 1 - exponent)
    return round_half_away_div_pow2(acc * round(mantissa * 2**15), 15 - exponent)


def requantize_ref(acc, real, rule, zp, qmin, qmax, acc_bits, lo=None, hi=None, real_negative=None):
    """Returns (int64 outputs, saturation count); multipliers broadcast along the last axis."""
    acc = np.asarray(acc, dtype=np.int64)
    channels = acc.shape[-1]
    real = np.broadcast_to(np.atleast_1d(real), (channels,))
    neg = None if real_negative is None else np.broadcast_to(np.atleast_1d(real_negative), (channels,))
    count_low, count_high = lo is None, hi is None
    lo = qmin if lo is None else max(lo, qmin)
    hi = qmax if hi is None else min(hi, qmax)
    acc_lo, acc_hi = -(2 ** (acc_bits - 1)), 2 ** (acc_bits - 1) - 1
    out = np.empty(acc.shape, np.int64)
    saturations = 0
    for index in np.ndindex(acc.shape):
        a = int(acc[index])
        if not acc_lo <= a <= acc_hi:
            saturations += 1
            a = min(max(a, acc_lo), acc_hi)
        c = index[-1]
        m = float(neg[c]) if neg is not None and a < 0 else float(real[c])
        y = scale_one(a, m, rule, acc_bits) + zp
        saturations += (y < qmin and count_low) or (y > qmax and count_high)
        out[index] = min(max(y, lo), hi)
    return out, saturations
