"""Fixed-point helpers shared by every integer kernel: saturation, rounding shifts, TFLite multipliers.

All scalar helpers take and return int64 (Numba widens small ints anyway); the 32-bit
semantics of TFLite are emulated explicitly where they matter (SaturatingRoundingDoublingHighMul
works on int32 operands and saturates its one overflow case).
"""

from __future__ import annotations

import math

import numpy as np

from nnasim.kernels.jit import kernel

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
FLOAT_CLAMP = np.float32(2.0**62)


@kernel(inline="always")
def saturate(x: int, lo: int, hi: int) -> int:
    """Clamp ``x`` to ``[lo, hi]``."""
    return lo if x < lo else (hi if x > hi else x)


@kernel(inline="always")
def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """``x / 2**exponent`` rounded half away from zero (gemmlowp RoundingDivideByPOT, any width).

    A negative exponent is an exact left shift.
    """
    if exponent <= 0:
        return x << (-exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@kernel(inline="always")
def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 operands: round(a*b / 2**31), ties away."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = np.int64(a) * np.int64(b)
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    total = ab + nudge
    # C division by 2**31 (truncation toward zero) as a shift: bias negative values by 2**31 - 1
    return (total + ((total >> 63) & ((np.int64(1) << 31) - 1))) >> 31


@kernel(inline="always")
def rounding_doubling_high_mul(a: int, b: int) -> int:
    """NEON vqrdmulh on int32 operands: round(a*b / 2**31), ties toward +infinity (one overflow
    case saturated). TFLite's x86 builds run it through NEON_2_SSE, with the same integers."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    return (np.int64(a) * np.int64(b) + (1 << 30)) >> 31


@kernel(inline="always")
def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier for int32 ``x`` (the 8-bit path; shift > 0 is a left shift)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    # x * 2**left wraps as an int32 multiply would in C; callers keep it in range.
    shifted = np.int64(np.int32(x << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


@kernel(inline="always")
def multiply_by_quantized_multiplier_single(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier built with TFLITE_SINGLE_ROUNDING: one rounding,
    ``(x * multiplier + 2**(30 - shift)) >> (31 - shift)`` in 64 bits (ties toward +infinity)."""
    total_shift = 31 - shift
    return (x * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift


@kernel(inline="always")
def multiply_by_quantized_multiplier_64(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier for int64 ``x`` (the int16x8 path).

    The multiplier is reduced to 16 bits and the product rounded half up, as TFLite does; a
    result beyond int32 wraps, as TFLite's conversion of it to ``int32_t`` does (before the clamp).
    """
    reduced = (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
    total_shift = 15 - shift
    return np.int64(np.int32((x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift))


@kernel(inline="always")
def round_to_int32(product: float) -> float:
    """C's ``static_cast<int32_t>(std::round(product))`` on x86, as a float: ties away from zero;
    a result outside int32 (or NaN) is INT32_MIN, what the conversion instruction returns."""
    whole = np.trunc(product)
    whole += np.copysign(1.0, product) * (abs(product - whole) >= 0.5)
    return whole if -(2.0**31) <= whole < 2.0**31 else float(INT32_MIN)


@kernel(inline="always")
def requant_float64(acc: int, multiplier: float) -> int:
    """TFLite's reference FULLY_CONNECTED output stage: ``round(double(acc) * multiplier)`` with the
    double multiplier ``s_in * s_w / s_out`` (not a Q31 one), converted as ``round_to_int32`` does."""
    return np.int64(round_to_int32(np.float64(acc) * multiplier))


@kernel(inline="always")
def requant_float32(acc: int, multiplier: np.float32) -> int:
    """onnxruntime's rule: float32(acc) * float32 multiplier, rounded half to even.

    The product is clamped to +-2**62 first (like onnxruntime's clamp before conversion) so that
    adding a zero point cannot wrap.
    """
    product = np.float32(acc) * multiplier
    return np.int64(np.rint(min(max(product, -FLOAT_CLAMP), FLOAT_CLAMP)))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: ``real ~= multiplier * 2**(shift - 31)`` with a Q31 multiplier.

    Returns ``(multiplier, shift)``; shift > 0 means a left shift. Zero and tiny values map to (0, 0).
    """
    if real < 0:
        raise ValueError(f"quantize_multiplier needs a non-negative value, got {real}")
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q_fixed = _round_half_away(mantissa * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def _round_half_away(value: float) -> int:
    """std::round: nearest integer, ties away from zero."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))
