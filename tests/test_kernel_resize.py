"""nearest and bilinear resize kernels vs numpy gathers."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnasim.ir.execute import linear_taps, nearest_indices, source_coordinates
from nnasim.kernels.resize import fixed_weights, resize_bilinear, resize_nearest
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.resize_ref import resize_bilinear_ref, resize_nearest_ref

MODES = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]


@settings(max_examples=40, deadline=None)
@given(st.data(), bits_st, st.sampled_from(MODES))
def test_resize_matches_reference(data, bits, mode):
    h, w = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    oh, ow = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    x = data.draw(int_arrays((1, h, w, 2), bits))
    rows = nearest_indices(source_coordinates(oh, h, mode), h, "round_prefer_floor")
    cols = nearest_indices(source_coordinates(ow, w, mode), w, "floor")
    assert np.array_equal(resize_nearest(x, rows, cols), resize_nearest_ref(x, rows, cols))
    y0, y1, fy = linear_taps(source_coordinates(oh, h, mode), h)
    x0, x1, fx = linear_taps(source_coordinates(ow, w, mode), w)
    wy, wx = fixed_weights(fy), fixed_weights(fx)
    x_zp = data.draw(st.integers(*int_range(bits)))
    out = resize_bilinear(x, np.int64(x_zp), y0, y1, wy, x0, x1, wx)
    assert np.array_equal(out, resize_bilinear_ref(x, x_zp, y0, y1, wy, x0, x1, wx))
