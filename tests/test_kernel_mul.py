"""mul kernel (the product before the output stage) vs int64 numpy, with broadcasting."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.mul import mul
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.mul_ref import mul_ref


@settings(max_examples=40, deadline=None)
@given(st.data(), bits_st)
def test_mul_matches_reference(data, bits):
    a = data.draw(int_arrays((2, 3, 4), bits))
    b = data.draw(int_arrays(data.draw(st.sampled_from([(2, 3, 4), (4,), (1, 3, 1)])), bits))
    lo, hi = int_range(bits)
    za, zb = data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi))
    assert np.array_equal(mul(a, b, za, zb), mul_ref(a, b, za, zb))
