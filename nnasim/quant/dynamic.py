"""Dynamically quantized ONNX models (onnxruntime's ``quantize_dynamic``): float graphs, integer weights.

``DynamicQuantizeLinear(x) -> ConvInteger/MatMulInteger(x_q, w_q) -> Cast -> Mul(x_scale * w_scale)``
computes the activation's format from each input at run time; an integer NPU has fixed formats.
Older onnxruntime versions add the bias in integers before the Cast: ``Add(acc, Reshape(Cast(
Floor(Div(b, x_scale * w_scale)))))``. The chain becomes ``Conv/MatMul(x, DequantizeLinear(w_q))``
(the float ``b`` as the conv's bias): the weights keep the model's integers and formats, and the
engine calibrates the activations (per tensor, affine, as DynamicQuantizeLinear's uint8 formats
are), which the session states in its notes. A ``com.microsoft`` ``DynamicQuantizeLSTM`` becomes
an ONNX LSTM with its int8 weights dequantized to float ([dirs, in, 4h] transposed to LSTM's
[dirs, 4h, in]); the unrolled LSTM is then quantized as any float one.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnasim.errors import ModelError

DYNAMIC_TYPES = ("DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM")
FLOAT_OP = {"ConvInteger": "Conv", "MatMulInteger": "MatMul"}


def is_dynamic(model: onnx.ModelProto) -> bool:
    return any(node.op_type in DYNAMIC_TYPES for node in model.graph.node)


def rewrite_dynamic(model: onnx.ModelProto, label: str) -> None:
    """Rewrite every dynamic-quant chain of ``model`` in place (see the module docstring)."""
    if not is_dynamic(model):
        return
    _float_lstms(model, label)
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
        cast, scale_mul, bias = _chain(node, consumers, producer, label)
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
            FLOAT_OP[node.op_type],
            [quantizer.input[0], weight, *([bias.input[0]] if bias is not None else [])],
            list(scale_mul.output),
            name=node.name,
        )
        float_node.attribute.extend(node.attribute)
        replaced[id(node)] = [dq, float_node]
        removed |= {
            id(cast),
            id(scale_mul),
            *([id(consumers[node.output[0]][0])] if bias is not None else []),
        }
    kept = []
    for node in nodes:
        if id(node) in removed:
            continue
        kept.extend(replaced.get(id(node), [node]))
    _drop_unused(model, kept)


def _float_lstms(model: onnx.ModelProto, label: str) -> None:
    """Each DynamicQuantizeLSTM as an LSTM reading float copies of its dequantized weights."""
    consts = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "DynamicQuantizeLSTM":
            continue
        inputs = list(node.input) + [""] * (12 - len(node.input))
        weights = [  # W with W_scale, W_zero_point; R with R_scale, R_zero_point
            _dequantized(consts, [inputs[1], inputs[8], inputs[9]], label, node),
            _dequantized(consts, [inputs[2], inputs[10], inputs[11]], label, node),
        ]
        names = [f"{node.name}::{kind}" for kind in ("W", "R")]
        model.graph.initializer.extend(
            numpy_helper.from_array(w, n) for w, n in zip(weights, names, strict=True)
        )
        lstm = helper.make_node("LSTM", [inputs[0], *names, *inputs[3:8]], list(node.output), name=node.name)
        lstm.attribute.extend(node.attribute)
        while lstm.input and not lstm.input[-1]:
            del lstm.input[-1]
        node.CopyFrom(lstm)


def _dequantized(consts, names: list[str], label: str, node: onnx.NodeProto) -> np.ndarray:
    """Float [dirs, 4h, in] of an int8 [dirs, in, 4h] weight with per-direction (or per-direction
    and gate column) scales and zero points."""
    missing = [n for n in names if n not in consts]
    if missing:
        raise ModelError(
            f"{label}: node {node.name!r} (DynamicQuantizeLSTM): {missing[0]!r} is not a constant"
        )
    q, scale, zero = (numpy_helper.to_array(consts[n]) for n in names)
    shape = (q.shape[0], 1, -1)
    real = (q.astype(np.float32) - zero.reshape(shape).astype(np.float32)) * scale.reshape(shape)
    return np.ascontiguousarray(real.transpose(0, 2, 1)).astype(np.float32)


def _position(node: onnx.NodeProto, source: onnx.NodeProto) -> int:
    return list(node.input).index(source.output[0])


def _chain(
    node: onnx.NodeProto, consumers, producer, label: str
) -> tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto | None]:
    """The Cast and the Mul by ``x_scale * w_scale`` that follow an integer conv/matmul, and the
    Div of the float bias by that product when an integer bias is added before the Cast."""
    users = consumers.get(node.output[0], [])
    bias = _integer_bias(node, users, producer)
    if bias is not None:
        users = consumers.get(users[0].output[0], [])
    cast = users[0] if len(users) == 1 and users[0].op_type == "Cast" else None
    muls = consumers.get(cast.output[0], []) if cast is not None else []
    if cast is None or len(muls) != 1 or muls[0].op_type != "Mul":
        raise ModelError(
            f"{label}: node {node.name!r} ({node.op_type}): only the Cast -> Mul(x_scale * w_scale) that "
            "onnxruntime's quantize_dynamic writes after it (or after an integer bias Add) is supported"
        )
    return cast, muls[0], bias


def _integer_bias(node: onnx.NodeProto, users, producer) -> onnx.NodeProto | None:
    """The ``Div(b, x_scale * w_scale)`` under ``Add(acc, Reshape(Cast(Floor(...))))`` after a
    ConvInteger, or None."""
    if node.op_type != "ConvInteger" or len(users) != 1 or users[0].op_type != "Add":
        return None
    other = next((n for n in users[0].input if n != node.output[0]), None)
    source = producer.get(other)
    for op_type in ("Reshape", "Cast", "Floor"):
        if source is None or source.op_type != op_type:
            return None
        source = producer.get(source.input[0])
    return source if source is not None and source.op_type == "Div" else None


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
