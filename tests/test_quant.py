"""Quantization formats: affine and pow2 activation formats cover their range minimally, weight
formats per tensor and per channel, and quantize/dequantize equal onnx.reference's
QuantizeLinear/DequantizeLinear (the ONNX definition) bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from nnasim.quant.params import MIN_SCALE, activation_params, dequantize_array, quantize_array, weight_params

FINITE = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(FINITE, FINITE, st.sampled_from([8, 16]), st.sampled_from(["affine", "pow2"]))
def test_activation_format_covers_the_range_and_holds_zero(a, b, bits, scheme):
    lo, hi = min(a, b), max(a, b)
    fmt = activation_params(lo, hi, bits, scheme)
    scale, zp = float(fmt.scale), int(fmt.zero_point)
    assert fmt.qmin <= zp <= fmt.qmax  # real 0 is exactly the integer zp
    covered_lo, covered_hi = (fmt.qmin - zp) * scale, (fmt.qmax - zp) * scale
    slack = scale / 2 + (hi - lo) * 2**-23  # the zero point's rounding, plus the float32 scale's own
    assert covered_lo <= min(lo, 0) + slack and covered_hi >= max(hi, 0) - slack
    if scheme == "pow2":
        assert zp == 0 and np.log2(scale) == int(np.log2(scale))
        magnitude = max(-lo, hi)
        if magnitude > 0 and scale > MIN_SCALE:  # the finest power of two that holds the range
            assert magnitude <= fmt.qmax * scale and magnitude > fmt.qmax * scale / 2


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.float32, (4, 3, 2, 2), elements=st.floats(-8, 8, width=32)),
    st.sampled_from([8, 16]),
    st.sampled_from(["affine", "pow2"]),
    st.sampled_from([None, 0]),
)
def test_weight_formats_per_tensor_and_per_channel(weight, bits, scheme, axis):
    fmt = weight_params(weight, bits, scheme, axis)
    q = quantize_array(weight, fmt, narrow=True)
    assert np.abs(q).max() <= fmt.qmax  # symmetric narrow range
    assert not np.asarray(fmt.zero_point).any()
    scales = np.broadcast_to(
        np.asarray(fmt.scale, np.float64).reshape(-1, 1, 1, 1) if axis == 0 else fmt.scale, weight.shape
    )
    assert np.all(np.abs(weight) <= fmt.qmax * scales * (1 + 1e-6))
    error = np.abs(dequantize_array(q, fmt) - weight)
    assert np.all(error <= scales / 2 * (1 + 1e-5) + 1e-30)


def _onnx_reference(op: str, inputs: dict[str, np.ndarray], axis: int) -> np.ndarray:
    types = {
        np.dtype(np.float32): TensorProto.FLOAT,
        np.dtype(np.int8): TensorProto.INT8,
        np.dtype(np.int16): TensorProto.INT16,
        np.dtype(np.uint8): TensorProto.UINT8,
    }
    node = helper.make_node(op, list(inputs), ["y"], axis=axis)
    graph = helper.make_graph(
        [node],
        "q",
        [helper.make_tensor_value_info("x", types[inputs["x"].dtype], inputs["x"].shape)],
        [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(v, k) for k, v in inputs.items() if k != "x"],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return ReferenceEvaluator(model).run(None, {"x": inputs["x"]})[0]


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_and_dequantize_equal_onnx_reference(dtype, per_channel):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((2, 3, 4, 5)) * 4).astype(np.float32)
    x[0, 0, 0, :3] = [0.5, 1.5, -2.5]  # ties of x / scale at scale 1
    info = np.iinfo(dtype)
    shape = (3,) if per_channel else ()
    scale = rng.uniform(0.01, 0.1, shape).astype(np.float32) if per_channel else np.float32(1.0)
    zero_point = rng.integers(info.min // 2, info.max // 2 + 1, shape).astype(dtype)
    fmt = activation_params(-1, 1, 8 * np.dtype(dtype).itemsize, "affine")
    fmt = replace(
        fmt,
        scale=np.asarray(scale),
        zero_point=np.asarray(zero_point, np.int32),
        axis=1 if per_channel else None,
        signed=np.dtype(dtype).kind == "i",
    )
    q = quantize_array(x, fmt)
    expected_q = _onnx_reference(
        "QuantizeLinear", {"x": x, "s": np.asarray(scale), "z": np.asarray(zero_point)}, 1
    )
    assert np.array_equal(q, expected_q.astype(np.int32))
    expected_x = _onnx_reference(
        "DequantizeLinear", {"x": expected_q, "s": np.asarray(scale), "z": np.asarray(zero_point)}, 1
    )
    assert np.array_equal(dequantize_array(q, fmt), expected_x)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("scheme", ["pow2", "affine"])
def test_a_dead_channel_keeps_its_bias_under_per_channel_weights(bits, scheme):
    """A 1x1 conv whose second output channel has near-zero weights (a BN-folded dead channel,
    PP-OCR's rec models) and a bias: per channel, its multiplier s_in * s_w / s_out would round
    to 0 (or its bias overflow the accumulator) and the channel read 0 instead of its bias."""
    from nnasim.engine.session import build_session
    from nnasim.ir import Graph, Node, Op, Tensor

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
    weight[1] *= 1e-9
    bias = np.array([0.1, -0.7], np.float32)
    tensors = {
        "x": Tensor("x", (1, 4, 3, 3)),
        "w": Tensor("w", weight.shape, data=weight),
        "b": Tensor("b", (2,), data=bias),
        "y": Tensor("y", (1, 2, 3, 3)),
    }
    attrs = {"kernel_shape": (1, 1), "strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "group": 1}
    graph = Graph("dead", (Node("conv", Op.CONV, ("x", "w", "b"), ("y",), attrs),), tensors, ("x",), ("y",))
    feeds = [{"x": rng.standard_normal((1, 4, 3, 3)).astype(np.float32)} for _ in range(4)]
    session = build_session(graph, bits, scheme=scheme, per_channel=True, calib=feeds)
    got = session.run(feeds[0])["y"][0, 1]
    step = float(np.max(session.quant("y").scale))
    assert np.abs(got - bias[1]).max() <= step


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("scheme", ["pow2", "affine"])
def test_a_constant_concat_operand_is_stored_in_the_output_format(bits, scheme):
    """A channel pad written as Concat with zeros (TFLite's PAD of BlazeFace's back model): the zeros
    take the output's format, so the concat copies them without a requantization multiplier (their
    own affine format has scale 1 and needed 1 / s_out, beyond TFLite's fixed-point rules)."""
    from nnasim.engine.session import build_session
    from nnasim.ir import Graph, Node, Op, Tensor

    rng = np.random.default_rng(1)
    zeros = np.zeros((1, 2, 3, 3), np.float32)
    tensors = {
        "x": Tensor("x", (1, 2, 3, 3)),
        "z": Tensor("z", zeros.shape, data=zeros),
        "y": Tensor("y", (1, 4, 3, 3)),
    }
    graph = Graph("pad", (Node("cat", Op.CONCAT, ("x", "z"), ("y",), {"axis": 1}),), tensors, ("x",), ("y",))
    feeds = [{"x": (rng.standard_normal((1, 2, 3, 3)) * 1e-3).astype(np.float32)} for _ in range(3)]
    session = build_session(graph, bits, scheme=scheme, requant="fixedpoint", calib=feeds)
    assert session.quant("z") == session.quant("y")
    fmt = session.quant("y")
    expected = np.concatenate([dequantize_array(quantize_array(feeds[0]["x"], fmt), fmt), zeros], axis=1)
    assert np.array_equal(session.run(feeds[0])["y"], expected)
