"""Integer softmax vs the Python-int reference, and close to the float softmax."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.softmax import exp_table, softmax_last_axis
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.softmax_ref import softmax_ref


@settings(max_examples=40, deadline=None)
@given(st.data(), bits_st, st.floats(1e-4, 0.5))
def test_softmax_matches_reference(data, bits, in_scale):
    lo, hi = int_range(bits)
    x = data.draw(int_arrays((data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))), bits))
    table = exp_table(in_scale, hi - lo + 1)
    out = softmax_last_axis(x, table, bits, lo, hi)
    assert np.array_equal(out, softmax_ref(x, in_scale, bits, lo, hi))
    real = np.exp(in_scale * (x - x.max(axis=1, keepdims=True)))
    real /= real.sum(axis=1, keepdims=True)
    assert np.abs((out - lo) / 2.0**bits - real).max() <= 2.0**-bits + 1e-9
