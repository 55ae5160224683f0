"""Table-lookup kernel vs numpy indexing, and the table itself vs a direct float computation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.lut import build_table, lookup
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.lut_ref import lookup_ref


@settings(max_examples=30, deadline=None)
@given(st.data(), bits_st)
def test_lookup_matches_reference(data, bits):
    lo, hi = int_range(bits)
    x = data.draw(int_arrays((2, 3, 5), bits))
    table = build_table(lambda v: 1 / (1 + np.exp(-v)), 0.05, 3, (lo, hi), 2.0 ** -(bits - 1), 0, (lo, hi))
    assert np.array_equal(lookup(x, table, lo), lookup_ref(x, table, lo))


def test_sigmoid_table_is_quantized_sigmoid():
    lo, hi = int_range(8)
    table = build_table(lambda v: 1 / (1 + np.exp(-v)), 0.1, -5, (lo, hi), 1 / 256, -128, (lo, hi))
    q = np.arange(lo, hi + 1)
    expected = np.clip(np.rint((1 / (1 + np.exp(-0.1 * (q + 5)))) * 256) - 128, lo, hi)
    assert np.array_equal(table, expected)
