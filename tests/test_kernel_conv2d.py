"""conv2d kernel (dense, grouped, depthwise; stride, dilation, padding) vs the int64 numpy reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.conv2d import Conv2d, ConvGeometry, output_hw
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.conv2d_ref import conv2d_ref


@st.composite
def conv_cases(draw):
    bits = draw(bits_st)
    groups_kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    cin_g = 1 if groups_kind == "depthwise" else draw(st.integers(1, 4))
    groups = 1 if groups_kind == "dense" else draw(st.integers(2, 4))
    cout_g = 1 if groups_kind == "depthwise" else draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    out_hw = output_hw((h, w), kernel, strides, pads, dilations)
    if min(out_hw) < 1:
        h, w = h + 6, w + 6
        out_hw = output_hw((h, w), kernel, strides, pads, dilations)
    n = draw(st.integers(1, 2))
    x = draw(int_arrays((n, h, w, cin_g * groups), bits))
    weight = draw(int_arrays((cout_g * groups, *kernel, cin_g), bits))
    lo, hi = int_range(bits)
    x_zp = draw(st.integers(lo, hi))
    bias = draw(int_arrays((cout_g * groups,), 24))
    return x, x_zp, weight, bias, ConvGeometry(kernel, strides, pads, dilations, groups, out_hw), bits


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv2d_matches_reference(case):
    x, x_zp, weight, bias, geometry, bits = case
    lo, hi = int_range(bits)
    conv = Conv2d(weight, bias, geometry, input_bound=max(hi - x_zp, x_zp - lo))
    acc = conv(x, x_zp)
    expected = conv2d_ref(
        x, x_zp, weight, bias, geometry.strides, geometry.pads, geometry.dilations, geometry.groups
    )
    assert acc.dtype == np.int64
    assert np.array_equal(acc, expected)


@settings(max_examples=25, deadline=None)
@given(st.data(), bits_st)
def test_stride_one_implicit_gemm_matches_reference(data, bits):
    """Dense stride-1 convolutions take the implicit-GEMM path (no im2col): asymmetric pads, dilation."""
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(2, 3)))
    dilations = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    pads = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    h, w = data.draw(st.integers(5, 9)), data.draw(st.integers(5, 9))
    x = data.draw(int_arrays((data.draw(st.integers(1, 2)), h, w, data.draw(st.integers(1, 5))), bits))
    weight = data.draw(int_arrays((data.draw(st.integers(1, 4)), *kernel, x.shape[3]), bits))
    lo, hi = int_range(bits)
    x_zp = data.draw(st.integers(lo, hi))
    bias = np.arange(weight.shape[0]) * 1000
    geometry = ConvGeometry(
        kernel, (1, 1), pads, dilations, 1, output_hw((h, w), kernel, (1, 1), pads, dilations)
    )
    conv = Conv2d(weight, bias, geometry, input_bound=max(hi - x_zp, x_zp - lo))
    assert conv.implicit is not None
    expected = conv2d_ref(x, x_zp, weight, bias, (1, 1), pads, dilations, 1)
    assert np.array_equal(conv(x, x_zp), expected)
