"""The output stage every accumulating kernel ends with: requantize, activate, saturate, count.

Five named rules turn an accumulator into an output integer:

- ``float32``: onnxruntime semantics: ``rint(float32(acc) * float32(M))``, ties to even.
- ``fixedpoint``: TFLite semantics: Q31 multiplier and shift; int32 accumulators go through
  SaturatingRoundingDoublingHighMul + RoundingDivideByPOT (ties away from zero), int64
  accumulators (16-bit activations) through TFLite's int16x8 ``MultiplyByQuantizedMultiplier``.
- ``single-rounding``: TFLite built with TFLITE_SINGLE_ROUNDING (as TFLite Micro and CMSIS-NN
  can be): the same Q31 multipliers, one rounding ``(acc * M + 2**(30 - shift)) >> (31 - shift)``.
- ``xnnpack``: TFLite's default CPU path (the XNNPACK delegate) for int8: the output stage in
  float32 as XNNPACK's ``fp32`` requantization does, ``lrintf(float(acc) * (s_in * s_w / s_out))``
  (ties to even), the same arithmetic as ``float32``; kernels XNNPACK leaves to TFLite (softmax)
  follow TFLite's optimized kernels.
- ``pow2``: ``RoundingDivideByPOT(acc * m, shift)``; for power-of-two scales ``m`` is 1 (a pure
  rounding right shift), a fractional slope (LeakyReLU/PReLU) is a Q15 integer ``m``.

One more output stage is not a user's rule but what a TFLite kernel does under ``fixedpoint``:
``float64``, ``round(double(acc) * double(M))`` with ties away from zero, TFLite's reference
FULLY_CONNECTED (int8 and int16x8; it keeps no Q31 multiplier).

ReLU/Clip are a clamp of the output integer; LeakyReLU/PReLU use a second, per-channel
multiplier for negative accumulators (the sign of the accumulator is the sign of the real value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import prange

from nnasim.kernels.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_64,
    multiply_by_quantized_multiplier_single,
    quantize_multiplier,
    requant_float32,
    requant_float64,
    round_to_int32,
    rounding_divide_by_pot,
    saturate,
)
from nnasim.kernels.jit import kernel

RULES = ("float32", "fixedpoint", "single-rounding", "xnnpack", "pow2")
STAGE_RULES = (*RULES, "float64")  # the user's rules and the stage of TFLite's reference FC
TFLITE_RULES = ("fixedpoint", "single-rounding", "xnnpack")  # the rules that reproduce TFLite
Q31_RULES = ("fixedpoint", "single-rounding")  # Q31 multiplier and shift
FLOAT32_RULES = ("float32", "xnnpack")  # the output stage in float32
_RULE_CODE = {"float32": 0, "xnnpack": 0, "fixedpoint": 1, "pow2": 3, "single-rounding": 4, "float64": 5}
_FIXEDPOINT64 = 2
POW2_SLOPE_BITS = 15
MAX_INT16X8_SHIFT = 7  # TFLite's int16x8 MultiplyByQuantizedMultiplier takes shifts up to 7
MAX_SHIFT = 62  # larger right shifts of in-range accumulators give 0


@dataclass(frozen=True)
class Multipliers:
    """Per-channel integer form of real multipliers under one rule (arrays of equal length)."""

    as_float: np.ndarray  # the float rules' multiplier (signed): float32, float64 for ``float64``
    as_int: np.ndarray  # int64: Q31 (fixedpoint) or small integer (pow2) magnitude
    shift: np.ndarray  # int64: TFLite convention for fixedpoint (>0 left), right shift for pow2
    sign: np.ndarray  # int64: +1 or -1, applied to the accumulator before the integer rules


def make_multipliers(real: np.ndarray, rule: str) -> Multipliers:
    """Express real multipliers (possibly negative, for PReLU slopes) in ``rule``'s integer form."""
    real = np.atleast_1d(np.asarray(real, dtype=np.float64))
    as_int = np.zeros(real.shape, np.int64)
    shift = np.zeros(real.shape, np.int64)
    for i, value in enumerate(np.abs(real)):
        if rule in Q31_RULES:
            as_int[i], shift[i] = quantize_multiplier(float(value))
        elif rule == "pow2":
            as_int[i], shift[i] = _pow2_multiplier(float(value))
    return Multipliers(
        as_float=real.astype(np.float64 if rule == "float64" else np.float32),
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
            for field in ("as_float", "as_int", "shift", "sign")
        )

    @property
    def rule_code(self) -> int:
        if self.rule in Q31_RULES and self.acc_bits > 32:
            return _FIXEDPOINT64  # TFLite's int64 MultiplyByQuantizedMultiplier is the same in both
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
    if rule not in STAGE_RULES:
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
    encoded = form.as_float if rule in (*FLOAT32_RULES, "float64") else form.as_int
    if nonzero.any() and not np.any(encoded[nonzero]):
        smallest = float(np.min(np.abs(real[nonzero])))
        raise ValueError(
            f"requantization multiplier {smallest:.3g} underflows to 0 under the {rule} rule "
            "(too small for the rule's 32-bit multiplier and shifts): every output would be the zero point; "
            "check the model's scales or use --requant float32"
        )


def requantize(
    acc: np.ndarray, stage: OutputStage, bias: np.ndarray | None = None, acc_bound: int | None = None
) -> tuple[np.ndarray, int]:
    """Apply ``stage`` to accumulators ``acc`` (channels last) plus an optional per-channel ``bias``.

    ``acc`` may be int64 or a float array of exact integers (a BLAS result, see ``gemm``): the
    conversion and the bias addition happen in the same pass. ``acc_bound``, when the caller has
    proved it from the formats, bounds ``|acc + bias|`` and spares wide accumulators a scan of
    the values. Returns int32 outputs and the saturation count: accumulators clamped to the
    accumulator width plus outputs clamped to ``[qmin, qmax]`` on a side without a ReLU/Clip
    bound (activation clamps are not saturations).
    """
    channels = acc.shape[-1] if acc.ndim else 1
    out, saturations = Requantizer(stage, channels, bias, acc_bound)(acc.reshape(-1, channels))
    return out.reshape(acc.shape), saturations


class Requantizer:
    """One layer's output stage prepared once (per-channel arrays, bias, the loop to run).

    ``into(acc, out)`` requantizes any (rows, C) or (rows, cols, C) view of accumulators
    (int64, or floats holding exact integers) into an int32 view of the same shape, e.g. one
    block of a product while it is still in cache, and returns the saturation count. ``acc``
    may have more columns than ``out`` (axis 1 of 3-D views): the extra ones are ignored, so a
    caller can pass a contiguous array instead of a strided slice of it, which the kernels'
    channel loop would not vectorise.
    """

    def __init__(self, stage: OutputStage, channels: int, bias=None, acc_bound: int | None = None):
        self.stage = stage
        self.bias = np.zeros(channels, np.int64) if bias is None else np.asarray(bias, np.int64)
        self.params = stage.per_channel(channels)
        self.clamp = (stage.zero_point, stage.lo, stage.hi, stage.qmin, stage.qmax)
        self.counts = (stage.count_low, stage.count_high)
        self.float_loop, self.float_multipliers = _float_form(stage, self.params)
        wide = stage.acc_bits > FLOAT_EXACT_ACC_BITS
        self.proved = not wide or (acc_bound is not None and acc_bound < FLOAT_EXACT_LIMIT)
        self.scan = wide and acc_bound is None
        acc_limit = 2 ** (stage.acc_bits - 1)
        self.float_args = (
            self.bias.astype(np.float64),
            self.float_multipliers,
            *(float(v) for v in self.clamp[:3]),
            float(stage.qmin) if stage.count_low else -np.inf,  # outputs below it are saturations
            float(stage.qmax) if stage.count_high else np.inf,
            float(acc_limit),
            acc_bound is None or acc_bound >= acc_limit,  # clamp_acc: the width may be exceeded
        )
        self.int_args = (self.bias, *self.params, *self.clamp, *self.counts, stage.acc_bits)
        self.lane_args = _float32_lane_args(stage, self.bias, self.float_multipliers, acc_bound)

    def __call__(self, acc: np.ndarray) -> tuple[np.ndarray, int]:
        """(int32 outputs of ``acc``'s shape, saturations)."""
        out = np.empty(acc.shape, np.int32)
        return out, self.into(acc, out)

    def into(self, acc: np.ndarray, out: np.ndarray) -> int:
        if acc.dtype not in (np.int32, np.int64, np.float32, np.float64):
            acc = acc.astype(np.int64)
        acc3, out3 = (acc[None], out[None]) if acc.ndim == 2 else (acc, out)
        if self.lane_args is not None and acc.dtype == np.int32:
            return int(_requantize_float32_lanes(acc3, out3, *self.lane_args))
        if self.float_loop is not None and (
            self.proved or (self.scan and self._seen_exact(acc3[:, : out3.shape[1]]))
        ):
            return int(self.float_loop(acc3, out3, *self.float_args))
        code, by_sign = self.stage.rule_code, self.stage.neg is not None
        return int(_requantize_int(code, by_sign, acc3, out3, *self.int_args))

    def _seen_exact(self, acc: np.ndarray) -> bool:
        largest = float(np.abs(acc).max(initial=0)) + float(np.abs(self.bias).max(initial=0))
        return largest < FLOAT_EXACT_LIMIT


FLOAT_EXACT_ACC_BITS = 53
FLOAT_EXACT_LIMIT = 2.0**FLOAT_EXACT_ACC_BITS / 2
INT32_LIMIT = 2**31


def _float32_lane_args(stage: OutputStage, bias: np.ndarray, multipliers, acc_bound: int | None):
    """The arguments of ``_requantize_float32_lanes``, or None where it does not apply: the
    float32 rule without a negative branch, and a proof that ``|acc + bias|`` fits int32 (so
    the sum is exact and the accumulator clamp cannot fire). Clamp bounds and saturation
    thresholds move by the zero point, which is exact on these small integers."""
    if stage.rule not in FLOAT32_RULES or stage.neg is not None or acc_bound is None:
        return None
    if acc_bound >= min(INT32_LIMIT, 2 ** (stage.acc_bits - 1)):
        return None
    zp = stage.zero_point
    below = stage.qmin - zp if stage.count_low else -np.inf
    above = stage.qmax - zp if stage.count_high else np.inf
    thresholds = (stage.lo - zp, stage.hi - zp, below, above)
    return (bias.astype(np.int32), multipliers, np.int32(zp), *(np.float32(v) for v in thresholds))


@kernel(parallel=True)
def _requantize_float32_lanes(acc, out, bias, m, zp, lo, hi, below, above):
    """The float32 rule on int32 accumulators in float32 lanes (twice float64's): ``acc + bias``
    exact (proved), rounded once to float32 as the float64 loop does, the product and ``rint``
    in float32, clamped and counted before the zero point is added (``_float32_lane_args``)."""
    saturations = 0
    columns = out.shape[1]
    for ij in prange(acc.shape[0] * columns):  # every (i, j) row of channels, shared out
        i, j = ij // columns, ij % columns
        for c in range(acc.shape[2]):
            y = np.rint(np.float32(acc[i, j, c] + bias[c]) * m[c])
            out[i, j, c] = np.int32(min(max(y, lo), hi)) + zp
            saturations += (y > above) + (y < below)
    return saturations


def _float_form(stage: OutputStage, params) -> tuple:
    """(float64 loop, per-channel multipliers) of the floating-point form of ``stage``, or Nones.

    The float32 rule (with or without a negative branch) and the pow2 rule's pure shifts
    (multiplier 1) without one are exactly the same computation in floating point (accumulators
    below 2**53 are exact in float64, power-of-two scaling is exact, rounding half away from
    zero is floor(|v| + 0.5) with the sign): one float64 pass that vectorises. Wider
    accumulators qualify when their bound is proved (``acc_bound``) or, failing a proof, seen
    in the values to stay below 2**52.
    """
    if stage.neg is not None:  # PReLU / LeakyReLU: a multiplier per sign
        return (_requantize_float32_by_sign, params[0][:2]) if stage.rule in FLOAT32_RULES else (None, None)
    if stage.rule in FLOAT32_RULES:
        return _requantize_float32_rule, params[0][0]
    if stage.rule == "float64":
        return _requantize_float64_rule, params[0][0]
    if stage.rule == "pow2" and np.all(params[1][0] == 1):
        return _requantize_pow2_shift, np.exp2(-params[2][0].astype(np.float64))
    return None, None


@kernel(inline="always")
def _clamp_and_count(v, acc_limit):
    """The accumulator clamped to its width, and 1 where that clamps (a saturation)."""
    return min(max(v, -acc_limit), acc_limit - 1), (v > acc_limit - 1) + (v < -acc_limit)


@kernel(parallel=True)
def _requantize_float32_rule(acc, out, bias, m, zp, lo, hi, below, above, acc_limit, clamp_acc):
    """The float32 rule in float64 on (i, j, C) views (see ``_float_form``; ``acc`` may have
    more columns j than ``out``). ``acc_limit`` is 2**(acc_bits - 1); without ``clamp_acc`` (a
    bound proves the accumulators within their width) they are not clamped, which is faster.
    Outputs below ``below`` or above ``above`` count as saturations (infinite: not counted)."""
    saturations = 0
    columns = out.shape[1]
    for ij in prange(acc.shape[0] * columns):  # every (i, j) row of channels, shared out
        i, j = ij // columns, ij % columns
        for c in range(acc.shape[2]):
            v = np.float64(acc[i, j, c]) + bias[c]
            if clamp_acc:  # loop-invariant: LLVM compiles the loop once with, once without
                v, clamped = _clamp_and_count(v, acc_limit)
                saturations += clamped
            y = np.float64(np.rint(np.float32(v) * m[c])) + zp
            out[i, j, c] = np.int32(min(max(y, lo), hi))  # written here: a helper stops vectorisation
            saturations += (y > above) + (y < below)
    return saturations


@kernel(parallel=True)
def _requantize_float32_by_sign(acc, out, bias, m, zp, lo, hi, below, above, acc_limit, clamp_acc):
    """``_requantize_float32_rule`` with a negative branch: ``m`` is (2, C), row 1 for negative
    accumulators (PReLU, LeakyReLU), as ``_requantize_int`` picks them."""
    saturations = 0
    columns = out.shape[1]
    for ij in prange(acc.shape[0] * columns):  # every (i, j) row of channels, shared out
        i, j = ij // columns, ij % columns
        for c in range(acc.shape[2]):
            v = np.float64(acc[i, j, c]) + bias[c]
            if clamp_acc:
                v, clamped = _clamp_and_count(v, acc_limit)
                saturations += clamped
            scale = m[1, c] if v < 0 else m[0, c]
            y = np.float64(np.rint(np.float32(v) * scale)) + zp
            out[i, j, c] = np.int32(min(max(y, lo), hi))  # written here: a helper stops vectorisation
            saturations += (y > above) + (y < below)
    return saturations


@kernel(parallel=True)
def _requantize_float64_rule(acc, out, bias, m, zp, lo, hi, below, above, acc_limit, clamp_acc):
    """The ``float64`` stage on (i, j, C) views (TFLite's reference FC: ``requant_float64``); the
    arguments as in ``_requantize_float32_rule``."""
    saturations = 0
    columns = out.shape[1]
    for ij in prange(acc.shape[0] * columns):  # every (i, j) row of channels, shared out
        i, j = ij // columns, ij % columns
        for c in range(acc.shape[2]):
            v = np.float64(acc[i, j, c]) + bias[c]
            if clamp_acc:
                v, clamped = _clamp_and_count(v, acc_limit)
                saturations += clamped
            y = round_to_int32(v * m[c]) + zp
            out[i, j, c] = np.int32(min(max(y, lo), hi))  # written here: a helper stops vectorisation
            saturations += (y > above) + (y < below)
    return saturations


@kernel(parallel=True)
def _requantize_pow2_shift(acc, out, bias, m, zp, lo, hi, below, above, acc_limit, clamp_acc):
    """The pow2 rule's pure shifts in float64 on (i, j, C) views, ``m`` = 2**-shift; the other
    arguments as in ``_requantize_float32_rule``."""
    saturations = 0
    columns = out.shape[1]
    for ij in prange(acc.shape[0] * columns):  # every (i, j) row of channels, shared out
        i, j = ij // columns, ij % columns
        for c in range(acc.shape[2]):
            v = np.float64(acc[i, j, c]) + bias[c]
            if clamp_acc:
                v, clamped = _clamp_and_count(v, acc_limit)
                saturations += clamped
            w = v * m[c]
            y = np.copysign(np.floor(np.abs(w) + 0.5), w) + zp
            out[i, j, c] = np.int32(min(max(y, lo), hi))  # written here: a helper stops vectorisation
            saturations += (y > above) + (y < below)
    return saturations


@kernel(inline="always")
def _apply_rule(code, a, mf, mi, sh, sg):
    """Rule ``code`` (``OutputStage.rule_code``) on one saturated accumulator."""
    if code == 0:
        return requant_float32(a, mf)
    if code == 1:
        return multiply_by_quantized_multiplier(a * sg, mi, sh)
    if code == _FIXEDPOINT64:
        return multiply_by_quantized_multiplier_64(a * sg, mi, sh)
    if code == 4:
        return multiply_by_quantized_multiplier_single(a * sg, mi, sh)
    if code == 5:
        return requant_float64(a, mf)
    return rounding_divide_by_pot(a * sg * mi, sh)


def mbqm_code(rule: str) -> int:
    """1 for the double-rounding MultiplyByQuantizedMultiplier, 4 for TFLITE_SINGLE_ROUNDING's
    (for kernels that call it themselves, e.g. TFLite's softmax)."""
    return 4 if rule == "single-rounding" else 1


@kernel(inline="always")
def mbqm(code, x, multiplier, shift):
    """The 32-bit MultiplyByQuantizedMultiplier of ``mbqm_code`` (a code, not a function argument,
    so that compiled kernels cache across processes)."""
    if code == 4:
        return multiply_by_quantized_multiplier_single(x, multiplier, shift)
    return multiply_by_quantized_multiplier(x, multiplier, shift)


@kernel(parallel=True)
def _requantize_int(
    code, by_sign, acc, out, bias, mf, mi, sh, sg, zp, lo, hi, qmin, qmax, count_low, count_high, acc_bits
):
    """The output stage over (i, j, C) views for rule ``code``; with ``by_sign``, negative
    accumulators use row 1 of the parameters (the LeakyReLU/PReLU branch), else row 0."""
    acc_max = (np.int64(1) << (acc_bits - 1)) - 1
    acc_min = -acc_max - 1
    saturations = 0
    columns = out.shape[1]
    for ij in prange(acc.shape[0] * columns):  # every (i, j) row of channels, shared out
        i, j = ij // columns, ij % columns
        for c in range(acc.shape[2]):
            a = np.int64(acc[i, j, c]) + bias[c]
            if a > acc_max or a < acc_min:
                saturations += 1
                a = saturate(a, acc_min, acc_max)
            r = 1 if by_sign and a < 0 else 0
            y = _apply_rule(code, a, mf[r, c], mi[r, c], sh[r, c], sg[r, c]) + zp
            saturations += (y > qmax and count_high) or (y < qmin and count_low)
            out[i, j, c] = saturate(y, lo, hi)
    return saturations
