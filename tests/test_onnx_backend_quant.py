"""onnx's own backend node tests for the quantized operators, run through nnasim's kernels.

The installed onnx wheel ships the test generators (not the data): each op module's ``export*``
functions call ``expect(node, inputs, outputs, name)``; we capture those calls and compare
nnasim's output with the expected output with ``np.array_equal``.
"""

from __future__ import annotations

import importlib

import numpy as np
import onnx
import pytest

from nnasim.engine import qlinear

OPS = ["qlinearconv", "qlinearmatmul", "convinteger", "matmulinteger", "quantizelinear", "dequantizelinear"]
NUMPY_TYPES = {"int8", "uint8", "int16", "uint16", "int32", "float32", "float16"}


def _capture_cases():
    cases = []

    def capture(node, inputs, outputs, name, **_):
        cases.append(pytest.param(node, inputs, outputs, id=name))

    for module_name in OPS:
        module = importlib.import_module(f"onnx.backend.test.case.node.{module_name}")
        module.expect = capture
        for cls in [
            v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
        ]:
            for attr in dir(cls):
                if attr.startswith("export"):
                    getattr(cls, attr)()
    return cases


def _supported(case) -> bool:
    """int8/uint8/int16/uint16 cases without block quantization (fp8/int4/blocked are out of scope)."""
    node, inputs, outputs = case.values
    attrs = {a.name for a in node.attribute}
    arrays = [*inputs, *outputs]
    return "block_size" not in attrs and all(str(getattr(a, "dtype", "?")) in NUMPY_TYPES for a in arrays)


CASES = [case for case in _capture_cases() if _supported(case)]


def _run(node: onnx.NodeProto, inputs: list[np.ndarray]) -> np.ndarray:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op == "QLinearConv":
        return qlinear.qlinear_conv(*inputs[:8], bias=inputs[8] if len(inputs) > 8 else None, attrs=attrs)
    if op == "QLinearMatMul":
        return qlinear.qlinear_matmul(*inputs)
    if op == "ConvInteger":
        x, w, x_zp, w_zp = (*inputs, None, None)[:4]
        return qlinear.conv_accumulators(x, x_zp, w, w_zp, attrs=attrs).astype(np.int32)
    if op == "MatMulInteger":
        a, b, a_zp, b_zp = (*inputs, None, None)[:4]
        return qlinear.matmul_accumulators(a, a_zp, b, b_zp).astype(np.int32)
    if op == "QuantizeLinear":
        return qlinear.quantize_linear(*inputs, axis=attrs.get("axis", 1))
    return qlinear.dequantize_linear(*inputs, axis=attrs.get("axis", 1))


def test_every_requested_op_and_type_is_covered():
    ops = {case.values[0].op_type for case in CASES}
    assert ops == {
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "QuantizeLinear",
        "DequantizeLinear",
    }
    types = {str(a.dtype) for case in CASES for a in case.values[1] if a.dtype.kind in "iu"}
    assert {"int8", "uint8", "int16", "uint16"} <= types


@pytest.mark.parametrize(("node", "inputs", "outputs"), CASES)
def test_onnx_backend_node_case(node, inputs, outputs):
    result = _run(node, inputs)
    assert result.dtype == outputs[0].dtype
    assert np.array_equal(result, outputs[0])
