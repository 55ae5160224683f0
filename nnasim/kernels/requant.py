"""The output stage every accumulating kernel ends with: requantize, activate, saturate, count.

Three named rules turn an accumulator into an output integer:

- ``float32``: onnxruntime semantics: ``rint(float32(acc) * float32(M))``, ties to even.
- ``fixedpoint``: TFLite semantics: Q31 multiplier and shift; int32 accumulators go through
  SaturatingRoundingDoublingHighMul + RoundingDivideByPOT (ties away from zero), int64
  accumulators (16-bit activations) through TFLite's int16x8 ``MultiplyByQuantizedMultiplier``.
- ``pow2``: ``RoundingDivideByPOT(acc * m, shift)``; for power-of-two scales ``m`` is 1 (a pure
  rounding right shift), a fractional slope (LeakyReLU/PReLU) is a Q15 integer ``m``.

ReLU/Clip are a clamp of the output integer; LeakyReLU/PReLU use a second, per-channel
multiplier for negative accumulators (the sign of the accumulator is the sign of the real value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from nnasim.kernels.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_64,
    quantize_multiplier,
    requant_float32,
    rounding_divide_by_pot,
    saturate,
)

RULES = ("float32", "fixedpoint", "pow2")
_RULE_CODE = {"float32": 0, "fixedpoint": 1, "pow2": 3}
_FIXEDPOINT64 = 2
POW2_SLOPE_BITS = 15
MAX_SHIFT = 62  # larger right shifts of in-range accumulators give 0


@dataclass(frozen=True)
class Multipliers:
    """Per-channel integer form of real multipliers under one rule (arrays of equal length)."""

    as_float32: np.ndarray  # float32: the float32 rule's multiplier (signed)
    as_int: np.ndarray  # int64: Q31 (fixedpoint) or small integer (pow2) magnitude
    shift: np.ndarray  # int64: TFLite convention for fixedpoint (>0 left), right shift for pow2
    sign: np.ndarray  # int64: +1 or -1, applied to the accumulator before the integer rules


def make_multipliers(real: np.ndarray, rule: str) -> Multipliers:
    """Express real multipliers (possibly negative, for PReLU slopes) in ``rule``'s integer form."""
    real = np.atleast_1d(np.asarray(real, dtype=np.float64))
    as_int = np.zeros(real.shape, np.int64)
    shift = np.zeros(real.shape, np.int64)
    for i, value in enumerate(np.abs(real)):
        if rule == "fixedpoint":
            as_int[i], shift[i] = quantize_multiplier(float(value))
        elif rule == "pow2":
            as_int[i], shift[i] = _pow2_multiplier(float(value))
    return Multipliers(
        as_float32=real.astype(np.float32),
        as_int=as_int,
        shift=shift,
        sign=np.where(real < 0, -1, 1).astype(np.int64),
    )


def _pow2_multiplier(value: float) -> tuple[int, int]:
    """``value ~= m * 2**-shift``: m = 1 for a power of two, else a Q15 integer mantissa."""
    if value == 0.0:
        return 0, 0
    mantissa, exponent = math.frexp(value)
    if mantissa == 0.5:
        multiplier, shift = 1, 1 - exponent
    else:
        multiplier, shift = int(round(mantissa * (1 << POW2_SLOPE_BITS))), POW2_SLOPE_BITS - exponent
    return (0, 0) if shift > MAX_SHIFT else (multiplier, shift)


@dataclass(frozen=True)
class OutputStage:
    """Everything the output stage needs besides the accumulators; built once per layer."""

    rule: str
    pos: Multipliers
    neg: Multipliers | None
    zero_point: int
    lo: int  # activation clamp, already intersected with [qmin, qmax]
    hi: int
    count_low: bool  # False where a ReLU/Clip bound clamps: clamping there is the activation
    count_high: bool
    qmin: int
    qmax: int
    acc_bits: int

    @property
    def rule_code(self) -> int:
        if self.rule == "fixedpoint" and self.acc_bits > 32:
            return _FIXEDPOINT64
        return _RULE_CODE[self.rule]


def make_output_stage(
    real: np.ndarray,
    rule: str,
    zero_point: int,
    qmin: int,
    qmax: int,
    acc_bits: int,
    lo: int | None = None,
    hi: int | None = None,
    real_negative: np.ndarray | None = None,
) -> OutputStage:
    """Build a layer's output stage from its real multipliers ``real`` (per tensor or per channel)."""
    if rule not in RULES:
        raise ValueError(f"unknown requantization rule {rule!r}; choose from {', '.join(RULES)}")
    return OutputStage(
        rule=rule,
        pos=make_multipliers(real, rule),
        neg=None if real_negative is None else make_multipliers(real_negative, rule),
        zero_point=int(zero_point),
        lo=qmin if lo is None else max(qmin, int(lo)),
        hi=qmax if hi is None else min(qmax, int(hi)),
        count_low=lo is None,
        count_high=hi is None,
        qmin=int(qmin),
        qmax=int(qmax),
        acc_bits=int(acc_bits),
    )


def requantize(acc: np.ndarray, stage: OutputStage) -> tuple[np.ndarray, int]:
    """Apply ``stage`` to accumulators ``acc`` (channels last); returns int32 outputs and saturations.

    Saturations count accumulators clamped to the accumulator width plus outputs clamped to
    ``[qmin, qmax]`` on a side without a ReLU/Clip bound (activation clamps are not saturations).
    """
    neg = stage.neg if stage.neg is not None else stage.pos
    flat = np.ascontiguousarray(acc, dtype=np.int64).reshape(-1, acc.shape[-1] if acc.ndim else 1)
    out = np.empty(flat.shape, np.int32)
    saturations = _requantize_2d(
        flat,
        out,
        stage.rule_code,
        stage.pos.as_float32,
        stage.pos.as_int,
        stage.pos.shift,
        stage.pos.sign,
        neg.as_float32,
        neg.as_int,
        neg.shift,
        neg.sign,
        stage.neg is not None,
        stage.zero_point,
        stage.lo,
        stage.hi,
        stage.qmin,
        stage.qmax,
        stage.count_low,
        stage.count_high,
        stage.acc_bits,
    )
    return out.reshape(acc.shape), int(saturations)


@njit(cache=True, inline="always")
def _scale_one(acc, code, mf, mi, sh, sign):
    """One accumulator through one rule (see the module docstring)."""
    if code == 0:
        return requant_float32(acc, mf)
    acc = acc * sign
    if code == 1:
        return multiply_by_quantized_multiplier(acc, mi, sh)
    if code == 2:
        return multiply_by_quantized_multiplier_64(acc, mi, sh)
    return rounding_divide_by_pot(acc * mi, sh)


@njit(cache=True)
def _requantize_2d(
    acc,
    out,
    code,
    mf,
    mi,
    sh,
    sg,
    nmf,
    nmi,
    nsh,
    nsg,
    has_neg,
    zp,
    lo,
    hi,
    qmin,
    qmax,
    count_low,
    count_high,
    acc_bits,
):
    acc_max = (np.int64(1) << (acc_bits - 1)) - 1
    acc_min = -acc_max - 1
    per_channel = mf.shape[0] > 1
    nper_channel = nmf.shape[0] > 1
    saturations = 0
    for p in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            a = acc[p, c]
            if a > acc_max or a < acc_min:
                saturations += 1
                a = saturate(a, acc_min, acc_max)
            if has_neg and a < 0:
                k = c if nper_channel else 0
                y = _scale_one(a, code, nmf[k], nmi[k], nsh[k], nsg[k])
            else:
                k = c if per_channel else 0
                y = _scale_one(a, code, mf[k], mi[k], sh[k], sg[k])
            y += zp
            if (y > qmax and count_high) or (y < qmin and count_low):
                saturations += 1
            out[p, c] = saturate(y, lo, hi)
    return saturations
