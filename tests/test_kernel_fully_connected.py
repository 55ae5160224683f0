"""fully connected kernel vs int64 numpy, including reductions long enough to need chunking."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.fully_connected import FullyConnected
from nnasim.kernels.gemm import FLOAT32_EXACT, ExactMatmul
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.fully_connected_ref import fully_connected_ref


@settings(max_examples=60, deadline=None)
@given(st.data(), bits_st, st.integers(1, 5), st.integers(1, 40), st.integers(1, 6), st.booleans())
def test_fully_connected_matches_reference(data, bits, m, k, n, with_bias):
    x = data.draw(int_arrays((m, k), bits))
    weight = data.draw(int_arrays((k, n), bits))
    lo, hi = int_range(bits)
    x_zp = data.draw(st.integers(lo, hi))
    bias = data.draw(int_arrays((n,), 30)) if with_bias else None
    fc = FullyConnected(weight, bias, input_bound=max(hi - x_zp, x_zp - lo))
    assert np.array_equal(fc(x, x_zp), fully_connected_ref(x, x_zp, weight, bias))


def test_long_reduction_at_extremes_is_split_and_exact():
    """K = 3000 with |x - zp| = 255 and |w| = 128 sums to ~98e6 > 2**24: float32 alone would round."""
    rng = np.random.default_rng(0)
    k = 3000
    x = np.where(rng.random((3, k)) < 0.5, -128, 127).astype(np.int32)
    weight = np.full((k, 2), -128, np.int32)
    weight[::3, 1] = 127
    fc = FullyConnected(weight, None, input_bound=255, integer_products=False)
    assert len(fc.matmul.chunks) > 1 or fc.matmul.dtype == np.float64
    x_zp = 127
    assert np.array_equal(fc(x, x_zp), fully_connected_ref(x, x_zp, weight, None))
    assert np.abs(fully_connected_ref(x, x_zp, weight, None)).max() > FLOAT32_EXACT


def test_exact_matmul_prefers_float32_when_the_bound_allows():
    weight = np.ones((64, 4), np.int64)
    assert ExactMatmul(weight, 255).dtype == np.float32
    assert ExactMatmul(weight, 2**40).dtype == np.float64
