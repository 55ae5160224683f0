"""Integer ReduceMean sums vs Python sums over every reduced index."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.reduce import reduce_sum
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.reduce_ref import reduce_sum_ref


@settings(max_examples=40, deadline=None)
@given(st.data(), bits_st)
def test_reduce_sum_matches_reference(data, bits):
    x = data.draw(int_arrays((2, 3, 4, 5), bits))
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, 3), min_size=1))))
    keepdims = data.draw(st.booleans())
    zp = data.draw(st.integers(*int_range(bits)))
    assert np.array_equal(reduce_sum(x, zp, axes, keepdims), reduce_sum_ref(x, zp, axes, keepdims))
