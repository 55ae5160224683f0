"""A Python-int port of TFLite's / gemmlowp's fixed-point formulas (C semantics spelled out)."""

from __future__ import annotations

import math

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def c_div(a: int, b: int) -> int:
    """C division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def wrap_int32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul(int32 a, int32 b)."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    return c_div(ab + nudge, 2**31)


def vqrdmulh(a: int, b: int) -> int:
    """NEON vqrdmulh (int32): the high half of 2*a*b rounded, (2*a*b + 2**31) >> 32, saturated."""
    return min((2 * a * b + 2**31) >> 32, INT32_MAX)


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT: mask / remainder / threshold, as written there."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm32(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier(int32 x, ...)."""
    left = max(shift, 0)
    right = max(-shift, 0)
    return rdbpot(srdhm(wrap_int32(x * (1 << left)), multiplier), right)


def mbqm_single(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier built with TFLITE_SINGLE_ROUNDING: round(x * M / 2**(31 - shift)),
    ties toward +infinity, in exact integers."""
    total = 31 - shift
    return (x * multiplier + (1 << (total - 1))) >> total


def mbqm64(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier(int64 x, ...), the int16x8 path (its int32 result wraps)."""
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total_shift = 15 - shift
    return wrap_int32((x * reduced + (1 << (total_shift - 1))) >> total_shift)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier (double -> Q31 multiplier, shift)."""
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    scaled = q * 2**31
    q_fixed = int(math.floor(scaled + 0.5))  # std::round for a positive value
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def round_half_away_div_pow2(x: int, n: int) -> int:
    """Exact rational rounding of x / 2**n, ties away from zero (independent of rdbpot)."""
    if n <= 0:
        return x << -n
    q, r = divmod(abs(x), 1 << n)
    q += 1 if 2 * r >= (1 << n) else 0
    return q if x >= 0 else -q
