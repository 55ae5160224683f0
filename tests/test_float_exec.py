"""The fp32 executor against onnxruntime: single ops (every supported op) and trained models."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx_builders import RNG, bn_consts, input_shape, make_model, single_op_model, weight
from oracles import ort_run, shared_model

from nnasim.frontend import load_lowered, load_model
from nnasim.ir.execute import run_float

X4 = (1, 4, 9, 11)


def scalar(v: float) -> np.ndarray:
    return np.array(v, np.float32)


CASES = {
    "conv": lambda: single_op_model("Conv", X4, {"w": weight(6, 4, 3, 3), "b": weight(6)}, pads=[1, 1, 1, 1]),
    "conv_stride_dilation": lambda: single_op_model(
        "Conv", X4, {"w": weight(5, 4, 3, 2)}, strides=[2, 1], dilations=[2, 3], pads=[0, 2, 1, 1]
    ),
    "conv_groups": lambda: single_op_model(
        "Conv", X4, {"w": weight(6, 2, 3, 3)}, group=2, auto_pad="SAME_UPPER"
    ),
    "conv_depthwise": lambda: single_op_model(
        "Conv", X4, {"w": weight(4, 1, 3, 3), "b": weight(4)}, group=4, strides=[2, 2], auto_pad="SAME_LOWER"
    ),
    "conv_one_input_channel": lambda: single_op_model(
        "Conv", (1, 1, 9, 11), {"w": weight(6, 1, 3, 3), "b": weight(6)}, pads=[1, 1, 1, 1]
    ),
    "conv_depthwise_multiplier_2": lambda: single_op_model("Conv", X4, {"w": weight(8, 1, 3, 3)}, group=4),
    "conv_valid": lambda: single_op_model("Conv", X4, {"w": weight(3, 4, 2, 2)}, auto_pad="VALID"),
    "batchnorm": lambda: single_op_model("BatchNormalization", X4, bn_consts("bn", 4), epsilon=1e-3),
    "relu": lambda: single_op_model("Relu", X4),
    "prelu": lambda: single_op_model("PRelu", X4, {"s": weight(4, 1, 1)}),
    "leaky_relu": lambda: single_op_model("LeakyRelu", X4, alpha=0.2),
    "clip": lambda: single_op_model("Clip", X4, {"lo": scalar(-0.3), "hi": scalar(0.6)}),
    "clip_opset6_attrs": lambda: single_op_model("Clip", X4, opset=7, min=-0.2, max=0.4),
    "sigmoid": lambda: single_op_model("Sigmoid", X4),
    "exp": lambda: single_op_model("Exp", X4),
    "softmax": lambda: single_op_model("Softmax", X4, axis=1),
    "softmax_opset11_tail": lambda: single_op_model("Softmax", X4, opset=11, axis=2),
    "add": lambda: single_op_model("Add", X4, {"c": weight(1, 4, 1, 1)}),
    "sub": lambda: single_op_model("Sub", X4, {"c": weight(11)}),
    "mul": lambda: single_op_model("Mul", X4, {"c": weight(1, 1, 9, 1)}),
    "div": lambda: single_op_model("Div", X4, {"c": np.full((1, 4, 1, 1), 1.7, np.float32)}),
    "maxpool": lambda: single_op_model("MaxPool", X4, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "maxpool_ceil": lambda: single_op_model("MaxPool", X4, kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
    "avgpool": lambda: single_op_model("AveragePool", X4, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "avgpool_include_pad": lambda: single_op_model(
        "AveragePool", X4, kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1], count_include_pad=1
    ),
    "global_avgpool": lambda: single_op_model("GlobalAveragePool", X4),
    "gemm": lambda: single_op_model("Gemm", (3, 7), {"w": weight(7, 5), "b": weight(5)}, alpha=0.5, beta=2.0),
    "gemm_transb": lambda: single_op_model("Gemm", (3, 7), {"w": weight(5, 7), "b": weight(1, 5)}, transB=1),
    "matmul_const": lambda: single_op_model("MatMul", (3, 7), {"w": weight(7, 4)}),
    "matmul_batched": lambda: single_op_model("MatMul", (2, 3, 7), {"w": weight(2, 7, 4)}),
    "flatten": lambda: single_op_model("Flatten", X4, axis=2),
    "reshape": lambda: single_op_model("Reshape", X4, {"s": np.array([1, -1, 11], np.int64)}),
    "squeeze": lambda: single_op_model("Squeeze", (1, 4, 1, 5), {"a": np.array([2], np.int64)}),
    "unsqueeze": lambda: single_op_model("Unsqueeze", (4, 5), {"a": np.array([0, 3], np.int64)}),
    "transpose": lambda: single_op_model("Transpose", X4, perm=[0, 2, 3, 1]),
    "slice": lambda: single_op_model(
        "Slice",
        X4,
        {
            "s": np.array([1, -7], np.int64),
            "e": np.array([3, 100], np.int64),
            "a": np.array([1, 3], np.int64),
            "t": np.array([1, 2], np.int64),
        },
    ),
    "slice_reverse_channels": lambda: single_op_model(
        "Slice",
        X4,
        {
            "s": np.array([-1], np.int64),
            "e": np.array([-100], np.int64),
            "a": np.array([1], np.int64),
            "t": np.array([-1], np.int64),
        },
    ),
    "slice_opset9": lambda: single_op_model("Slice", X4, opset=9, starts=[0, 2], ends=[2, 8], axes=[1, 2]),
    "concat": lambda: single_op_model("Concat", X4, {"c": weight(1, 2, 9, 11)}, axis=1),
    "resize_nearest": lambda: single_op_model(
        "Resize",
        X4,
        {"roi": np.array([], np.float32), "sc": np.array([1, 1, 2, 2], np.float32)},
        mode="nearest",
    ),
    "resize_linear_half_pixel": lambda: single_op_model(
        "Resize",
        X4,
        {"roi": np.array([], np.float32), "sc": np.array([1, 1, 2, 3], np.float32)},
        mode="linear",
    ),
    "resize_linear_align_corners": lambda: single_op_model(
        "Resize",
        X4,
        {
            "roi": np.array([], np.float32),
            "sc": np.array([], np.float32),
            "sz": np.array([1, 4, 17, 20], np.int64),
        },
        mode="linear",
        coordinate_transformation_mode="align_corners",
    ),
    "upsample_opset9": lambda: single_op_model(
        "Upsample", X4, {"sc": np.array([1, 1, 2, 2], np.float32)}, opset=9, mode="nearest"
    ),
    "conv_transpose": lambda: single_op_model(
        "ConvTranspose", X4, {"w": weight(4, 3, 3, 3), "b": weight(3)}, strides=[2, 2], pads=[1, 1, 1, 1]
    ),
    "conv_transpose_output_padding_groups": lambda: single_op_model(
        "ConvTranspose",
        X4,
        {"w": weight(4, 2, 2, 3)},
        strides=[2, 3],
        pads=[0, 1, 1, 0],
        output_padding=[1, 2],
        dilations=[1, 2],
        group=2,
    ),
    "conv_transpose_output_shape": lambda: single_op_model(
        "ConvTranspose", X4, {"w": weight(4, 2, 4, 4)}, strides=[2, 2], output_shape=[18, 22]
    ),
    "conv_transpose_same_upper": lambda: single_op_model(
        "ConvTranspose", X4, {"w": weight(4, 2, 3, 3)}, strides=[2, 2], auto_pad="SAME_UPPER"
    ),
    "split_attr_opset11": lambda: split_model(opset=11, axis=1, split=[1, 3]),
    "split_input": lambda: split_model(consts={"sp": np.array([5, 4], np.int64)}, axis=2),
    "split_equal_opset18": lambda: split_model(opset=18, axis=1, num_outputs=2),
    "hard_sigmoid": lambda: single_op_model("HardSigmoid", X4, alpha=0.25, beta=0.4),
    "hard_swish": lambda: single_op_model("HardSwish", X4),
    "sqrt": lambda: single_op_model("Sqrt", (2, 5, 7)),
    "pow_2": lambda: single_op_model("Pow", X4, {"e": scalar(2.0)}),
    "pow_0_5": lambda: single_op_model("Pow", (3, 7), {"e": scalar(0.5)}),
    "erf": lambda: single_op_model("Erf", X4),
    "reduce_mean_keepdims": lambda: single_op_model("ReduceMean", X4, opset=13, axes=[-1]),
    "reduce_mean_axes_input": lambda: single_op_model(
        "ReduceMean", X4, {"a": np.array([1, 3], np.int64)}, opset=18, keepdims=0
    ),
    "reduce_mean_all": lambda: single_op_model("ReduceMean", (2, 5, 7), opset=13),
    "layer_norm": lambda: single_op_model(
        "LayerNormalization", (2, 5, 16), {"g": weight(16), "b": weight(16)}, epsilon=1e-3
    ),
    "layer_norm_two_axes": lambda: single_op_model("LayerNormalization", X4, {"g": weight(9, 11)}, axis=2),
    "matmul_activations": lambda: make_model(
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["x", "t"], ["y"]),
        ],
        X4,
    ),
    "identity": lambda: single_op_model("Identity", X4),
    "dropout": lambda: single_op_model("Dropout", X4),
}


def split_model(consts=None, opset=17, **attrs):
    """Split of ``x`` into two outputs, joined again by Concat in the other order (one output ``y``)."""
    axis = attrs.get("axis", 1)
    nodes = [
        helper.make_node("Split", ["x", *(consts or {})], ["a", "b"], name="the_split", **attrs),
        helper.make_node("Concat", ["b", "a"], ["y"], axis=axis),
    ]
    return make_model(nodes, X4, consts, opset)


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_matches_onnxruntime(case):
    model = CASES[case]()
    x = RNG.standard_normal(input_shape(model)).astype(np.float32)
    expected = ort_run(model, {"x": x})[0]
    for graph in (load_model(model), load_lowered(model)):
        got = run_float(graph, {"x": x})["y"]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(expected).max()))


def test_shape_chain_feeding_reshape_is_folded():
    """Exported detectors compute Reshape's target from Shape/Gather/Unsqueeze/Concat: it folds away."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    consts = {"i0": np.array(0, np.int64), "ax": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    graph = load_model(make_model(nodes, X4, consts))
    assert [n.op.value for n in graph.nodes] == ["Reshape"]
    assert graph.shape("y") == (1, 4 * 9 * 11)


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / max(np.ptp(expected), 1e-12))


@pytest.mark.parametrize("name", ["mobilefacenet", "ultraface-rfb-320", "ultraface-slim-320", "landmarks-68"])
def test_trained_models_match_onnxruntime(name):
    path = shared_model(name)
    graph = load_lowered(path)
    x = RNG.standard_normal(graph.shape(graph.inputs[0])).astype(np.float32)
    expected = ort_run(path, {graph.inputs[0]: x})
    got = run_float(graph, {graph.inputs[0]: x})
    for output, ref in zip(graph.outputs, expected, strict=True):
        assert relative_error(got[output], ref) < 1e-4


@pytest.mark.parametrize("name", ["lffd@320x240", "arcface-r50", "tinynet"])
def test_zoo_models_match_onnxruntime(name):
    from nnasim.models import zoo

    path = zoo.resolve(name)
    graph = load_lowered(path)
    x = RNG.standard_normal(graph.shape(graph.inputs[0])).astype(np.float32)
    expected = ort_run(path, {graph.inputs[0]: x})
    got = run_float(graph, {graph.inputs[0]: x})
    for output, ref in zip(graph.outputs, expected, strict=True):
        assert relative_error(got[output], ref) < 1e-4, output
