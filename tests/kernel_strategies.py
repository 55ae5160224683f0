"""Hypothesis strategies shared by the kernel tests: integer arrays that hit the type's extremes."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def int_arrays(shape, bits: int, signed: bool = True):
    """int32 arrays of ``shape`` with values of a ``bits``-bit integer, extremes favoured."""
    lo, hi = int_range(bits, signed)
    values = st.one_of(st.sampled_from([lo, lo + 1, -1 if signed else 1, 0, hi - 1, hi]), st.integers(lo, hi))
    return hnp.arrays(np.int32, shape, elements=values)


bits_st = st.sampled_from([8, 16])
