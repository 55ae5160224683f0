"""Dynamically quantized ONNX models (onnxruntime's ``quantize_dynamic``): float graphs, integer weights.

``DynamicQuantizeLinear(x) -> ConvInteger/MatMulInteger(x_q, w_q) -> Cast -> Mul(x_scale * w_scale)``
computes the activation's format from each input at run time; an integer NPU has fixed formats.
The chain becomes ``Conv/MatMul(x, DequantizeLinear(w_q))``: the weights keep the model's integers
and formats, and the engine calibrates the activations (per tensor, affine, as
DynamicQuantizeLinear's uint8 formats are), which the session states in its notes.
"""

from __future__ import annotations

import onnx
from onnx import helper

from nnasim.errors import ModelError

DYNAMIC_TYPES = ("DynamicQuantizeLinear", "ConvInteger", "MatMulInteger")
FLOAT_OP = {"ConvInteger": "Conv", "MatMulInteger": "MatMul"}


def is_dynamic(model: onnx.ModelProto) -> bool:
    return any(node.op_type in DYNAMIC_TYPES for node in model.graph.node)


def rewrite_dynamic(model: onnx.ModelProto, label: str) -> None:
    """Rewrite every dynamic-quant chain of ``model`` in place (see the module docstring)."""
    if not is_dynamic(model):
        return
    nodes = list(model.graph.node)
    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    removed: set[int] = set()
    for node in nodes:
        if node.op_type not in FLOAT_OP:
            continue
        quantizer = producer.get(node.input[0])
        if quantizer is None or quantizer.op_type != "DynamicQuantizeLinear":
            raise ModelError(
                f"{label}: node {node.name!r} ({node.op_type}) does not read a DynamicQuantizeLinear"
            )
        cast, scale_mul = _chain(node, consumers, label)
        w_scale = next(
            n
            for n in producer[scale_mul.input[1 - _position(scale_mul, cast)]].input
            if n != quantizer.output[1]
        )
        w_zero = node.input[3] if len(node.input) > 3 and node.input[3] else ""
        weight = f"{node.input[1]}::dequantized"
        axis = 0 if node.op_type == "ConvInteger" else 1
        dq = helper.make_node(
            "DequantizeLinear",
            [node.input[1], w_scale, w_zero],
            [weight],
            name=f"{node.name}::weight",
            axis=axis,
        )
        float_node = helper.make_node(
            FLOAT_OP[node.op_type], [quantizer.input[0], weight], list(scale_mul.output), name=node.name
        )
        float_node.attribute.extend(node.attribute)
        replaced[id(node)] = [dq, float_node]
        removed |= {id(cast), id(scale_mul)}
    kept = []
    for node in nodes:
        if id(node) in removed:
            continue
        kept.extend(replaced.get(id(node), [node]))
    _drop_unused(model, kept)


def _position(node: onnx.NodeProto, source: onnx.NodeProto) -> int:
    return list(node.input).index(source.output[0])


def _chain(node: onnx.NodeProto, consumers, label: str) -> tuple[onnx.NodeProto, onnx.NodeProto]:
    """The Cast and the Mul by ``x_scale * w_scale`` that follow an integer conv/matmul."""
    users = consumers.get(node.output[0], [])
    cast = users[0] if len(users) == 1 and users[0].op_type == "Cast" else None
    muls = consumers.get(cast.output[0], []) if cast is not None else []
    if cast is None or len(muls) != 1 or muls[0].op_type != "Mul":
        raise ModelError(
            f"{label}: node {node.name!r} ({node.op_type}): only the Cast -> Mul(x_scale * w_scale) that "
            "onnxruntime's quantize_dynamic writes after it is supported"
        )
    return cast, muls[0]


def _drop_unused(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> None:
    """Remove nodes none of whose outputs is read any more (the quantizers and scale products)."""
    outputs = {o.name for o in model.graph.output}
    while True:
        read = {name for node in nodes for name in node.input} | outputs
        alive = [node for node in nodes if any(o in read for o in node.output)]
        if len(alive) == len(nodes):
            break
        nodes = alive
    del model.graph.node[:]
    model.graph.node.extend(nodes)
