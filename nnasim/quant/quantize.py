"""The quantization pass: put a fixed-point format (``QuantParams``) on every tensor the engine reads.

Activations get per-tensor formats from calibrated ranges, except where the operator fixes them:
data movement (max pool, reshape, transpose, slice, nearest resize) keeps its input's format, and
softmax/sigmoid outputs use the fixed [0, 1] format. Weights (Conv, Gemm, MatMul, unfolded
BatchNormalization scales) get symmetric formats, per tensor or per output channel. Other
constants (operands of Add, Mul, Concat...) are quantized per tensor like activations. Biases stay
float: the engine quantizes them with ``scale_in * scale_weight``, as TFLite and onnxruntime do.

Mixed precision (``layer_bits``, see ``widths``): each layer reads its inputs at its own
activation width. A tensor is stored at the width all its readers share, so the producer's
output stage writes it there directly (the requantization is fused); where readers disagree it
is stored at its producer's width and an explicit requantize node (an ``Identity`` whose output
format differs from its input's) feeds each reader of another width.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnasim.errors import UsageError
from nnasim.ir import Graph, Node, Op, QuantParams, Tensor
from nnasim.quant.calibrate import Range
from nnasim.quant.params import SCHEMES, activation_params, unit_params, weight_params
from nnasim.quant.widths import Width, layer_widths, uniform_width

INHERITS_FORMAT = (Op.MAXPOOL, Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.IDENTITY, Op.DROPOUT)
UNIT_OUTPUT = (Op.SOFTMAX, Op.SIGMOID, Op.HARD_SIGMOID)
BITS = (8, 16)
REQUANT_SUFFIX = "/requant"


def weight_axis(node: Node) -> int:
    """The output-channel axis of a node's weight (Conv OIHW and Gemm (N, K): 0; MatMul (K, N): 1)."""
    return 1 if node.op == Op.MATMUL else 0


def keeps_format(node: Node) -> bool:
    """Whether a node's output has its input's format (data movement: no arithmetic on values)."""
    return node.op in INHERITS_FORMAT or (node.op == Op.RESIZE and node.attrs.get("mode") == "nearest")


def quantize_graph(
    graph: Graph,
    bits: int,
    ranges: dict[str, Range],
    scheme: str = "pow2",
    per_channel: bool = False,
    layer_bits: dict[str, str] | None = None,
) -> Graph:
    """Return ``graph`` with ``QuantParams`` on its activations and constant operands.

    ``layer_bits`` maps node names to widths (``8``, ``8pc``, ``16``, ``16x8``...); nodes it does not
    name follow ``widths.layer_widths`` with ``bits``/``per_channel`` as the default.
    """
    if bits not in BITS:
        raise UsageError(f"integer engine bit width must be one of {BITS}, got {bits}")
    if scheme not in SCHEMES:
        raise UsageError(f"unknown quantization scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    widths = layer_widths(graph, layer_bits, uniform_width(bits, per_channel))
    stored = _stored_bits(graph, widths)
    ranges = dict(ranges)
    graph, requantizers = _insert_requantizers(graph, widths, stored, ranges)
    # constants that carry the model's own formats (dynamically quantized models) keep them
    formats: dict[str, QuantParams] = {
        name: t.quant for name, t in graph.tensors.items() if t.is_const and t.quant is not None
    }
    for name in graph.inputs:
        formats[name] = activation_params(*_range(ranges, name), stored[name], scheme)
    for node in graph.nodes:
        width = widths.get(node.name) or Width("", stored[node.outputs[0]], 0, False)
        out_bits = stored.get(node.outputs[0], width.act_bits)
        requantizes = node.name in requantizers
        formats[node.outputs[0]] = _output_format(node, formats, ranges, out_bits, scheme, requantizes)
        _quantize_constants(graph, node, formats, width, scheme)
    tensors = {
        name: replace(tensor, quant=formats[name]) if name in formats else tensor
        for name, tensor in graph.tensors.items()
    }
    return graph.with_(tensors=tensors)


def _stored_bits(graph: Graph, widths: dict[str, Width]) -> dict[str, int]:
    """The width each activation tensor is stored at: its readers' common width (through data
    movement, which keeps formats), else its producer's."""
    consumers = graph.consumers()

    def wanted(name: str) -> set[int]:
        """Widths the readers of ``name`` take it at, looking through data movement."""
        found: set[int] = set()
        for reader in consumers.get(name, []):
            found |= wanted(reader.outputs[0]) if keeps_format(reader) else {widths[reader.name].act_bits}
        return found

    stored: dict[str, int] = {}
    for name in graph.inputs:
        readers = wanted(name)
        stored[name] = max(readers) if readers else max(w.act_bits for w in widths.values())
    for node in graph.nodes:
        out = node.outputs[0]
        if keeps_format(node):
            stored[out] = stored[node.inputs[0]]
            continue
        readers = wanted(out) | ({widths[node.name].act_bits} if out in graph.outputs else set())
        stored[out] = readers.pop() if len(readers) == 1 else widths[node.name].act_bits
    return stored


def _insert_requantizers(graph, widths, stored, ranges) -> tuple[Graph, set[str]]:
    """A requantize node before each reader whose width differs from its input's stored width;
    the graph and the names of the nodes added."""
    nodes: list[Node] = []
    tensors = dict(graph.tensors)
    made: set[str] = set()
    for node in graph.nodes:
        inputs = list(node.inputs)
        for position, name in enumerate(node.inputs):
            if not name or tensors[name].is_const or keeps_format(node):
                continue
            want = widths[node.name].act_bits
            if stored[name] == want:
                continue
            target = f"{name}{REQUANT_SUFFIX}{want}"
            if target not in made:
                made.add(target)
                tensors[target] = Tensor(target, tensors[name].shape, tensors[name].dtype)
                stored[target] = want
                ranges[target] = _range(ranges, name)
                nodes.append(Node(target, Op.IDENTITY, (name,), (target,)))
            inputs[position] = target
        nodes.append(node.with_(inputs=tuple(inputs)))
    return graph.with_(nodes=tuple(nodes), tensors=tensors), made


def _range(ranges: dict[str, Range], name: str) -> Range:
    if name not in ranges:
        raise UsageError(f"no calibrated range for tensor {name!r}")
    return ranges[name]


def _output_format(node, formats, ranges, bits, scheme, requantizes: bool) -> QuantParams:
    if keeps_format(node) and not requantizes:
        return formats[node.inputs[0]]
    if node.op in UNIT_OUTPUT:
        return unit_params(bits, scheme)
    return activation_params(*_range(ranges, node.outputs[0]), bits, scheme)


def _quantize_constants(graph, node, formats, width: Width, scheme) -> None:
    for position, name in enumerate(node.inputs):
        if not name or not graph.tensors[name].is_const or name in formats:
            continue
        data = graph.const(name)
        if _is_weight(node, position):
            axis = weight_axis(node) if width.per_channel or node.op == Op.BATCHNORM else None
            floor = _smallest_weight_scale(graph, node, formats, width) if axis is not None else 0.0
            formats[name] = weight_params(data, width.weight_bits, scheme, axis, floor)
        elif _is_bias(node, position):
            continue
        elif node.op == Op.CONCAT:
            # stored as the output stores it, no requantization (the output's calibrated range
            # covers the constant's values); an own format (an all-zero pad's scale is 1) would
            # ask for a multiplier no fixed-point rule has
            formats[name] = formats[node.outputs[0]]
        else:
            formats[name] = activation_params(float(data.min()), float(data.max()), width.act_bits, scheme)


SMALLEST_MULTIPLIER = 2.0**-30  # above the Q31 rules' 2**-31 floor; pow2 shifts go further


def _smallest_weight_scale(graph: Graph, node: Node, formats, width: Width) -> np.ndarray | float:
    """The per-channel weight scales below which a channel's output stage breaks: its multiplier
    ``s_in * s_w / s_out`` under ``SMALLEST_MULTIPLIER`` (it would round to 0 and lose the bias of
    a channel whose weights are near zero, as BN-folded dead channels are), or its bias over a
    quarter of the accumulator (int32 at 8 bits, int64 at 16). A larger scale costs such a channel
    under ``K * 2**-16`` output steps for K products."""
    if node.op not in (Op.CONV, Op.CONV_TRANSPOSE, Op.GEMM, Op.MATMUL) or node.inputs[0] not in formats:
        return 0.0
    s_in = float(np.max(formats[node.inputs[0]].scale))
    s_out = float(np.max(formats[node.outputs[0]].scale))
    floor = SMALLEST_MULTIPLIER * s_out / s_in
    bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    if bias is None or not graph.tensors[bias].is_const:
        return floor
    acc_bits = 32 if width.act_bits <= 8 else 64
    magnitude = np.abs(np.asarray(graph.const(bias), np.float64).reshape(-1))
    return np.maximum(floor, magnitude / (s_in * 2.0 ** (acc_bits - 2)))


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
