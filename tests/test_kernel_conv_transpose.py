"""Transposed convolution: zero-point-spread input + Conv2d (the engine's route) vs the scatter definition."""

from __future__ import annotations

import numpy as np
import pytest

from nnasim.ir.execute import zero_insert as float_zero_insert
from nnasim.kernels.conv2d import Conv2d, ConvGeometry
from nnasim.kernels.conv_transpose import zero_insert
from tests.reference.conv_transpose_ref import conv_transpose_ref

CASES = [  # strides, pads (t, l, b, r), dilations, group, output_padding, kernel
    ((2, 2), (1, 1, 1, 1), (1, 1), 1, (0, 0), (3, 3)),
    ((2, 3), (0, 1, 1, 0), (1, 2), 2, (1, 2), (2, 3)),
    ((1, 1), (0, 0, 0, 0), (1, 1), 1, (0, 0), (3, 2)),
    ((3, 2), (2, 0, 0, 3), (2, 1), 4, (0, 1), (4, 4)),
]


def equivalent_conv(weight, strides, pads, dilations, group, output_padding, in_hw):
    """The frontend's lowering, restated: flipped, regrouped weight and the conv's pads."""
    cin, cout_g, kh, kw = weight.shape
    cin_g = cin // group
    conv_w = weight.reshape(group, cin_g, cout_g, kh, kw).transpose(0, 2, 1, 3, 4).reshape(-1, cin_g, kh, kw)
    span = [(k - 1) * d for k, d in zip((kh, kw), dilations, strict=True)]
    conv_pads = (
        span[0] - pads[0],
        span[1] - pads[1],
        span[0] - pads[2] + output_padding[0],
        span[1] - pads[3] + output_padding[1],
    )
    out_hw = tuple(
        (i - 1) * s + sp + 1 - pb - pe + op
        for i, s, sp, pb, pe, op in zip(in_hw, strides, span, pads[:2], pads[2:], output_padding, strict=True)
    )
    return np.ascontiguousarray(conv_w[..., ::-1, ::-1]), conv_pads, out_hw


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_transposed_conv_matches_scatter_definition(case, bits):
    strides, pads, dilations, group, output_padding, kernel = CASES[case]
    rng = np.random.default_rng(case + bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    x = rng.integers(lo, hi + 1, (2, 4, 5, 6)).astype(np.int32)
    weight = rng.integers(-127, 128, (4, 3, *kernel)).astype(np.int64)
    x_zp = int(rng.integers(lo, hi + 1))
    conv_w, conv_pads, out_hw = equivalent_conv(
        weight, strides, pads, dilations, group, output_padding, (5, 6)
    )
    crop = tuple(max(-p, 0) for p in conv_pads)
    geometry = ConvGeometry(kernel, (1, 1), tuple(max(p, 0) for p in conv_pads), dilations, group, out_hw)
    bound = max(hi - x_zp, x_zp - lo)
    conv = Conv2d(conv_w.transpose(0, 2, 3, 1), np.zeros(conv_w.shape[0], np.int64), geometry, bound)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    got = conv(zero_insert(nhwc, x_zp, strides, crop), x_zp).transpose(0, 3, 1, 2)
    expected = conv_transpose_ref(x, x_zp, weight, strides, pads, dilations, group, out_hw)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_integer_and_float_spreading_agree():
    x = np.arange(24, dtype=np.int32).reshape(1, 2, 3, 4)
    spread = zero_insert(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), -7, (2, 3), (0, 0, 0, 0))
    as_float = float_zero_insert(x.astype(np.float32), (2, 3), -7.0)
    assert np.array_equal(spread.transpose(0, 3, 1, 2), as_float.astype(np.int32))
