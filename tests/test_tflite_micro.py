"""Bit-exact against TFLite Micro (the ``tflite-micro`` package): every op output of the generated
single-op int8 / int16x8 models of ``test_tflite_exact`` and of the shared full-integer networks,
under the ``fixedpoint`` rule (TFLM runs TFLite's reference kernels). Where TFLM's kernel is not
TFLite's, the case is skipped with the op and the reason (docs/tflite.md)."""

from __future__ import annotations

import pytest
from test_tflite_exact import CASES, _unary_case, write_case
from tflite_oracle import compare_all_tensors_micro, shared_tflite

MICRO_CASES = CASES | {
    # TFLM's RELU6 is a clamp in the input's format: equal to TFLite's where the formats agree
    "relu6_same_format": _unary_case("RELU6", out_fmt=(0.03, -5)),
}
NOT_TFLITE_KERNEL = {
    "relu6": "TFLM's int8 RELU6 clamps to [zp_in, zp_in + round(6 / s_in)] in the input's format "
    "and ignores the output's scale and zero point; TFLite (and nnasim) requantize to the output",
    "relu_n1_to_1": "TFLM has no RELU_N1_TO_1 kernel (its op resolver refuses the file)",
}
_TFLM_FC = (
    "TFLM's reference FULLY_CONNECTED requantizes with the Q31 MultiplyByQuantizedMultiplier, "
    "TFLite's (and nnasim's fixedpoint) with round(double(acc) * s_in * s_w / s_out)"
)
DIFFERENT_FORMULA = {  # equal on the small cases; these larger ones show it
    "fully_connected_16x8_large": _TFLM_FC,
    "fully_connected_16x8_per_channel_relu_large": _TFLM_FC,
    "fully_connected_int8_per_channel_large": _TFLM_FC,
    "mul_int16_large": "TFLM's MUL quantizes the double quotient of the scales, TFLite (and nnasim's "
    "fixedpoint) the float32 one",
}


@pytest.mark.parametrize("case", sorted(MICRO_CASES))
def test_single_op_model_matches_tflite_micro(case, tmp_path):
    reason = NOT_TFLITE_KERNEL.get(case) or DIFFERENT_FORMULA.get(case)
    if reason:
        pytest.skip(f"{case}: {reason}")
    path = write_case(case, MICRO_CASES[case], tmp_path)
    for seed in range(3):
        differ, compared = compare_all_tensors_micro(path, "fixedpoint", seed=seed)
        assert compared >= 1
        assert differ == [], f"{case}: {differ}"


@pytest.mark.parametrize("case", sorted(DIFFERENT_FORMULA))
def test_tflite_micro_formula_differs_where_skipped(case, tmp_path):
    """The skips above are TFLM's formula, not a case nnasim gets wrong (it equals TFLite's)."""
    assert compare_all_tensors_micro(write_case(case, CASES[case], tmp_path), "fixedpoint")[0] != []


@pytest.mark.parametrize(
    "name", ["mobilefacenet_int8", "mobilefacenet_int16x8", "lffd_320x240_int8", "lffd_320x240_int16x8"]
)
def test_shared_full_integer_network_matches_tflite_micro(name):
    path = shared_tflite(f"tflite-int/{name}.tflite")
    if name == "lffd_320x240_int16x8":
        pytest.skip(
            "TFLM's standalone RELU (int16 here) quantizes the multiplier double(s_in) / double(s_out), "
            "TFLite (and nnasim's fixedpoint) float32(s_in / s_out): up to 71 outputs of a RELU differ "
            "by 1 and propagate"
        )
    differ, compared = compare_all_tensors_micro(path, "fixedpoint")
    assert compared > 60
    assert differ == []
