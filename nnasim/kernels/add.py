"""Integer elementwise add/subtract of two differently scaled tensors, with a fused ReLU/Clip clamp.

Rules (``make_add_params``'s ``rule``):
- ``float32``: onnxruntime's QLinearAdd on x86: with ``ra = sa / so`` and ``rb = sb / so`` in float32
  and ``fixed = zo - (ra * za + rb * zb)``, the output is ``rint((fixed + a * ra) + b * rb)``, all
  in float32, ties to even (the zero points enter through ``fixed``, as MLAS does).
- ``fixedpoint``: TFLite's add: both inputs shifted left by 20 bits (15 for 16-bit), each
  rescaled to twice the larger input scale with MultiplyByQuantizedMultiplier, summed, then
  rescaled to the output.
- ``single-rounding``: the same with TFLITE_SINGLE_ROUNDING's one-rounding multiply.
- ``xnnpack``: TFLite's default interpreter. 8-bit: XNNPACK's qs8 add: ``ra = float32(sa / so)``,
  ``rb = float32(sb / so)``; with ``shift = 20 - exponent(max(|ra|, |rb|))`` the multipliers are
  ``lrintf(r * 2**shift)`` and the output ``(bias + a * ma + b * mb) >> shift`` (an arithmetic
  shift; ``bias`` holds the rounding half and the input zero points), plus the output zero point.
  16-bit: TFLite's optimized int16 add (``AddElementwiseInt16``, its NEON path, which x86 builds
  without AVX2 run through NEON_2_SSE), ``fixedpoint``'s multipliers and shifts: on each whole
  block of 16 elements (when neither operand is broadcast) every input is shifted left by
  ``15 + shift`` (right, flooring, if negative) and multiplied with ``rounding_doubling_high_mul``
  (ties up, one rounding where ``fixedpoint`` rounds twice), the sum likewise by the output
  multiplier, then RoundingDivideByPOT (ties away) by the output shift; the ``size % 16``
  elements past the last whole block and every broadcast take ``fixedpoint``.
- ``pow2``: both inputs aligned to the finer power-of-two exponent by exact left shifts, summed,
  then one rounding right shift (ties away from zero) to the output exponent.
Subtraction is addition with ``b`` negated (``sign_b = -1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnasim.kernels.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single,
    quantize_multiplier,
    rounding_divide_by_pot,
    rounding_doubling_high_mul,
    saturate,
)
from nnasim.kernels.jit import kernel

_CODES = {"float32": 0, "fixedpoint": 1, "pow2": 2, "single-rounding": 3, "xnnpack": 4}
_INT16_BLOCKS = 5  # the xnnpack rule's 16-bit add
INT16_BLOCK = 16  # elements per vector step of TFLite's optimized int16 add


@dataclass(frozen=True)
class AddParams:
    code: int  # the rule's kernel path (``_CODES``, or ``_INT16_BLOCKS``)
    ints: np.ndarray  # int64 parameters of the integer rules (layout in ``make_add_params``)
    floats: np.ndarray  # float32 (ra, rb, fixed) for the float32 rule
    zero_points: tuple[int, int, int]  # za, zb, zo
    clamp: tuple[int, int, int, int]  # lo, hi (activation), qmin, qmax
    counted: tuple[bool, bool]  # saturations counted below qmin / above qmax (not where ReLU/Clip clamp)
    sign_b: int


def make_add_params(
    scale_a, scale_b, scale_out, zero_points, bits, rule, qmin, qmax, lo=None, hi=None, sign_b=1
):
    """Precompute one add layer's rescaling under ``rule`` from its three (per-tensor) scales."""
    ints = np.zeros(7, np.int64)
    int16_blocks = rule == "xnnpack" and bits > 8
    if rule in ("fixedpoint", "single-rounding") or int16_blocks:
        left_shift = 15 if bits > 8 else 20
        twice_max = 2.0 * max(scale_a, scale_b)
        ints[0] = left_shift
        ints[1:3] = quantize_multiplier(scale_a / twice_max)
        ints[3:5] = quantize_multiplier(scale_b / twice_max)
        ints[5:7] = quantize_multiplier(twice_max / ((1 << left_shift) * scale_out))
    elif rule == "xnnpack":
        ints[:4] = _xnnpack_add(scale_a, scale_b, scale_out, zero_points, sign_b)
    elif rule == "pow2":
        exp_a, exp_b, exp_out = (_pow2_exponent(s) for s in (scale_a, scale_b, scale_out))
        finer = min(exp_a, exp_b)
        ints[0], ints[1], ints[2] = exp_a - finer, exp_b - finer, exp_out - finer
    ra = np.float32(scale_a) / np.float32(scale_out)
    rb = np.float32(sign_b) * (np.float32(scale_b) / np.float32(scale_out))
    za, zb, zo = (np.float32(z) for z in zero_points)
    floats = (ra, rb, zo - (ra * za + rb * zb))
    return AddParams(
        code=_INT16_BLOCKS if int16_blocks else _CODES[rule],
        ints=ints,
        floats=np.array(floats, np.float32),
        zero_points=tuple(int(z) for z in zero_points),
        clamp=(qmin if lo is None else max(lo, qmin), qmax if hi is None else min(hi, qmax), qmin, qmax),
        counted=(lo is None, hi is None),
        sign_b=sign_b,
    )


def _xnnpack_add(scale_a, scale_b, scale_out, zero_points, sign_b) -> tuple[int, int, int, int]:
    """(a multiplier, b multiplier, shift, bias) of XNNPACK's xnn_init_qs8_add_minmax params."""
    ra = np.float32(scale_a) / np.float32(scale_out)
    rb = np.float32(scale_b) / np.float32(scale_out)
    exponent = math.frexp(float(max(ra, rb)))[1] - 1
    shift = 20 - exponent
    ma = int(np.rint(np.float32(ra) * np.float32(2.0**shift)))
    mb = sign_b * int(np.rint(np.float32(rb) * np.float32(2.0**shift)))
    za, zb, _ = zero_points
    return ma, mb, shift, (1 << (shift - 1)) - ma * za - mb * zb


def _pow2_exponent(scale: float) -> int:
    mantissa, exponent = math.frexp(scale)
    if mantissa != 0.5:
        raise ValueError(f"pow2 rule needs power-of-two scales, got {scale}")
    return exponent - 1


def add(a: np.ndarray, b: np.ndarray, params: AddParams) -> tuple[np.ndarray, int]:
    """``a (+/-) b`` rescaled to the output format (inputs broadcast); returns (int32 out, saturations)."""
    sizes = (a.size, b.size)
    a, b = np.broadcast_arrays(a, b)
    shape = a.shape
    out = np.empty(a.size, np.int32)
    # TFLite's optimized int16 add runs only without broadcasting, on whole 16-element blocks
    blocks = sizes == (a.size, a.size) and params.code == _INT16_BLOCKS
    a, b = np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel()
    if params.code in (_CODES["float32"], _CODES["pow2"]):  # the common rules, in loops that vectorise
        saturations = _FAST[params.code](
            a,
            b,
            out,
            params.ints,
            params.floats,
            *params.zero_points,
            *params.clamp,
            *params.counted,
            params.sign_b,
        )
        return out.reshape(shape), int(saturations)
    saturations = _add_flat(
        a,
        b,
        out,
        params.code,
        a.size - a.size % INT16_BLOCK if blocks else 0,
        params.ints,
        *params.zero_points,
        *params.clamp,
        *params.counted,
        params.sign_b,
    )
    return out.reshape(shape), int(saturations)


@kernel
def _add_flat(a, b, out, code, blocked, ints, za, zb, zo, lo, hi, qmin, qmax, count_low, count_high, sign_b):
    """TFLite's rules (fixedpoint, single-rounding, xnnpack and its int16 blocks); the float32 and
    pow2 rules have loops of their own (``_FAST``)."""
    saturations = 0
    for i in range(a.shape[0]):
        if code == 4:
            y = ((ints[3] + np.int64(a[i]) * ints[0] + np.int64(b[i]) * ints[1]) >> ints[2]) + zo
            if (y < qmin and count_low) or (y > qmax and count_high):
                saturations += 1
            out[i] = saturate(y, lo, hi)
            continue
        da = np.int64(a[i]) - za
        db = (np.int64(b[i]) - zb) * sign_b
        if i < blocked:
            y = _int16_block_add(da, db, ints)
        elif code == 1 or code == _INT16_BLOCKS:
            sa = multiply_by_quantized_multiplier(da << ints[0], ints[1], ints[2])
            sb = multiply_by_quantized_multiplier(db << ints[0], ints[3], ints[4])
            y = multiply_by_quantized_multiplier(sa + sb, ints[5], ints[6])
        else:  # single-rounding
            sa = multiply_by_quantized_multiplier_single(da << ints[0], ints[1], ints[2])
            sb = multiply_by_quantized_multiplier_single(db << ints[0], ints[3], ints[4])
            y = multiply_by_quantized_multiplier_single(sa + sb, ints[5], ints[6])
        y += zo
        if (y < qmin and count_low) or (y > qmax and count_high):
            saturations += 1
        out[i] = saturate(y, lo, hi)
    return saturations


@kernel
def _add_float32(a, b, out, ints, floats, za, zb, zo, lo, hi, qmin, qmax, count_low, count_high, sign_b):
    """The ``float32`` rule in a loop of its own (a per-element rule dispatch would not vectorise)."""
    saturations = 0
    for i in range(a.shape[0]):
        y = np.rint((floats[2] + np.float32(a[i]) * floats[0]) + np.float32(b[i]) * floats[1])
        out[i] = np.int32(min(max(y, np.float32(lo)), np.float32(hi)))
        saturations += ((y < qmin) & count_low) + ((y > qmax) & count_high)
    return saturations


@kernel
def _add_pow2(a, b, out, ints, floats, za, zb, zo, lo, hi, qmin, qmax, count_low, count_high, sign_b):
    """The ``pow2`` rule in a loop of its own (a per-element rule dispatch would not vectorise)."""
    saturations = 0
    for i in range(a.shape[0]):
        da = np.int64(a[i]) - za
        db = (np.int64(b[i]) - zb) * sign_b
        y = rounding_divide_by_pot((da << ints[0]) + (db << ints[1]), ints[2]) + zo
        out[i] = min(max(y, lo), hi)
        saturations += ((y < qmin) & count_low) + ((y > qmax) & count_high)
    return saturations


_FAST = {_CODES["float32"]: _add_float32, _CODES["pow2"]: _add_pow2}


@kernel(inline="always")
def _int16_block_add(da, db, ints):
    """One element of TFLite's optimized int16 add's vector step (the ``xnnpack`` rule's 16-bit add)."""
    sa = rounding_doubling_high_mul(_shift_left(da, ints[0] + ints[2]), ints[1])
    sb = rounding_doubling_high_mul(_shift_left(db, ints[0] + ints[4]), ints[3])
    return rounding_divide_by_pot(rounding_doubling_high_mul(sa + sb, ints[5]), -ints[6])


@kernel(inline="always")
def _shift_left(x, shift):
    """NEON vshl: a left shift, or a flooring right shift for a negative ``shift``."""
    return x << shift if shift >= 0 else x >> -shift
