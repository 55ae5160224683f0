"""Per-operator oracle: random per-channel int8 QLinearConv / QLinearMatMul nodes in onnxruntime vs
nnasim's kernels with the ``float32`` rule, compared with ``np.array_equal``.

With uint8 activations the weights are drawn from 7 bits ([-64, 63], onnxruntime's ``reduce_range``):
on x86 without VNNI onnxruntime's u8s8 kernel (vpmaddubsw) saturates pairs of products at int16,
so full-range u8s8 is not exact arithmetic and not an oracle (onnxruntime documents this).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnasim.engine import qlinear

ort = pytest.importorskip("onnxruntime")

ONNX_TYPE = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8}


def _session(node, inputs: dict[str, np.ndarray], initializers: dict[str, np.ndarray], out_type):
    graph = helper.make_graph(
        [node],
        "oracle",
        [helper.make_tensor_value_info(k, ONNX_TYPE[v.dtype.type], v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], out_type, None)],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _weights(rng: np.random.Generator, shape, x_type) -> np.ndarray:
    """int8 weights; 7-bit ones with uint8 activations (see the module docstring)."""
    bound = 64 if x_type == np.uint8 else 128
    return rng.integers(-bound, bound, shape).astype(np.int8)


def _random_conv(rng: np.random.Generator, x_type):
    groups = int(rng.choice([1, 2, 4]))
    depthwise = rng.random() < 0.3
    cin_g = 1 if depthwise else int(rng.integers(1, 9))
    cout = groups * (1 if depthwise else int(rng.integers(1, 9)))
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    attrs = {
        "strides": [int(rng.integers(1, 3)), int(rng.integers(1, 3))],
        "dilations": [int(rng.integers(1, 3)), int(rng.integers(1, 3))],
        "pads": [int(rng.integers(0, 2)) for _ in range(4)],
        "group": groups,
    }
    h, w = int(rng.integers(6, 12)), int(rng.integers(6, 12))
    info = np.iinfo(x_type)
    x = rng.integers(info.min, info.max + 1, (int(rng.integers(1, 3)), cin_g * groups, h, w)).astype(x_type)
    weight = _weights(rng, (cout, cin_g, *k), x_type)
    params = {
        "x_scale": np.float32(rng.uniform(0.005, 0.05)),
        "x_zp": np.array(rng.integers(info.min, info.max + 1), x_type),
        "w_scale": rng.uniform(0.001, 0.02, cout).astype(np.float32),
        "w_zp": np.zeros(cout, np.int8),
        "y_scale": np.float32(rng.uniform(0.02, 0.5)),
        "y_zp": np.array(rng.integers(info.min, info.max + 1), x_type),
        "bias": rng.integers(-5000, 5000, cout).astype(np.int32),
    }
    return x, weight, params, attrs


@pytest.mark.parametrize("seed", range(12))
def test_qlinearconv_per_channel_matches_onnxruntime(seed):
    rng = np.random.default_rng(seed)
    x_type = np.uint8 if seed % 3 == 0 else np.int8
    x, weight, p, attrs = _random_conv(rng, x_type)
    inputs = ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "bias"]
    node = helper.make_node("QLinearConv", inputs, ["y"], **attrs)
    initializers = {"w": weight, **{k: np.asarray(v) for k, v in p.items()}}
    session = _session(node, {"x": x}, initializers, ONNX_TYPE[x_type])
    expected = session.run(None, {"x": x})[0]
    got = qlinear.qlinear_conv(
        x, p["x_scale"], p["x_zp"], weight, p["w_scale"], p["w_zp"], p["y_scale"], p["y_zp"], p["bias"], attrs
    )
    assert np.array_equal(got, expected)
    assert len(np.unique(expected)) > 3  # the case exercises the requantization, not only saturation


@pytest.mark.parametrize("seed", range(8))
def test_qlinearmatmul_per_channel_matches_onnxruntime(seed):
    rng = np.random.default_rng(100 + seed)
    x_type = np.uint8 if seed % 2 else np.int8
    info = np.iinfo(x_type)
    m, k, n = (int(v) for v in rng.integers(1, 40, 3))
    a = rng.integers(info.min, info.max + 1, (m, k)).astype(x_type)
    b = _weights(rng, (k, n), x_type)
    p = {
        "a_scale": np.float32(rng.uniform(0.005, 0.05)),
        "a_zp": np.array(rng.integers(info.min, info.max + 1), x_type),
        "b_scale": rng.uniform(0.001, 0.02, n).astype(np.float32),
        "b_zp": np.zeros(n, np.int8),
        "y_scale": np.float32(rng.uniform(0.05, 0.5)),
        "y_zp": np.array(rng.integers(info.min, info.max + 1), x_type),
    }
    names = ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"]
    node = helper.make_node("QLinearMatMul", names, ["y"])
    initializers = {"b": b, **{k: np.asarray(v) for k, v in p.items()}}
    expected = _session(node, {"a": a}, initializers, ONNX_TYPE[x_type]).run(None, {"a": a})[0]
    got = qlinear.qlinear_matmul(
        a, p["a_scale"], p["a_zp"], b, p["b_scale"], p["b_zp"], p["y_scale"], p["y_zp"]
    )
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("seed", range(8))
def test_qlinearadd_matches_onnxruntime(seed):
    """The add kernel's float32 rule is onnxruntime's QLinearAdd (com.microsoft), tails included."""
    from nnasim.kernels.add import add, make_add_params

    rng = np.random.default_rng(200 + seed)
    x_type = np.uint8 if seed % 2 else np.int8
    info = np.iinfo(x_type)
    n = int(rng.integers(1, 200))
    a, b = (rng.integers(info.min, info.max + 1, n).astype(x_type) for _ in range(2))
    scales = [np.float32(rng.uniform(0.005, 0.1)) for _ in range(3)]
    zps = [np.array(rng.integers(info.min, info.max + 1), x_type) for _ in range(3)]
    names = ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"]
    node = helper.make_node("QLinearAdd", names, ["c"], domain="com.microsoft")
    initializers = dict(zip(["sa", "sb", "sc"], scales, strict=True)) | dict(
        zip(["za", "zb", "zc"], zps, strict=True)
    )
    graph = helper.make_graph(
        [node],
        "oracle",
        [helper.make_tensor_value_info(k, ONNX_TYPE[x_type], [n]) for k in ("a", "b")],
        [helper.make_tensor_value_info("c", ONNX_TYPE[x_type], None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"a": a, "b": b})[0]
    params = make_add_params(
        *(float(s) for s in scales), tuple(int(z) for z in zps), 8, "float32", info.min, info.max
    )
    got, _ = add(a.astype(np.int32), b.astype(np.int32), params)
    assert np.array_equal(got, expected.astype(np.int32))
