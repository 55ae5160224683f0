"""transpose/reshape/slice on NHWC engine tensors behave as ONNX ops on the NCHW tensor."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.layout import TO_NHWC, reshape, slice_, transpose
from tests.kernel_strategies import int_arrays


@settings(max_examples=20, deadline=None)
@given(int_arrays((2, 3, 4, 5), 8), st.permutations(range(4)))
def test_layout_ops_follow_onnx_semantics(nchw, perm):
    nhwc = nchw.transpose(TO_NHWC)
    assert np.array_equal(transpose(nhwc, perm), nchw.transpose(perm).transpose(TO_NHWC))
    assert np.array_equal(reshape(nhwc, (2, 60)), nchw.reshape(2, 60))
    assert np.array_equal(reshape(nhwc, (2, 12, 5, 1)), nchw.reshape(2, 12, 5, 1).transpose(TO_NHWC))
    slices = [(0, 2, 1), (1, 3, 1), (0, 4, 2), (4, 0, -1)]
    expected = nchw[0:2, 1:3, 0:4:2, 4:0:-1].transpose(TO_NHWC)
    assert np.array_equal(slice_(nhwc, slices), expected)
