"""The quantization pass: put a fixed-point format (``QuantParams``) on every tensor the engine reads.

Activations get per-tensor formats from calibrated ranges, except where the operator fixes them:
data movement (max pool, reshape, transpose, slice, nearest resize) keeps its input's format, and
softmax/sigmoid outputs use the fixed [0, 1] format. Weights (Conv, Gemm, MatMul, unfolded
BatchNormalization scales) get symmetric formats, per tensor or per output channel. Other
constants (operands of Add, Mul, Concat...) are quantized per tensor like activations. Biases stay
float: the engine quantizes them with ``scale_in * scale_weight``, as TFLite and onnxruntime do.
"""

from __future__ import annotations

from dataclasses import replace

from nnasim.errors import UsageError
from nnasim.ir import Graph, Node, Op, QuantParams
from nnasim.quant.calibrate import Range
from nnasim.quant.params import SCHEMES, activation_params, unit_params, weight_params

INHERITS_FORMAT = (Op.MAXPOOL, Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.IDENTITY, Op.DROPOUT)
UNIT_OUTPUT = (Op.SOFTMAX, Op.SIGMOID, Op.HARD_SIGMOID)
BITS = (8, 16)


def weight_axis(node: Node) -> int:
    """The output-channel axis of a node's weight (Conv OIHW and Gemm (N, K): 0; MatMul (K, N): 1)."""
    return 1 if node.op == Op.MATMUL else 0


def quantize_graph(
    graph: Graph, bits: int, ranges: dict[str, Range], scheme: str = "pow2", per_channel: bool = False
) -> Graph:
    """Return ``graph`` with ``QuantParams`` on its activations and constant operands."""
    if bits not in BITS:
        raise UsageError(f"integer engine bit width must be one of {BITS}, got {bits}")
    if scheme not in SCHEMES:
        raise UsageError(f"unknown quantization scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    formats: dict[str, QuantParams] = {}
    for name in graph.inputs:
        formats[name] = activation_params(*_range(ranges, name), bits, scheme)
    for node in graph.nodes:
        _quantize_constants(graph, node, formats, bits, scheme, per_channel)
        formats[node.outputs[0]] = _output_format(graph, node, formats, ranges, bits, scheme)
    tensors = {
        name: replace(tensor, quant=formats[name]) if name in formats else tensor
        for name, tensor in graph.tensors.items()
    }
    return graph.with_(tensors=tensors)


def _range(ranges: dict[str, Range], name: str) -> Range:
    if name not in ranges:
        raise UsageError(f"no calibrated range for tensor {name!r}")
    return ranges[name]


def _output_format(graph, node, formats, ranges, bits, scheme) -> QuantParams:
    if node.op in INHERITS_FORMAT or (node.op == Op.RESIZE and node.attrs.get("mode") == "nearest"):
        return formats[node.inputs[0]]
    if node.op in UNIT_OUTPUT:
        return unit_params(bits, scheme)
    return activation_params(*_range(ranges, node.outputs[0]), bits, scheme)


def _quantize_constants(graph, node, formats, bits, scheme, per_channel) -> None:
    for position, name in enumerate(node.inputs):
        if not name or not graph.tensors[name].is_const or name in formats:
            continue
        data = graph.const(name)
        if _is_weight(node, position):
            axis = weight_axis(node) if per_channel or node.op == Op.BATCHNORM else None
            formats[name] = weight_params(data, bits, scheme, axis)
        elif _is_bias(node, position):
            continue
        else:
            formats[name] = activation_params(float(data.min()), float(data.max()), bits, scheme)


def _is_weight(node: Node, position: int) -> bool:
    return position == 1 and node.op in (Op.CONV, Op.CONV_TRANSPOSE, Op.GEMM, Op.MATMUL, Op.BATCHNORM)


def _is_bias(node: Node, position: int) -> bool:
    """Biases (and PRelu's slope, LayerNormalization's scale and bias) are not quantized as tensors:
    they fold into the output stage."""
    return (
        (position == 2 and node.op in (Op.CONV, Op.CONV_TRANSPOSE, Op.GEMM, Op.BATCHNORM))
        or (position == 1 and node.op == Op.PRELU)
        or (position in (1, 2) and node.op == Op.LAYER_NORM)
    )
