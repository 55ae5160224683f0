"""nearest and bilinear resize kernels vs numpy gathers; the 8-bit bilinear layer end to end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper
from onnx_builders import make_model

from nnasim.engine.session import build_session
from nnasim.frontend import load_lowered
from nnasim.ir.execute import linear_taps, nearest_indices, run_float, source_coordinates
from nnasim.kernels import layout
from nnasim.kernels.resize import fixed_weights, resize_bilinear, resize_nearest, weight_bits
from nnasim.quant.params import quantize_array
from tests.kernel_strategies import bits_st, int_arrays, int_range
from tests.reference.requant_ref import requantize_ref
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
    x_zp = data.draw(st.integers(*int_range(bits)))
    lo, hi = int_range(bits)
    frac = weight_bits(max(hi - x_zp, x_zp - lo), 32 if bits == 8 else 64)
    wy, wx = fixed_weights(fy, frac), fixed_weights(fx, frac)
    out = resize_bilinear(x, np.int64(x_zp), y0, y1, wy, x0, x1, wx, frac)
    expected = resize_bilinear_ref(x, x_zp, y0, y1, wy, x0, x1, wx, frac)
    assert np.array_equal(out, expected)
    assert np.abs(expected).max(initial=0) < 2 ** (31 if bits == 8 else 63)  # fits the accumulator


@pytest.mark.parametrize(
    "bound, acc_bits, expected", [(255, 32, 11), (128, 32, 11), (65535, 64, 15), (1, 32, 15)]
)
def test_weight_bits_is_the_largest_that_fits(bound, acc_bits, expected):
    frac = weight_bits(bound, acc_bits)
    assert frac == expected
    assert bound << (2 * frac) < 2 ** (acc_bits - 1)
    assert frac == 15 or bound << (2 * frac + 2) >= 2 ** (acc_bits - 1)


def bilinear_model(scales=(1, 1, 2, 2), mode="half_pixel"):
    node = helper.make_node(
        "Resize", ["x", "roi", "sc"], ["y"], mode="linear", coordinate_transformation_mode=mode, name="up"
    )
    consts = {"roi": np.array([], np.float32), "sc": np.array(scales, np.float32)}
    return make_model([node], (1, 3, 6, 7), consts)


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - got) ** 2)))


@pytest.mark.parametrize("scheme", ["pow2", "affine"])
def test_8bit_bilinear_layer_is_exact_and_close_to_fp32(scheme):
    """The 8-bit engine's int32 accumulator holds the sum (it used to clip: about 0 dB SQNR)."""
    rng = np.random.default_rng(7)
    graph = load_lowered(bilinear_model())
    calib = [{"x": rng.uniform(-1, 3, (1, 3, 6, 7)).astype(np.float32)} for _ in range(2)]
    session = build_session(graph, 8, scheme=scheme, calib=calib)
    x = calib[0]["x"]
    got = session.run_integers({"x": x})["y"]
    fin, fout = session.quant("x"), session.quant("y")
    q = layout.from_onnx_layout(quantize_array(x, fin))
    zp = int(fin.zero_point)
    frac = weight_bits(max(fin.qmax - zp, zp - fin.qmin), 32)
    node = graph.nodes[0]
    coords = [source_coordinates(n, size, "half_pixel") for n, size in ((12, 6), (14, 7))]
    (y0, y1, fy), (x0, x1, fx) = (linear_taps(c, size) for c, size in zip(coords, (6, 7), strict=True))
    acc = resize_bilinear_ref(q, zp, y0, y1, fixed_weights(fy, frac), x0, x1, fixed_weights(fx, frac), frac)
    real = float(fin.scale) * 2.0 ** (-2 * frac) / float(fout.scale)
    rule = session.rule
    expected, saturations = requantize_ref(acc, real, rule, int(fout.zero_point), fout.qmin, fout.qmax, 32)
    assert node.op.value == "Resize" and saturations == 0
    assert np.array_equal(got, expected)
    assert sqnr_db(run_float(graph, {"x": x})["y"], session.run({"x": x})["y"]) > 38
