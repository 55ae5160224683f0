"""concat kernel: each input rescaled by the output stage, vs the reference output stage per input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.concat import concat
from nnasim.kernels.requant import make_output_stage
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.concat_ref import concat_ref


@settings(max_examples=40, deadline=None)
@given(st.data(), bits_st, st.sampled_from(["float32", "fixedpoint", "pow2"]), st.integers(0, 2))
def test_concat_matches_reference(data, bits, rule, axis):
    lo, hi = int_range(bits)
    acc_bits = 32 if bits == 8 else 48
    inputs, zps, stages, reals = [], [], [], []
    for _ in range(data.draw(st.integers(1, 3))):
        shape = [2, 3, 4]
        shape[axis] = data.draw(st.integers(1, 3))
        x = data.draw(int_arrays(tuple(shape), bits))
        zp = 0 if rule == "pow2" else data.draw(st.integers(lo // 2, hi // 2))
        real = 2.0 ** data.draw(st.integers(-4, 1)) if rule == "pow2" else data.draw(st.floats(0.05, 1.5))
        inputs.append(x)
        zps.append(zp)
        reals.append(real)
    zo = 0 if rule == "pow2" else 3
    stages = [make_output_stage(np.array([real]), rule, zo, lo, hi, acc_bits) for real in reals]
    out, _ = concat(inputs, zps, stages, axis)
    assert np.array_equal(out, concat_ref(inputs, zps, reals, rule, zo, lo, hi, acc_bits, axis))
