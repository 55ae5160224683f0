"""Table-lookup kernel vs numpy indexing, and the table itself vs a direct float computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.ir import Node, Op
from nnasim.ir.execute import unary_function
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


NEW_TABLES = {  # op -> (the engine's function, an independent scalar definition from math)
    "HardSigmoid": (dict(alpha=0.2, beta=0.5), lambda v: min(max(0.2 * v + 0.5, 0.0), 1.0)),
    "HardSwish": ({}, lambda v: v * min(max(v / 6 + 0.5, 0.0), 1.0)),
    "Sqrt": ({}, lambda v: math.sqrt(v) if v >= 0 else math.nan),
    "Pow": (dict(exponent=2.0), lambda v: v * v),
    "Erf": ({}, math.erf),
}


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("op", sorted(NEW_TABLES))
def test_unary_op_tables_are_the_quantized_function(op, bits):
    """Every input integer maps to round(f(real) / s_out) + z_out, saturated (NaN -> 0 -> z_out)."""
    attrs, scalar = NEW_TABLES[op]
    lo, hi = int_range(bits)
    node = Node("n", Op(op), ("x",), ("y",), attrs)
    s_in, z_in, s_out, z_out = 6.0 / hi, 3, 4.0 / hi, -5
    table = build_table(unary_function(node), s_in, z_in, (lo, hi), s_out, z_out, (lo, hi))
    expected = []
    for q in range(lo, hi + 1):
        y = scalar((q - z_in) * s_in)
        y = 0.0 if math.isnan(y) else y
        expected.append(min(max(round_half_even(y / s_out) + z_out, lo), hi))
    assert np.array_equal(table, np.array(expected))


def round_half_even(v: float) -> int:
    return int(np.rint(v))
