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
    """Dense stride-1 convolutions take the implicit-GEMM path (no im2col): asymmetric pads, dilation;
    where the proved bound splits the product into chunks (extreme 16-bit values), im2col does."""
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
    conv = Conv2d(weight, bias, geometry, input_bound=max(hi - x_zp, x_zp - lo), integer_products=False)
    assert (conv.implicit is not None) == (len(conv.matmuls[0].chunks) == 1)
    expected = conv2d_ref(x, x_zp, weight, bias, (1, 1), pads, dilations, 1)
    assert np.array_equal(conv(x, x_zp), expected)


def test_a_bound_past_float32_splits_the_product_and_stays_exact():
    """|x - zp| <= 255 and 16-bit weights of 3000 over 45 taps: the proved bound (3.4e7) passes
    float32's 2^24, so the product runs as float32 chunks (im2col, not the implicit GEMM) and still
    equals the int64 reference."""
    x = np.full((1, 5, 5, 5), 255, np.int64)
    weight = np.full((2, 3, 3, 5), 3000, np.int64)
    pads = (1, 1, 1, 1)
    geometry = ConvGeometry((3, 3), (1, 1), pads, (1, 1), 1, output_hw((5, 5), (3, 3), (1, 1), pads, (1, 1)))
    conv = Conv2d(weight, np.array([0, 1000]), geometry, input_bound=255, integer_products=False)
    assert conv.implicit is None and len(conv.matmuls[0].chunks) > 1
    expected = conv2d_ref(x, 0, weight, np.array([0, 1000]), (1, 1), pads, (1, 1), 1)
    assert np.array_equal(conv(x, 0), expected)
