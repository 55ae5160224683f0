"""Reference integer add: each rule spelled out per element with Python ints."""

from __future__ import annotations

import math

import numpy as np

from tests.reference.fixedpoint_ref import (
    mbqm32,
    mbqm_single,
    quantize_multiplier,
    rdbpot,
    round_half_away_div_pow2,
    vqrdmulh,
)


def add_ref(a, b, sa, sb, so, za, zb, zo, bits, rule, qmin, qmax, lo=None, hi=None, sign_b=1):
    sizes = (np.size(a), np.size(b))
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    # TFLite's optimized int16 add: 16-element blocks when neither operand is broadcast
    blocked = a.size - a.size % 16 if rule == "xnnpack" and bits > 8 and sizes == (a.size, a.size) else 0
    count_low, count_high = lo is None, hi is None
    lo = qmin if lo is None else max(lo, qmin)
    hi = qmax if hi is None else min(hi, qmax)
    out = np.empty(a.shape, np.int64)
    saturations = 0
    for flat, index in enumerate(np.ndindex(a.shape)):
        da, db = int(a[index]) - za, (int(b[index]) - zb) * sign_b
        if flat < blocked:
            y = int16_block_add(da, db, sa, sb, so)
        elif rule == "float32":  # onnxruntime's MLAS QLinearAdd (x86): zero points folded into a float bias
            f32 = np.float32
            ra, rb = f32(sa) / f32(so), f32(sign_b) * (f32(sb) / f32(so))
            fixed = f32(zo) - (ra * f32(za) + rb * f32(zb))
            y = int(np.rint((fixed + f32(a[index]) * ra) + f32(b[index]) * rb)) - zo
        elif rule in ("fixedpoint", "single-rounding") or (rule == "xnnpack" and bits > 8):
            multiply = mbqm_single if rule == "single-rounding" else mbqm32
            shift = 15 if bits > 8 else 20
            twice = 2.0 * max(sa, sb)
            ya = multiply(da << shift, *quantize_multiplier(sa / twice))
            yb = multiply(db << shift, *quantize_multiplier(sb / twice))
            y = multiply(ya + yb, *quantize_multiplier(twice / ((1 << shift) * so)))
        elif rule == "xnnpack":  # xnn_init_qs8_add_minmax_scalar_params and the scalar qs8 vadd kernel
            ra, rb = float(np.float32(sa) / np.float32(so)), float(np.float32(sb) / np.float32(so))
            shift = 20 - (math.frexp(max(ra, rb))[1] - 1)
            ma, mb = round(ra * 2**shift), sign_b * round(rb * 2**shift)
            bias = (1 << (shift - 1)) - ma * za - mb * zb
            y = (bias + int(a[index]) * ma + int(b[index]) * mb) >> shift
        else:
            fa, fb, fo = (-int(np.log2(s)) for s in (sa, sb, so))
            f = max(fa, fb)
            y = round_half_away_div_pow2((da << (f - fa)) + (db << (f - fb)), f - fo)
        y += zo
        saturations += (y < qmin and count_low) or (y > qmax and count_high)
        out[index] = min(max(y, lo), hi)
    return out, saturations


def int16_block_add(da, db, sa, sb, so):
    """One element of a 16-element block of TFLite's optimized int16 add (AddElementwiseInt16's
    NEON path: vshlq by 15 + shift, vqrdmulhq, vqrdmulhq again, gemmlowp RoundingDivideByPOT)."""
    twice = 2.0 * max(sa, sb)

    def scaled(x, real):
        multiplier, shift = quantize_multiplier(real)
        left = 15 + shift
        shifted = x << left if left >= 0 else x >> -left
        return vqrdmulh(shifted, multiplier)

    multiplier, shift = quantize_multiplier(twice / ((1 << 15) * so))
    return rdbpot(vqrdmulh(scaled(da, sa / twice) + scaled(db, sb / twice), multiplier), -shift)
