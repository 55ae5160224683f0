"""Mixed precision in the integer engine: layers of different widths (8, 8pc, 16, 16x8) requantize
between each other bit-exactly. Every layer's integers equal a plain numpy int64 reference
(``tests/reference/layer_ref``) applied to the integers the engine fed it."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx_builders import make_model, weight

from models import tinynet
from nnasim.engine.session import build_session
from nnasim.errors import UsageError
from nnasim.frontend import load_lowered
from nnasim.ir import Op
from nnasim.quant.calibrate import calibrate
from nnasim.quant.widths import WIDTHS, weighted_layers
from tests.reference.layer_ref import layer_ref

RULES = [("pow2", "pow2"), ("affine", "fixedpoint"), ("affine", "float32")]


def _branchy_model():
    """conv -> (conv, conv) branches that re-join in an Add (a tensor read at two widths), a pool,
    a standalone PRelu, global pool and a Gemm."""
    n = helper.make_node
    consts = {
        "w1": weight(6, 3, 3, 3),
        "b1": weight(6, scale=0.1),
        "w2": weight(6, 6, 3, 3),
        "w3": weight(6, 1, 3, 3),
        "slope": np.array([0.1, -0.2, 0.25, 0.0, 0.3, 0.05], np.float32).reshape(6, 1, 1),
        "w4": weight(8, 6, 1, 1),
        "fc": weight(5, 8),
        "fc_b": weight(5, scale=0.1),
    }
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        n("Relu", ["c1"], ["a"], name="relu1"),
        n("Conv", ["a", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        n("Conv", ["a", "w3"], ["c3"], name="dw3", pads=[1, 1, 1, 1], group=6),
        n("Add", ["c2", "c3"], ["s"], name="add"),
        n("PRelu", ["s", "slope"], ["p"], name="prelu"),
        n("MaxPool", ["p"], ["m"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        n("Conv", ["m", "w4"], ["c4"], name="conv4"),
        n("GlobalAveragePool", ["c4"], ["g"], name="gap"),
        n("Flatten", ["g"], ["f"], name="flatten"),
        n("Gemm", ["f", "fc", "fc_b"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, (1, 3, 8, 8), consts, opset=17)


def _feeds(shape, count, seed):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(count)]


def _assert_layers_bit_exact(session, feed, rule):
    ints = session.run_integers(feed, keep_all=True)
    const = {n for n, t in session.graph.tensors.items() if t.is_const}
    for node in session.graph.nodes:
        inputs = [ints[n] for n in node.inputs if n and n not in const]
        expected = layer_ref(session.graph, node, inputs, rule)
        assert np.array_equal(ints[node.outputs[0]], expected), node.name


def _random_assignments(names, count, seed):
    rng = np.random.default_rng(seed)
    choices = sorted(WIDTHS)
    return [{name: str(rng.choice(choices)) for name in names} for _ in range(count)]


@pytest.fixture(scope="module")
def branchy():
    return load_lowered(_branchy_model())


@pytest.mark.parametrize(("scheme", "rule"), RULES)
def test_mixed_small_graph_is_bit_exact_layer_by_layer(branchy, scheme, rule):
    feeds = _feeds((1, 3, 8, 8), 3, 5)
    ranges = calibrate(branchy, feeds)
    for layer_bits in _random_assignments(weighted_layers(branchy), 4, seed=len(rule)):
        session = build_session(branchy, 8, scheme, requant=rule, ranges=ranges, layer_bits=layer_bits)
        _assert_layers_bit_exact(session, feeds[0], rule)


def test_a_tensor_read_at_two_widths_gets_one_requantize_node_and_a_fused_one_gets_none(branchy):
    ranges = calibrate(branchy, _feeds((1, 3, 8, 8), 2, 1))
    layer_bits = {"conv1": "8", "conv2": "16", "dw3": "8pc", "conv4": "16x8", "fc": "8"}
    session = build_session(branchy, 8, "affine", ranges=ranges, layer_bits=layer_bits)
    fmt = session.graph.tensors
    requantizers = [node for node in session.graph.nodes if node.op == Op.IDENTITY]
    # conv1's output is read by conv2 (16-bit) and dw3 (8-bit): stored at conv1's 8 bits, one requantizer
    assert [(r.inputs[0], fmt[r.outputs[0]].quant.bits) for r in requantizers] == [
        (requantizers[0].inputs[0], 16)
    ]
    conv2 = next(node for node in session.graph.nodes if node.name == "conv2")
    assert fmt[conv2.inputs[0]].quant.bits == 16 and fmt[conv2.inputs[1]].quant.bits == 16
    conv4 = next(node for node in session.graph.nodes if node.name == "conv4")
    # 16x8: 16-bit input (prelu writes it at 16 bits through the pool), 8-bit per-channel weights
    assert fmt[conv4.inputs[0]].quant.bits == 16
    assert fmt[conv4.inputs[1]].quant.bits == 8 and fmt[conv4.inputs[1]].quant.axis == 0
    # gap (at conv4's width) writes its output at the 8 bits fc reads, through the flatten
    assert fmt["g"].quant.bits == 8 and fmt["f"].quant.bits == 8
    _assert_layers_bit_exact(session, _feeds((1, 3, 8, 8), 1, 9)[0], "fixedpoint")


@pytest.mark.parametrize(("scheme", "rule"), RULES[:2])
def test_mixed_tinynet_is_bit_exact_layer_by_layer(scheme, rule):
    graph = load_lowered(tinynet.build())
    feeds = [{"input": x[None]} for x in tinynet.calibration_input()[:3]]
    ranges = calibrate(graph, feeds)
    for layer_bits in _random_assignments(weighted_layers(graph), 2, seed=3):
        session = build_session(graph, 8, scheme, requant=rule, ranges=ranges, layer_bits=layer_bits)
        _assert_layers_bit_exact(session, feeds[1], rule)


def test_uniform_layer_bits_equal_the_plain_run(branchy):
    feeds = _feeds((1, 3, 8, 8), 2, 4)
    ranges = calibrate(branchy, feeds)
    plain = build_session(branchy, 16, "affine", per_channel=True, ranges=ranges)
    named = build_session(
        branchy, 8, "affine", ranges=ranges, layer_bits=dict.fromkeys(weighted_layers(branchy), "16pc")
    )
    assert np.array_equal(plain.run_integers(feeds[0])["y"], named.run_integers(feeds[0])["y"])


def test_unknown_width_and_unknown_layer_are_usage_errors(branchy):
    ranges = calibrate(branchy, _feeds((1, 3, 8, 8), 1, 4))
    with pytest.raises(UsageError, match="unknown layer width '12'"):
        build_session(branchy, 8, ranges=ranges, layer_bits={"conv1": "12"})
    with pytest.raises(UsageError, match="nodes the graph does not have: nope"):
        build_session(branchy, 8, ranges=ranges, layer_bits={"nope": "8"})


def test_a_huge_bias_behind_a_64_bit_accumulator_saturates_instead_of_wrapping():
    from nnasim.engine.layers import saturate_to_int

    values = np.array([1e30, -1e30, 2.0**63, -(2.0**63), 12345.0, -7.0])
    expected = [2**63 - 1, -(2**63), 2**63 - 1, -(2**63), 12345, -7]
    assert saturate_to_int(values, 64).tolist() == expected
    assert saturate_to_int(values, 32).tolist() == [2**31 - 1, -(2**31), 2**31 - 1, -(2**31), 12345, -7]


def test_mixed_mobilefacenet_is_bit_exact_layer_by_layer(shared_dir):
    """A trained network with residual Adds: every layer of a random mixed assignment (so with
    fused and explicit requantizations) equals the reference, on one aligned face."""
    from oracles import shared_model

    from nnasim.analysis.compare import input_feeds
    from nnasim.io.data import load_images, preprocessing_for

    path = shared_model("mobilefacenet")
    graph = load_lowered(str(path))
    feeds = input_feeds(
        graph, load_images(shared_dir / "images" / "aligned", limit=2), preprocessing_for(path)
    )
    ranges = calibrate(graph, feeds)
    layer_bits = _random_assignments(weighted_layers(graph), 1, seed=15)[0]
    session = build_session(graph, 8, "affine", ranges=ranges, layer_bits=layer_bits)
    assert any(node.op == Op.IDENTITY for node in session.graph.nodes)  # readers disagreed somewhere
    _assert_layers_bit_exact(session, feeds[1], "fixedpoint")
