"""transpose/reshape/slice on NHWC engine tensors behave as ONNX ops on the NCHW tensor."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.layout import TO_NHWC, reshape, slice_, transpose
from tests.kernel_strategies import int_arrays
from tests.reference.layout_ref import reshape_ref, slice_ref, transpose_ref


@settings(max_examples=20, deadline=None)
@given(int_arrays((2, 3, 4, 5), 8), st.permutations(range(4)))
def test_layout_ops_follow_onnx_semantics(nchw, perm):
    nhwc = nchw.transpose(TO_NHWC)
    assert np.array_equal(transpose(nhwc, perm), transpose_ref(nchw, perm))
    assert np.array_equal(reshape(nhwc, (2, 60)), reshape_ref(nchw, (2, 60)))
    assert np.array_equal(reshape(nhwc, (2, 12, 5, 1)), reshape_ref(nchw, (2, 12, 5, 1)))
    slices = [(0, 2, 1), (1, 3, 1), (0, 4, 2), (4, 0, -1)]
    assert np.array_equal(slice_(nhwc, slices), slice_ref(nchw, slices))
