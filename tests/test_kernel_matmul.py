"""MatMul of two integer tensors (exact float BLAS or int64) vs an int64 numpy product."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.matmul import matmul_activations
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.matmul_ref import matmul_activations_ref


@settings(max_examples=40, deadline=None)
@given(st.data(), bits_st)
def test_matmul_activations_matches_reference(data, bits):
    lo, hi = int_range(bits)
    batch = data.draw(st.sampled_from([(), (2,), (2, 3)]))
    m, k, n = (data.draw(st.integers(1, 9)) for _ in range(3))
    a = data.draw(int_arrays((*batch, m, k), bits))
    b = data.draw(int_arrays((*batch[-1:], k, n), bits))
    za, zb = data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi))
    bound_a, bound_b = max(hi - za, za - lo), max(hi - zb, zb - lo)
    got = matmul_activations(a, b, za, zb, bound_a, bound_b)
    expected = matmul_activations_ref(a, b, za, zb)
    assert np.array_equal(got.astype(np.int64), expected)
    assert np.all(got == expected)  # the float result holds the exact integers


def test_16bit_long_reduction_is_exact():
    """K * 65535**2 above 2**53: the int64 path, still exact at the extremes."""
    lo, hi = int_range(16)
    k = 2**22
    a = np.full((1, k), hi, np.int32)
    b = np.full((k, 1), lo, np.int32)
    got = matmul_activations(a, b, lo, hi, hi - lo, hi - lo)
    assert got.dtype == np.int64 and int(got[0, 0]) == k * (hi - lo) * (lo - hi)
