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
from dataclasses import dataclass, field

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
MAX_INT16X8_SHIFT = 7  # TFLite's int16x8 MultiplyByQuantizedMultiplier takes shifts up to 7
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
    _expanded: dict = field(default_factory=dict, compare=False, repr=False)

    def per_channel(self, channels: int) -> tuple[np.ndarray, ...]:
        """(float32, int, shift, sign) arrays of shape (2, channels): row 0 positive, row 1 negative."""
        if channels not in self._expanded:
            self._expanded[channels] = self._expand(channels)
        return self._expanded[channels]

    def _expand(self, channels: int) -> tuple[np.ndarray, ...]:
        neg = self.neg if self.neg is not None else self.pos
        return tuple(
            np.ascontiguousarray(
                np.stack([np.broadcast_to(getattr(m, field), (channels,)) for m in (self.pos, neg)])
            )
            for field in ("as_float32", "as_int", "shift", "sign")
        )

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
    stage = OutputStage(
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
    _refuse_underflow(np.atleast_1d(np.asarray(real, np.float64)), stage.pos, rule)
    if stage.rule_code == _FIXEDPOINT64:
        shifts = [m.shift for m in (stage.pos, stage.neg) if m is not None]
        if max(int(np.max(shift)) for shift in shifts) > MAX_INT16X8_SHIFT:
            raise ValueError(
                "a requantization multiplier is 2**7 or more, beyond TFLite's int16x8 path "
                "(MultiplyByQuantizedMultiplier with int64 input); use the float32 or pow2 rule"
            )
    return stage


def _refuse_underflow(real: np.ndarray, form: Multipliers, rule: str) -> None:
    """A multiplier the rule cannot represent becomes 0 and every output the zero point: refuse that
    (when no channel survives) instead of returning silent zeros."""
    nonzero = real != 0
    encoded = form.as_float32 if rule == "float32" else form.as_int
    if nonzero.any() and not np.any(encoded[nonzero]):
        smallest = float(np.min(np.abs(real[nonzero])))
        raise ValueError(
            f"requantization multiplier {smallest:.3g} underflows to 0 under the {rule} rule "
            "(too small for the rule's 32-bit multiplier and shifts): every output would be the zero point; "
            "check the model's scales or use --requant float32"
        )


def requantize(acc: np.ndarray, stage: OutputStage, bias: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Apply ``stage`` to accumulators ``acc`` (channels last) plus an optional per-channel ``bias``.

    ``acc`` may be int64 or a float array of exact integers (a BLAS result, see ``gemm``): the
    conversion and the bias addition happen in the same pass. Returns int32 outputs and the
    saturation count: accumulators clamped to the accumulator width plus outputs clamped to
    ``[qmin, qmax]`` on a side without a ReLU/Clip bound (activation clamps are not saturations).
    """
    channels = acc.shape[-1] if acc.ndim else 1
    flat = acc.reshape(-1, channels)
    if not flat.flags.c_contiguous or flat.dtype not in (np.int64, np.float32, np.float64):
        flat = np.ascontiguousarray(flat, dtype=np.int64)
    bias = np.zeros(channels, np.int64) if bias is None else np.asarray(bias, np.int64)
    out = np.empty(flat.shape, np.int32)
    params = stage.per_channel(channels)
    float_form = _float_form(stage, params, flat, bias)
    if float_form is not None:
        rule, multipliers = float_form
        saturations = _requantize_2d_float(
            rule,
            flat,
            bias.astype(np.float64),
            out,
            multipliers,
            *(float(v) for v in (stage.zero_point, stage.lo, stage.hi, stage.qmin, stage.qmax)),
            stage.count_low,
            stage.count_high,
            float(2 ** (stage.acc_bits - 1)),
        )
        return out.reshape(acc.shape), int(saturations)
    saturations = _requantize_2d(
        _RULE_FUNCTIONS[stage.rule_code],
        _row_by_sign if stage.neg is not None else _positive_row,
        flat,
        bias,
        out,
        *params,
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


FLOAT_EXACT_ACC_BITS = 53


def _float_form(stage: OutputStage, params, acc: np.ndarray, bias: np.ndarray) -> tuple | None:
    """(rule, per-channel multipliers) of the floating-point form of ``stage``, where it exists.

    The float32 rule and the pow2 rule's pure shifts (multiplier 1) without a negative branch
    are exactly the same computation in floating point (accumulators below 2**53 are exact in
    float64, power-of-two scaling is exact, rounding half away from zero is floor(|v| + 0.5)
    with the sign): one float64 pass that vectorises, where int64 conversions do not on AVX2.
    Wider accumulators qualify when this call's values are seen to stay below 2**53.
    """
    if stage.neg is not None:
        return None
    if stage.acc_bits > FLOAT_EXACT_ACC_BITS and not _below_float_exact(acc, bias):
        return None
    if stage.rule == "float32":
        return _float32_rule_float, params[0][0]
    if stage.rule == "pow2" and np.all(params[1][0] == 1):
        return _pow2_rule_float, np.exp2(-params[2][0].astype(np.float64))
    return None


def _below_float_exact(acc: np.ndarray, bias: np.ndarray) -> bool:
    largest = float(np.abs(acc).max(initial=0)) + float(np.abs(bias).max(initial=0))
    return largest < 2.0**FLOAT_EXACT_ACC_BITS / 2


@njit(cache=True, inline="always")
def _float32_rule_float(v, m):
    return np.float64(np.rint(np.float32(v) * m))


@njit(cache=True, inline="always")
def _pow2_rule_float(v, m):
    w = v * m
    return np.copysign(np.floor(np.abs(w) + 0.5), w)


@njit(cache=True)
def _requantize_2d_float(rule, acc, bias, out, m, zp, lo, hi, qmin, qmax, count_low, count_high, acc_limit):
    """The output stage in float64 (see ``_float_form``); ``acc_limit`` is 2**(acc_bits - 1)."""
    saturations = 0
    for p in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            v = np.float64(acc[p, c]) + bias[c]
            saturations += (v > acc_limit - 1) + (v < -acc_limit)
            v = min(max(v, -acc_limit), acc_limit - 1)
            y = rule(v, m[c]) + zp
            saturations += (y > qmax and count_high) + (y < qmin and count_low)
            out[p, c] = np.int32(min(max(y, lo), hi))
    return saturations


@njit(cache=True, inline="always")
def _float32_rule(a, mf, mi, sh, sg):
    return requant_float32(a, mf)


@njit(cache=True, inline="always")
def _fixedpoint_rule(a, mf, mi, sh, sg):
    return multiply_by_quantized_multiplier(a * sg, mi, sh)


@njit(cache=True, inline="always")
def _fixedpoint64_rule(a, mf, mi, sh, sg):
    return multiply_by_quantized_multiplier_64(a * sg, mi, sh)


@njit(cache=True, inline="always")
def _pow2_rule(a, mf, mi, sh, sg):
    return rounding_divide_by_pot(a * sg * mi, sh)


_RULE_FUNCTIONS = {0: _float32_rule, 1: _fixedpoint_rule, _FIXEDPOINT64: _fixedpoint64_rule, 3: _pow2_rule}


@njit(cache=True, inline="always")
def _positive_row(a):
    return 0


@njit(cache=True, inline="always")
def _row_by_sign(a):
    return 1 if a < 0 else 0


@njit(cache=True)
def _requantize_2d(
    rule, row, acc, bias, out, mf, mi, sh, sg, zp, lo, hi, qmin, qmax, count_low, count_high, acc_bits
):
    """The output stage over (positions, channels); row 1 of the parameters is the negative branch.

    ``rule`` and ``row`` are functions (the rule; which parameter row an accumulator uses):
    Numba compiles one specialised, branch-free loop per combination.
    """
    acc_max = (np.int64(1) << (acc_bits - 1)) - 1
    acc_min = -acc_max - 1
    saturations = 0
    for p in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            a = np.int64(acc[p, c]) + bias[c]
            if a > acc_max or a < acc_min:
                saturations += 1
                a = saturate(a, acc_min, acc_max)
            r = row(a)
            y = rule(a, mf[r, c], mi[r, c], sh[r, c], sg[r, c]) + zp
            saturations += (y > qmax and count_high) or (y < qmin and count_low)
            out[p, c] = saturate(y, lo, hi)
    return saturations
