"""The integer engine on each op added for real models, at 8 and 16 bits, against onnxruntime's fp32.

Calibrated on the same inputs, the outputs must reach the SQNR the widths allow; the kernels
themselves are bit-exact against their numpy references in tests/test_kernel_*.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx_builders import input_shape
from oracles import ort_run
from test_float_exec import CASES

from nnasim.engine.session import build_session
from nnasim.frontend import load_lowered

NEW_OP_CASES = [
    "conv_transpose",
    "conv_transpose_output_padding_groups",
    "conv_one_input_channel",
    "split_input",
    "hard_sigmoid",
    "hard_swish",
    "sqrt",
    "pow_2",
    "pow_0_5",
    "erf",
    "reduce_mean_keepdims",
    "reduce_mean_axes_input",
    "layer_norm",
    "layer_norm_two_axes",
    "matmul_activations",
    "tanh",
    "lstm_forward",
    "lstm_bidirectional_initial_state",
]
MIN_DB = {8: 30.0, 16: 75.0}
# An unrolled LSTM requantizes its state ~10 times per step (4 steps here): the error compounds.
RECURRENT_MIN_DB = {8: 20.0, 16: 65.0}


@pytest.mark.parametrize("scheme", ["pow2", "affine"])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("case", NEW_OP_CASES)
def test_new_op_integer_engine_tracks_onnxruntime(case, bits, scheme):
    model = CASES[case]()
    rng = np.random.default_rng(3)
    feeds = [{"x": rng.standard_normal(input_shape(model)).astype(np.float32)} for _ in range(3)]
    if case.startswith(("sqrt", "pow_0")):
        feeds = [{"x": np.abs(feed["x"])} for feed in feeds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = build_session(load_lowered(model), bits, scheme=scheme, calib=feeds)
    expected = ort_run(model, feeds[0])[0]
    got = session.run(feeds[0])["y"]
    sqnr = 10 * np.log10(np.sum(expected**2) / np.sum((got - expected) ** 2))
    assert sqnr > (RECURRENT_MIN_DB if case.startswith("lstm") else MIN_DB)[bits], f"{sqnr:.1f} dB"
    assert max(session.saturations.values()) <= 2  # per layer: the calibrated extremes, rounded past qmax


@pytest.mark.parametrize("bits", [8, 16])
def test_add_with_fused_prelu_keeps_the_negative_side(bits):
    """MTCNN's Add -> PRelu: the output format is calibrated after the slope (about [-0.04, 1]), so
    the sum's negative side (down to -4) must reach the slope stage unclipped (it lost 35 dB)."""
    from onnx import helper
    from onnx_builders import make_model

    nodes = [
        helper.make_node("Add", ["x", "c"], ["s"], name="add"),
        helper.make_node("PRelu", ["s", "slope"], ["y"], name="prelu"),
    ]
    consts = {"c": np.full((1, 4, 1, 1), -1.5, np.float32), "slope": np.full((4, 1, 1), 0.01, np.float32)}
    model = make_model(nodes, (1, 4, 6, 6), consts)
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.uniform(-2.5, 2.5, (1, 4, 6, 6)).astype(np.float32)} for _ in range(2)]
    graph = load_lowered(model)
    assert [n.op.value for n in graph.nodes] == ["Add"] and graph.nodes[0].act is not None
    session = build_session(graph, bits, scheme="affine", calib=feeds)
    expected = ort_run(model, feeds[0])[0]
    got = session.run(feeds[0])["y"]
    sqnr = 10 * np.log10(np.sum(expected**2) / np.sum((got - expected) ** 2))
    assert sqnr > MIN_DB[bits] and sum(session.saturations.values()) <= 1  # the extreme, rounded
