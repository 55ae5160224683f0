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
    multiplier = data.draw(st.sampled_from([2**bits, 2**bits - 1]))  # nnasim's 2**-k, onnxruntime's 1/255
    out = softmax_last_axis(x, table, multiplier, lo, hi)
    assert np.array_equal(out, softmax_ref(x, in_scale, multiplier, lo, hi))
    real = np.exp(in_scale * (x - x.max(axis=1, keepdims=True)))
    real /= real.sum(axis=1, keepdims=True)
    assert np.abs((out - lo) / multiplier - real).max() <= 1.0 / multiplier + 1e-9
