"""Pre-quantized QDQ ONNX models (as onnxruntime's ``quantize_static`` writes them), kept as they are.

``load_qdq`` imports the model with the standard frontend and lowering, then puts each weight's and
bias's own format (from the DequantizeLinear that fed it) on the folded constant. ``import_qdq``
turns every ``x -> QuantizeLinear -> DequantizeLinear -> y`` pair into the format of ``x`` and
removes the pair, so the engine runs on integers with the model's own scales and zero points.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from nnasim.errors import ModelError, NnasimError
from nnasim.frontend import load_lowered
from nnasim.frontend.source import parse_model_file, read_model
from nnasim.ir import Graph, Op, QuantParams, Tensor
from nnasim.quant.params import per_axis
from nnasim.quant.quantize import INHERITS_FORMAT

QDQ_OPS = (Op.QUANTIZE, Op.DEQUANTIZE)


def has_qdq(graph: Graph) -> bool:
    return any(node.op in QDQ_OPS for node in graph.nodes)


def is_qdq_file(spec: str | Path) -> bool:
    """Whether ``spec`` names an ONNX file holding QuantizeLinear/DequantizeLinear nodes."""
    path = Path(str(spec))
    if not path.is_file():
        return False
    try:
        model = parse_model_file(path)  # the frontend's guarded reader (regular file, size checked)
    except NnasimError:  # unreadable files are reported by the frontend, with its own message
        return False
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def load_any(spec: str | Path | onnx.ModelProto, input_shape=None) -> Graph:
    """The lowered graph of any model the engines run: a QDQ file keeps its own formats (``load_qdq``)."""
    if not isinstance(spec, onnx.ModelProto) and is_qdq_file(spec):
        return load_qdq(spec, input_shape)
    return load_lowered(spec, input_shape)


def format_of(scale: np.ndarray, zero_point: np.ndarray | None, axis: int | None) -> QuantParams:
    """QuantParams of an ONNX (De)QuantizeLinear's scale and zero point (uint8 when absent, as ONNX)."""
    zero_point = np.zeros(np.shape(scale), np.uint8) if zero_point is None else np.asarray(zero_point)
    if zero_point.dtype not in (np.int8, np.uint8, np.int16, np.uint16):
        raise ModelError(
            f"QDQ zero point of type {zero_point.dtype} is not supported (8/16-bit integers only)"
        )
    if not np.all(np.isfinite(scale)) or np.any(np.asarray(scale) <= 0):
        raise ModelError(f"QDQ scale {np.asarray(scale).ravel()[:4]} is not a positive finite number")
    per_channel = np.size(scale) > 1
    return QuantParams(
        scale=np.asarray(scale, np.float32),
        zero_point=zero_point.astype(np.int32),
        bits=8 * zero_point.dtype.itemsize,
        scheme="affine",
        axis=axis if per_channel else None,
        signed=zero_point.dtype.kind == "i",
    )


def load_qdq(spec: str | Path | onnx.ModelProto, input_shape=None) -> Graph:
    """Load a QDQ model: the lowered graph, with constant weights/biases carrying their own formats.

    Each DequantizeLinear of a constant is evaluated here (float32, as ONNX defines it) and its
    format kept, then the frontend imports the model as usual.
    """
    model = onnx.ModelProto()
    model.CopyFrom(spec if isinstance(spec, onnx.ModelProto) else read_model(spec)[0])
    formats = _fold_constant_dequantize(model)
    formats |= _frontend_renamed(model, formats)
    graph = load_lowered(model, input_shape)
    tensors = {
        name: replace(tensor, quant=formats[name]) if tensor.is_const and name in formats else tensor
        for name, tensor in graph.tensors.items()
    }
    return graph.with_(tensors=tensors)


def _frontend_renamed(model: onnx.ModelProto, formats: dict[str, QuantParams]) -> dict[str, QuantParams]:
    """Formats of the constants the frontend rewrites: Gemm/MatMul weights become ``OUT::weight``
    of shape (N, K) (transposed unless transB) and Gemm biases ``OUT::bias``."""
    renamed = {}
    for node in model.graph.node:
        if node.op_type not in ("Gemm", "MatMul") or node.input[1] not in formats:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise ModelError(f"QDQ model: Gemm {node.name!r} with alpha/beta != 1 is not supported")
        fmt = formats[node.input[1]]
        transposed = node.op_type == "MatMul" or not attrs.get("transB", 0)
        axis = None if fmt.axis is None else (1 - fmt.axis if transposed else fmt.axis)
        renamed[f"{node.output[0]}::weight"] = replace(fmt, axis=axis)
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] in formats:
            renamed[f"{node.output[0]}::bias"] = formats[node.input[2]]
    return renamed


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant-node values by name."""
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _fold_constant_dequantize(model: onnx.ModelProto) -> dict[str, QuantParams]:
    """Replace each DequantizeLinear of a constant by its float value; return the formats by name."""
    values = _constants(model)
    formats, kept = {}, []
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in values:
            kept.append(node)
            continue
        data = values[node.input[0]]
        scale = values[node.input[1]]
        zero_point = (
            values[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros((), data.dtype)
        )
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        axis = axis + data.ndim if axis < 0 else axis
        fmt = format_of(scale, zero_point, axis) if data.dtype != np.int32 else _bias_format(scale, axis)
        # int32 biases can exceed float32's 24-bit mantissa: they stay exact in float64
        dtype = np.float64 if data.dtype == np.int32 else np.float32
        real = (data.astype(np.int64) - per_axis(fmt.zero_point, data.ndim, fmt.axis)).astype(dtype)
        real = real * per_axis(fmt.scale, data.ndim, fmt.axis).astype(dtype)
        model.graph.initializer.append(numpy_helper.from_array(real, node.output[0]))
        formats[node.output[0]] = fmt
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return formats


def _bias_format(scale: np.ndarray, axis: int) -> QuantParams:
    """int32 biases: scale = input scale x weight scale, zero point 0."""
    scale = np.asarray(scale, np.float32)
    per_channel = scale.size > 1
    return QuantParams(scale, np.zeros(scale.shape, np.int32), 32, "affine", axis if per_channel else None)


def import_qdq(graph: Graph) -> Graph:
    """Formats from the Q/DQ pairs onto the tensors they quantize; the pairs themselves removed."""
    producers = graph.producers()
    formats: dict[str, QuantParams] = {}
    alias: dict[str, str] = {}
    for node in graph.nodes:
        if node.op == Op.QUANTIZE:
            x = node.inputs[0]
            zp = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
            formats[x] = format_of(graph.const(node.inputs[1]), zp, node.attrs.get("axis"))
        elif node.op == Op.DEQUANTIZE:
            source = producers.get(node.inputs[0])
            if source is None or source.op != Op.QUANTIZE:
                raise ModelError(
                    f"QDQ model: DequantizeLinear {node.name!r} does not follow a QuantizeLinear; "
                    "only Q->DQ pairs on activations and DQ on constants are supported"
                )
            alias[node.outputs[0]] = source.inputs[0]
    rename = _canonical_names(graph, alias)
    nodes = [
        node.with_(
            inputs=tuple(rename.get(n, n) for n in node.inputs),
            outputs=tuple(rename.get(n, n) for n in node.outputs),
        )
        for node in graph.nodes
        if node.op not in QDQ_OPS
    ]
    tensors = dict(graph.tensors)
    for name, params in formats.items():
        target = rename.get(name, name)
        tensors[target] = replace(graph.tensors[name], name=target, quant=params)
    for node in nodes:
        _integer_constants(node, tensors)
        _inherit_format(node, tensors)
    used = (
        {n for node in nodes for n in (*node.inputs, *node.outputs)} | set(graph.inputs) | set(graph.outputs)
    )
    tensors = {name: tensor for name, tensor in tensors.items() if name in used}
    return graph.with_(nodes=tuple(nodes), tensors=tensors)


def _canonical_names(graph: Graph, alias: dict[str, str]) -> dict[str, str]:
    """Each DQ output and its Q input become one tensor, named after the DQ output if it is a graph output."""
    rename = {}
    for dq_out, x in alias.items():
        if dq_out in graph.outputs and x not in graph.inputs:
            rename[x] = dq_out
        else:
            rename[dq_out] = x
    return rename


def _integer_constants(node, tensors: dict[str, Tensor]) -> None:
    """Weights and biases back to their exact integers (the frontend folded them to floats)."""
    for name in node.inputs[1:]:
        tensor = tensors.get(name)
        if tensor is None or not tensor.is_const or tensor.quant is None or tensor.data.dtype.kind in "iu":
            continue
        fmt = tensor.quant
        dtype = tensor.data.dtype
        scale = per_axis(fmt.scale, tensor.data.ndim, fmt.axis).astype(dtype)
        zp = per_axis(fmt.zero_point, tensor.data.ndim, fmt.axis).astype(np.int64)
        q = np.rint(tensor.data / scale).astype(np.int64) + zp
        if not np.array_equal((q - zp).astype(dtype) * scale, tensor.data):
            raise ModelError(f"QDQ model: constant {name!r} is not exactly representable in its own format")
        tensors[name] = replace(tensor, data=q)
    if node.op in (Op.CONV, Op.GEMM, Op.MATMUL) and node.inputs[1] in tensors:
        weight = tensors[node.inputs[1]]
        if weight.is_const and weight.quant is None:
            raise ModelError(
                f"QDQ model: weight {node.inputs[1]!r} of node {node.name!r} has no format; "
                "load QDQ models with nnasim.quant.qdq.load_qdq"
            )


def _inherit_format(node, tensors: dict[str, Tensor]) -> None:
    """Data-movement ops without their own Q/DQ keep their input's format."""
    out = node.outputs[0]
    if tensors[out].quant is not None:
        return
    source = tensors[node.inputs[0]].quant
    if node.op in INHERITS_FORMAT and source is not None:
        tensors[out] = replace(tensors[out], quant=source)
    else:
        raise ModelError(f"QDQ model: tensor {out!r} ({node.op.value} output) has no QuantizeLinear")
