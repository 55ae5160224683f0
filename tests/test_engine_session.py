"""The integer engine on a graph that uses every layer builder: integers equal the numpy references
composed by hand, every tensor tracks fp32 at 16 bits, and the session API behaves as specified."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx_builders import bn_consts, make_model, weight

from nnasim.engine.session import build_session
from nnasim.errors import UsageError
from nnasim.frontend import load_lowered
from nnasim.ir.execute import FloatSession, run_float
from nnasim.kernels.layout import TO_NHWC
from nnasim.quant.calibrate import calibrate
from nnasim.quant.params import quantize_array
from tests.reference.add_ref import add_ref
from tests.reference.conv2d_ref import conv2d_ref
from tests.reference.requant_ref import requantize_ref

OUTPUTS = ("sig", "soft", "leaky", "near", "expo")


def _every_op_model():
    n = helper.make_node
    consts = {
        "w1": weight(4, 3, 3, 3),
        "b1": weight(4, scale=0.1),
        "w2": weight(4, 1, 3, 3),
        "slope": np.array([0.1, -0.2, 0.25, 0.0], np.float32).reshape(4, 1, 1),
        **bn_consts("bn", 4),
        "shift": weight(1, 4, 1, 1),
        "gain": np.array(1.5, np.float32),
        "two": np.array(2.0, np.float32),
        "fc": weight(8, 5),
        "fc_b": weight(5, scale=0.1),
        "tenth": np.array(0.25, np.float32),
    }
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["a"], name="relu1"),
        n("Conv", ["a", "w2"], ["c2"], name="dw", pads=[1, 1, 1, 1], strides=[2, 2], group=4),
        n("PRelu", ["c2", "slope"], ["b"], name="prelu"),
        n("BatchNormalization", ["b", "bn_gamma", "bn_beta", "bn_mean", "bn_var"], ["c"], name="bn"),
        n("MaxPool", ["a"], ["d"], name="maxpool", kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
        n(
            "AveragePool",
            ["d"],
            ["e"],
            name="avgpool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        n("Add", ["c", "e"], ["f"], name="add"),
        n("Sub", ["f", "shift"], ["g"], name="sub"),
        n("Mul", ["g", "gain"], ["h"], name="mul"),
        n("Div", ["h", "two"], ["i"], name="div"),
        n("Concat", ["i", "e"], ["j"], name="concat", axis=1),
        n("Resize", ["j", "", "rs_scales"], ["near"], name="nearest", mode="nearest"),
        n("Resize", ["j", "", "rs_scales2"], ["lin"], name="linear", mode="linear"),
        n("GlobalAveragePool", ["lin"], ["m"], name="gap"),
        n("Flatten", ["m"], ["flat"], name="flatten"),
        n("MatMul", ["flat", "fc"], ["mm"], name="fc"),
        n("Add", ["mm", "fc_b"], ["o"], name="fc_bias"),
        n("Sigmoid", ["o"], ["sig"], name="sigmoid"),
        n("Softmax", ["o"], ["soft"], name="softmax", axis=1),
        n("Mul", ["o", "tenth"], ["small"], name="scale_down"),
        n("Exp", ["small"], ["expo"], name="exp"),
        n("Transpose", ["j"], ["p"], name="transpose", perm=[0, 2, 3, 1]),
        n("Slice", ["p", "starts", "ends", "axes"], ["q"], name="slice"),
        n("LeakyRelu", ["q"], ["leaky"], name="leaky", alpha=0.1),
    ]
    consts |= {
        "rs_scales": np.array([1, 1, 2, 2], np.float32),
        "rs_scales2": np.array([1, 1, 1.5, 1.5], np.float32),
        "starts": np.array([1], np.int64),
        "ends": np.array([3], np.int64),
        "axes": np.array([1], np.int64),
    }
    return make_model(nodes, (1, 3, 8, 8), consts, opset=17, outputs=OUTPUTS)


@pytest.fixture(scope="module")
def graph():
    return load_lowered(_every_op_model())


@pytest.fixture(scope="module")
def feeds():
    rng = np.random.default_rng(7)
    return [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(3)]


def _sqnr_db(reference: np.ndarray, value: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - value) ** 2))
    return 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / max(noise, 1e-30))


CONFIGS = [("pow2", False, None), ("affine", True, None), ("affine", False, "float32")]


@pytest.mark.parametrize(("scheme", "per_channel", "requant"), CONFIGS)
def test_every_tensor_tracks_fp32_at_16_bits_and_beats_8_bits(graph, feeds, scheme, per_channel, requant):
    reference = run_float(graph, feeds[0], keep_all=True)
    quality = {}
    for bits in (8, 16):
        session = build_session(graph, bits, scheme, per_channel, requant, calib=feeds)
        layers = session.run_layers(feeds[0])
        quality[bits] = {name: _sqnr_db(reference[name], layers[name]) for name in layers}
    assert set(quality[16]) == set(reference)
    worst = min(quality[16], key=quality[16].get)
    assert quality[16][worst] > 40, (worst, quality[16][worst])
    for name in OUTPUTS:
        assert quality[16][name] > quality[8][name], name


@pytest.mark.parametrize(
    ("scheme", "requant"), [("pow2", "pow2"), ("affine", "fixedpoint"), ("affine", "float32")]
)
@pytest.mark.parametrize("bits", [8, 16])
def test_conv_and_add_layers_equal_composed_references(graph, feeds, scheme, requant, bits):
    session = build_session(graph, bits, scheme, per_channel=True, requant=requant, calib=feeds)
    ints = session.run_integers(feeds[1], keep_all=True)
    q = session.quant
    conv = next(node for node in session.graph.nodes if node.name == "conv1")
    x, w, b = conv.inputs
    weight_q = quantize_array(session.graph.const(w), q(w), narrow=True)
    sx, sw = np.float32(q(x).scale), q(w).scale.astype(np.float32)
    dtype = np.float32 if requant == "float32" else np.float64
    acc_scale = dtype(sx) * sw.astype(dtype)
    bias = np.rint(session.graph.const(b).astype(np.float64) / acc_scale.astype(np.float64)).astype(np.int64)
    acc = conv2d_ref(
        ints[x], int(q(x).zero_point), weight_q.transpose(TO_NHWC), bias, (1, 1), (1, 1, 1, 1), (1, 1), 1
    )
    out = conv.outputs[0]
    real = acc_scale / dtype(q(out).scale)
    zp = int(q(out).zero_point)
    expected, _ = requantize_ref(
        acc, real, requant, zp, q(out).qmin, q(out).qmax, 32 if bits == 8 else 64, lo=zp
    )
    assert np.array_equal(ints[out], expected)

    add = next(node for node in session.graph.nodes if node.name == "add")
    a, c, f = add.inputs[0], add.inputs[1], add.outputs[0]
    zps = (int(q(a).zero_point), int(q(c).zero_point), int(q(f).zero_point))
    scales = [float(q(name).scale) for name in (a, c, f)]
    expected, _ = add_ref(ints[a], ints[c], *scales, *zps, bits, requant, q(f).qmin, q(f).qmax)
    assert np.array_equal(ints[f], expected)


def test_pow2_scheme_uses_power_of_two_scales_and_no_zero_points(graph, feeds):
    session = build_session(graph, 8, "pow2", per_channel=True, calib=feeds)
    for tensor in session.graph.tensors.values():
        if tensor.quant is None:
            continue
        scales = np.asarray(tensor.quant.scale, np.float64)
        assert np.array_equal(np.exp2(np.round(np.log2(scales))), scales), tensor.name
        assert not np.asarray(tensor.quant.zero_point).any(), tensor.name


def test_generated_calibration_is_announced(graph):
    with pytest.warns(UserWarning, match="generated"):
        session = build_session(graph, 8)
    assert any("generated" in note for note in session.notes)
    assert set(session.saturations) == {node.name for node in session.graph.nodes}


def test_bits_32_is_the_float_executor(graph, feeds):
    session = build_session(graph, 32)
    assert isinstance(session, FloatSession)
    assert np.array_equal(session.run(feeds[0])["sig"], run_float(graph, feeds[0])["sig"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bits": 8, "scheme": "affine", "requant": "pow2"}, "pow2 scheme"),
        ({"bits": 12}, "bit width"),
        ({"bits": 8, "scheme": "log"}, "scheme"),
        ({"bits": 8, "requant": "magic"}, "rule"),
        ({"bits": 8, "calib_method": "median"}, "calibration method"),
    ],
)
def test_bad_options_raise_usage_errors(graph, feeds, kwargs, message):
    with pytest.raises(UsageError, match=message):
        build_session(graph, calib=feeds, **kwargs)


def test_saturations_are_counted_per_layer(graph, feeds):
    session = build_session(graph, 8, "pow2", calib=feeds[:1])
    session.run({"x": feeds[0]["x"] * 50})  # far outside the calibrated range
    assert session.saturations["conv1"] > 0


def test_percentile_clips_an_outlier_and_mse_stays_inside_the_extremes(graph):
    rng = np.random.default_rng(3)
    feeds = [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(60)]
    feeds[0]["x"][0, 0, 0, 0] = 1000.0  # one value in 11520
    extremes = calibrate(graph, feeds, "minmax")
    assert extremes["x"][1] == 1000.0
    lo, hi = calibrate(graph, feeds, "percentile")["x"]
    assert extremes["x"][0] <= lo <= 0 <= hi < 10.0
    for name, (lo, hi) in calibrate(graph, feeds, "mse", bits=8, scheme="affine").items():
        assert extremes[name][0] <= lo <= 0 <= hi <= extremes[name][1], name
