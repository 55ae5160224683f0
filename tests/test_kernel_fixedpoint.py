"""Fixed-point helpers and the output stage vs a Python-int port of TFLite's formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nnasim.kernels import fixedpoint as fp
from nnasim.kernels.requant import Requantizer, make_output_stage, requantize
from tests.reference import fixedpoint_ref as ref
from tests.reference.requant_ref import requantize_ref

INT32 = st.integers(ref.INT32_MIN, ref.INT32_MAX)
EXTREMES = [ref.INT32_MIN, ref.INT32_MIN + 1, -1, 0, 1, ref.INT32_MAX - 1, ref.INT32_MAX]
INT32_EDGY = st.one_of(st.sampled_from(EXTREMES), INT32)
SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(INT32_EDGY, INT32_EDGY)
@example(ref.INT32_MIN, ref.INT32_MIN)
def test_srdhm_matches_gemmlowp(a, b):
    assert fp.saturating_rounding_doubling_high_mul(a, b) == ref.srdhm(a, b)


@SETTINGS
@given(INT32_EDGY, INT32_EDGY)
@example(ref.INT32_MIN, ref.INT32_MIN)
def test_rounding_doubling_high_mul_matches_vqrdmulh(a, b):
    assert fp.rounding_doubling_high_mul(a, b) == ref.vqrdmulh(a, b)


@SETTINGS
@given(st.integers(-(2**62), 2**62 - 1), st.integers(0, 61))
def test_rounding_divide_by_pot_is_round_half_away(x, exponent):
    expected = ref.round_half_away_div_pow2(x, exponent)
    assert fp.rounding_divide_by_pot(x, exponent) == expected
    assert ref.rdbpot(x, exponent) == expected


@pytest.mark.parametrize("x", [-5, -3, -1, 1, 3, 5])
def test_rounding_divide_by_pot_ties_go_away_from_zero(x):
    # x / 2 is an exact tie for odd x: away from zero means magnitude (|x| + 1) / 2.
    assert fp.rounding_divide_by_pot(x, 1) == np.sign(x) * (abs(x) + 1) // 2


@SETTINGS
@given(INT32_EDGY, st.integers(0, 2**31 - 1), st.integers(-31, 0))
def test_multiply_by_quantized_multiplier_matches_tflite(x, multiplier, shift):
    assert fp.multiply_by_quantized_multiplier(x, multiplier, shift) == ref.mbqm32(x, multiplier, shift)


@SETTINGS
@given(st.integers(-(2**47), 2**47 - 1), st.integers(0, 2**31 - 1), st.integers(-31, 7))
@example(-(2**47), 2**31 - 1, 7)
@example(2**40, 2**30, 0)  # 2**39 leaves int32: TFLite's int32_t result wraps
def test_multiply_by_quantized_multiplier_64_matches_tflite(x, multiplier, shift):
    assert fp.multiply_by_quantized_multiplier_64(x, multiplier, shift) == ref.mbqm64(x, multiplier, shift)


@SETTINGS
@given(st.floats(0.0, 2.0**8, allow_nan=False, exclude_min=False))
@example(1.0 - 2.0**-33)  # rounds up to 2**31: renormalised
@example(2.0**-40)  # below the representable range: zero
def test_quantize_multiplier_matches_tflite(real):
    multiplier, shift = fp.quantize_multiplier(real)
    assert (multiplier, shift) == ref.quantize_multiplier(real)
    if multiplier:
        assert 2**30 <= multiplier < 2**31
        assert abs(multiplier * 2.0 ** (shift - 31) - real) <= real * 2.0**-31


def test_ties_differ_between_rules():
    """acc * 0.25 at acc = 4k+2 is a tie decided by RoundingDivideByPOT: fixedpoint and pow2 round
    away from zero, float32 to even."""
    acc = np.array([[-6], [-2], [2], [6], [10]])
    away = np.array([[-2], [-1], [1], [2], [3]])
    even = np.array([[-2], [0], [0], [2], [2]])
    for rule, expected in (("fixedpoint", away), ("pow2", away), ("float32", even)):
        stage = make_output_stage(np.array([0.25]), rule, 0, -128, 127, 32)
        out, _ = requantize(acc, stage)
        assert np.array_equal(out, expected), rule


def test_float64_stage_is_tflite_reference_fc_rounding():
    """TFLite's reference FULLY_CONNECTED: round(double(acc) * M), ties away from zero (the largest
    double below 0.5 stays 0), a result outside int32 becomes INT32_MIN before the clamp."""
    below_half = 0.5 - 2.0**-54
    acc = np.array([[-6], [-2], [2], [6], [1], [2**40], [-(2**40)]])
    stage = make_output_stage(np.array([0.25]), "float64", 0, -32768, 32767, 64)
    out, _ = requantize(acc, stage)
    assert out[:, 0].tolist() == [-2, -1, 1, 2, 0, -32768, -32768]
    out, _ = requantize(
        np.array([[1]]), make_output_stage(np.array([below_half]), "float64", 0, -128, 127, 32)
    )
    assert out[0, 0] == 0


def test_fixedpoint_ties_inside_srdhm_follow_gemmlowp():
    """With M = 0.5 (Q31 multiplier 2**30, shift 0) the tie is decided inside
    SaturatingRoundingDoublingHighMul, whose negative nudge makes -1.5 -> -1 (as TFLite does)."""
    acc = np.array([[-3], [-1], [1], [3]])
    expected = np.array([[ref.srdhm(int(a), 2**30)] for a in acc[:, 0]])
    assert expected[:, 0].tolist() == [-1, 0, 1, 2]
    out, _ = requantize(acc, make_output_stage(np.array([0.5]), "fixedpoint", 0, -128, 127, 32))
    assert np.array_equal(out, expected)


@st.composite
def output_stage_cases(draw):
    rule = draw(st.sampled_from(["float32", "fixedpoint", "single-rounding", "xnnpack", "pow2", "float64"]))
    bits = draw(st.sampled_from([8, 16]))
    acc_bits = 32 if bits == 8 else draw(st.sampled_from([32, 48] if rule == "pow2" else [32, 48, 64]))
    if rule in ("fixedpoint", "single-rounding") and bits == 16:
        acc_bits = 48  # TFLite's int16x8 path takes int64 accumulators below 2**47
    channels = draw(st.integers(1, 4))
    per_channel = draw(st.booleans())
    n_mult = channels if per_channel else 1
    if rule == "pow2":
        real = np.array([2.0 ** -draw(st.integers(0, 20)) for _ in range(n_mult)])
    else:
        real = np.array([draw(st.floats(2.0**-20, 4.0)) for _ in range(n_mult)])
    negative = None
    if draw(st.booleans()):
        negative = real * np.array([draw(st.floats(-2.0, 2.0)) for _ in range(n_mult)])
    limit = 2 ** (acc_bits - 1)
    edges = st.sampled_from([-limit, -limit + 1, -1, 0, 1, limit - 1, 2 ** min(acc_bits + 2, 62)])
    values = draw(
        st.lists(st.one_of(edges, st.integers(-limit, limit - 1)), min_size=channels, max_size=6 * channels)
    )
    acc = np.array(values[: len(values) // channels * channels], np.int64).reshape(-1, channels)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    zp = draw(st.integers(qmin // 2, qmax // 2))
    lo = draw(st.one_of(st.none(), st.integers(qmin, zp)))
    return acc, real, rule, zp, qmin, qmax, acc_bits, lo, negative


@settings(max_examples=150, deadline=None)
@given(output_stage_cases())
def test_output_stage_matches_reference(case):
    acc, real, rule, zp, qmin, qmax, acc_bits, lo, negative = case
    if rule in ("fixedpoint", "single-rounding") and acc_bits > 32:
        acc = np.clip(acc, -(2**47), 2**47 - 1)
        real = np.minimum(real, 1.0)
        negative = None if negative is None else np.clip(negative, -1.0, 1.0)
    stage = make_output_stage(real, rule, zp, qmin, qmax, acc_bits, lo=lo, real_negative=negative)
    out, saturations = requantize(acc, stage)
    expected, expected_saturations = requantize_ref(
        acc, real, rule, zp, qmin, qmax, acc_bits, lo=lo, real_negative=negative
    )
    assert np.array_equal(out, expected)
    assert saturations == expected_saturations


@settings(max_examples=100, deadline=None)
@given(
    rule=st.sampled_from(["float32", "xnnpack"]),
    bits=st.sampled_from([8, 16]),
    real=st.lists(st.floats(2.0**-20, 4.0, width=32), min_size=1, max_size=4),
    zp_frac=st.floats(-0.5, 0.5),
    clamp_low=st.booleans(),
    data=st.data(),
)
def test_float32_lanes_match_reference(rule, bits, real, zp_frac, clamp_low, data):
    """int32 accumulators with a proved ``|acc + bias| < 2**31`` take the float32-lane loop; it
    equals the reference (the float32 rule in float64) integer for integer, saturations too."""
    channels = len(real)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    zp = int(zp_frac * qmax)
    lo = zp if clamp_low else None
    bound = data.draw(st.sampled_from([2**31 - 1, 2**24 + 1, 1000]))  # |acc + bias| <= bound
    half = st.integers(-(bound // 2), bound // 2)
    edge = st.sampled_from([-(bound // 2), bound // 2, 0, 1, -1, min(2**23 + 1, bound // 2)])
    bias = np.array(data.draw(st.lists(half, min_size=channels, max_size=channels)))
    rows = data.draw(st.integers(1, 5))
    totals = data.draw(st.lists(st.one_of(edge, half), min_size=rows * channels, max_size=rows * channels))
    acc = np.array(totals, np.int64).reshape(rows, channels) - bias  # |acc| <= bound: it fits int32
    stage = make_output_stage(np.array(real), rule, zp, qmin, qmax, 32, lo=lo)
    requantizer = Requantizer(stage, channels, bias, acc_bound=bound)
    assert requantizer.lane_args is not None
    out, saturations = requantizer(acc.astype(np.int32))
    expected, expected_saturations = requantize_ref(
        acc + bias, np.array(real), rule, zp, qmin, qmax, 32, lo=lo
    )
    assert np.array_equal(out, expected)
    assert saturations == expected_saturations


def test_int16x8_path_refuses_multipliers_beyond_its_shift_range():
    """TFLite's int64 MultiplyByQuantizedMultiplier takes shifts up to 7 (multipliers below 2**7)."""
    make_output_stage(np.array([2.0**6 * 1.99]), "fixedpoint", 0, -32768, 32767, 64)
    with pytest.raises(ValueError, match="int16x8"):
        make_output_stage(np.array([2.0**7]), "fixedpoint", 0, -32768, 32767, 64)
