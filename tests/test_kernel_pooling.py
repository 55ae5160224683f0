"""max pooling and average-pooling window sums (padding, stride, dilation, ceil mode) vs numpy."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nnasim.kernels.pooling import max_pool, window_sum
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.pooling_ref import max_pool_ref, window_sum_ref


@st.composite
def pool_cases(draw):
    bits = draw(bits_st)
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, k - 1)) for k in (*kernel, *kernel))
    h, w = draw(st.integers(4, 7)), draw(st.integers(4, 7))
    ceil = draw(st.booleans())
    rounding = math.ceil if ceil else math.floor
    out_hw = tuple(
        rounding((size + pads[i] + pads[i + 2] - dilations[i] * (kernel[i] - 1) - 1) / strides[i]) + 1
        for i, size in enumerate((h, w))
    )
    # as ONNX/PyTorch ceil mode: the last window must start inside the input or its leading pad
    out_hw = tuple(o - 1 if (o - 1) * strides[i] >= (h, w)[i] + pads[i] else o for i, o in enumerate(out_hw))
    assume(min(out_hw) >= 1)
    x = draw(int_arrays((draw(st.integers(1, 2)), h, w, draw(st.integers(1, 3))), bits))
    return x, kernel, strides, pads, dilations, out_hw, bits


@settings(max_examples=50, deadline=None)
@given(pool_cases())
def test_max_pool_matches_reference(case):
    x, kernel, strides, pads, dilations, out_hw, _ = case
    out = max_pool(x, *kernel, *strides, *pads[:2], *dilations, *out_hw)
    assert np.array_equal(out, max_pool_ref(x, kernel, strides, pads, dilations, out_hw))


@settings(max_examples=50, deadline=None)
@given(pool_cases(), st.booleans(), st.data())
def test_window_sum_matches_reference(case, count_include_pad, data):
    x, kernel, strides, pads, dilations, out_hw, bits = case
    x_zp = data.draw(st.integers(*int_range(bits)))
    sums, counts = window_sum(
        x, np.int64(x_zp), *kernel, *strides, np.array(pads), *dilations, *out_hw, count_include_pad
    )
    ref_sums, ref_counts = window_sum_ref(
        x, x_zp, kernel, strides, pads, dilations, out_hw, count_include_pad
    )
    assert np.array_equal(sums, ref_sums)
    assert np.array_equal(counts, ref_counts)
