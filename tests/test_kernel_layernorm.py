"""Fixed-point layer normalisation vs a Python-integer reference (math.isqrt), and its accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.kernels.layernorm import isqrt, layer_norm, layer_norm_params
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.layernorm_ref import layer_norm_ref


@settings(max_examples=40, deadline=None)
@given(st.data(), bits_st)
def test_layer_norm_matches_reference(data, bits):
    lo, hi = int_range(bits)
    n = data.draw(st.integers(1, 40))
    q = data.draw(int_arrays((data.draw(st.integers(1, 4)), n), bits))
    zp = data.draw(st.integers(lo, hi))
    rng = np.random.default_rng(n)
    params = layer_norm_params(
        rng.uniform(-2, 2, n),
        rng.uniform(-1, 1, n),
        data.draw(st.sampled_from([1e-5, 1e-2])),
        data.draw(st.floats(1e-4, 0.5)),
        data.draw(st.floats(1e-3, 0.5)),
        max(hi - zp, zp - lo),
    )
    zo = data.draw(st.integers(lo, hi))
    got, saturations = layer_norm(q, zp, params, zo, lo, hi)
    fields = (params.centre_bits, params.gain_bits, params.eps, params.gain, params.offset)
    expected, expected_saturations = layer_norm_ref(q, zp, *fields, zo, lo, hi)
    assert np.array_equal(got, np.array(expected))
    assert saturations == expected_saturations


@pytest.mark.parametrize("n", [0, 1, 2, 3, 15, 16, 17, 2**31 - 1, 2**40 + 12345, 2**62 - 1])
def test_isqrt_is_floor_sqrt(n):
    assert isqrt(np.int64(n)) == math.isqrt(n)


@pytest.mark.parametrize("bits, min_db", [(8, 35), (16, 75)])
def test_layer_norm_is_close_to_float(bits, min_db):
    """With inputs in range, the only loss is the output's rounding: SQNR near the format's."""
    lo, hi = int_range(bits)
    rng = np.random.default_rng(bits)
    s_in, n = 4.0 / hi, 64
    x = rng.standard_normal((8, n)) * rng.uniform(0.2, 1.0, (8, 1)) + rng.uniform(-1, 1, (8, 1))
    q = np.clip(np.rint(x / s_in), lo, hi).astype(np.int32)
    real = q * s_in
    scale, bias = rng.uniform(0.5, 1.5, n), rng.uniform(-0.2, 0.2, n)
    mean = real.mean(axis=1, keepdims=True)
    expected = (real - mean) / np.sqrt(real.var(axis=1, keepdims=True) + 1e-5) * scale + bias
    s_out = np.abs(expected).max() / hi
    params = layer_norm_params(scale, bias, 1e-5, s_in, s_out, hi + 1)
    got, saturations = layer_norm(q, 0, params, 0, lo, hi)
    sqnr = 10 * np.log10(np.sum(expected**2) / np.sum((got * s_out - expected) ** 2))
    assert saturations == 0 and sqnr > min_db
