"""Input quantization (``nnasim.kernels.quantize``) equals the numpy reference and onnxruntime's
QuantizeLinear, ties, saturation, NaN and infinities included."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnasim.kernels.quantize import quantize_to_engine
from tests.reference.quantize_ref import TO_NHWC, quantize_ref


def _inputs(shape, scale, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, 80, shape) * scale).astype(np.float32)
    flat = x.reshape(-1)
    flat[: flat.size // 8] = (rng.integers(-300, 300, flat.size // 8) + 0.5) * np.float32(scale)  # ties
    return x


@pytest.mark.parametrize("shape", [(1, 3, 7, 5), (2, 1, 4, 9), (3, 17), (11,)])
@pytest.mark.parametrize("scale,zero_point,qmin,qmax", [(0.02, 128, 0, 255), (0.5, -3, -128, 127)])
def test_quantize_matches_the_reference(shape, scale, zero_point, qmin, qmax):
    x = _inputs(shape, scale)
    x.reshape(-1)[-3:] = [np.nan, np.inf, -np.inf]
    got = quantize_to_engine(x, scale, zero_point, qmin, qmax)
    assert got.dtype == np.int32
    assert np.array_equal(got, quantize_ref(x, scale, zero_point, qmin, qmax))


@pytest.mark.parametrize("dtype,zero_point", [(TensorProto.UINT8, 131), (TensorProto.INT8, -7)])
def test_quantize_matches_onnxruntime(dtype, zero_point):
    scale = np.float32(0.037)
    x = _inputs((1, 3, 6, 8), scale, seed=4)
    np_type = np.uint8 if dtype == TensorProto.UINT8 else np.int8
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    graph = helper.make_graph(
        [node],
        "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", dtype, x.shape)],
        [
            numpy_helper.from_array(np.array(scale), "s"),
            numpy_helper.from_array(np.array(zero_point, np_type), "z"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0].transpose(TO_NHWC)
    info = np.iinfo(np_type)
    assert np.array_equal(quantize_to_engine(x, scale, zero_point, info.min, info.max), expected)
    onnx.checker.check_model(model)
