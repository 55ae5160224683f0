"""Build the IR graph from a checked, shape-inferred ModelProto, folding constant sub-graphs."""

from __future__ import annotations

import math
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from nnasim.errors import ModelError
from nnasim.frontend.convert import CONSTANT_ONLY_OPS, CONVERTERS, Context
from nnasim.frontend.source import check_and_infer_shapes
from nnasim.ir import Graph, Node, Tensor

SUPPORTED_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT16: "int16",
    onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
}


def _op_name(node: onnx.NodeProto) -> str:
    op_type, domain = _text(node.op_type), _text(node.domain)
    return op_type if domain in ("", "ai.onnx") else f"{domain}::{op_type}"


def _text(value: str | bytes) -> str:
    """A proto string field as text (protobuf hands back bytes where the file's string is not UTF-8)."""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def unsupported_ops_message(label: str, nodes: list[onnx.NodeProto]) -> str:
    """One line naming every unsupported node and its op, so a model is mapped in one round."""
    listed = ", ".join(f"node {node.name or node.output[0]!r} uses op {_op_name(node)}" for node in nodes)
    supported = f"supported ops: {', '.join(sorted(CONVERTERS))}"
    if len(nodes) == 1:
        return f"{label}: {listed}, which nnasim does not support; {supported}"
    ops = sorted({_op_name(node) for node in nodes})
    return (
        f"{label}: {len(nodes)} nodes use {len(ops)} ops nnasim does not support ({', '.join(ops)}): "
        f"{listed}; {supported}"
    )


def build_graph(model: onnx.ModelProto, label: str, opset: int) -> Graph:
    """Fold constant sub-graphs, then convert every remaining node to IR nodes."""
    model, consts = fold_constant_subgraphs(model, label, opset)
    graph = model.graph
    shapes, dtypes = _value_infos(model)
    ctx = Context(label, opset, consts, shapes)
    nodes: list[Node] = []
    computed = [node for node in graph.node if node.op_type in CONSTANT_ONLY_OPS]
    if computed:
        listed = ", ".join(f"node {node.name!r} ({node.op_type})" for node in computed)
        raise ModelError(
            f"{label}: {listed} {'computes' if len(computed) == 1 else 'compute'} on a non-constant tensor; "
            "nnasim supports "
            f"{', '.join(sorted({node.op_type for node in computed}))} only in constant (shape) sub-graphs"
        )
    for node in graph.node:
        _require_shapes(node, ctx)
        nodes.extend(_convert(node, ctx))
    inputs = tuple(i.name for i in graph.input if i.name not in consts)
    outputs = tuple(o.name for o in graph.output)
    for name in outputs:
        if name in consts:
            raise ModelError(f"{label}: graph output {name!r} is a constant; nothing to compute")
    return _assemble(graph.name or label, nodes, ctx, inputs, outputs, dtypes)


def _convert(node: onnx.NodeProto, ctx: Context) -> list[Node]:
    """Run the node's converter; a value it cannot handle becomes an error naming the node."""
    try:
        return CONVERTERS[node.op_type](ctx, node)
    except ModelError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError) as error:
        raise ModelError(
            f"{ctx.label}: node {node.name!r} ({node.op_type}) has attributes or inputs nnasim cannot "
            f"interpret: {type(error).__name__}: {error}"
        ) from None


def check_structure(model: onnx.ModelProto, label: str) -> None:
    """Name unnamed nodes; reject unsupported ops and dangling inputs before the onnx checker.

    These checks run first because they give the user a precise message (node, op,
    tensor) where the checker's would be generic.
    """
    _name_nodes(model.graph)
    _check_supported(model.graph, label)
    _check_acyclic_order(model.graph, label)


def check_memory(model: onnx.ModelProto, label: str) -> None:
    """Refuse, before allocating anything, a model whose largest tensor cannot fit in memory."""
    shapes, _ = _value_infos(model)
    if not shapes:
        return
    name, shape = max(shapes.items(), key=lambda item: math.prod(item[1]))
    needed = 4 * math.prod(shape)
    available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > available // 2:
        raise ModelError(
            f"{label}: tensor {name!r} of shape {list(shape)} alone needs {needed / 2**30:,.1f} GiB "
            f"in fp32, over half of this machine's {available / 2**30:,.1f} GiB; use a smaller --input-shape"
        )


def _check_supported(graph: onnx.GraphProto, label: str) -> None:
    unsupported = [
        node
        for node in graph.node
        if node.domain not in ("", "ai.onnx")
        or (node.op_type not in CONVERTERS and node.op_type not in CONSTANT_ONLY_OPS)
    ]
    if unsupported:
        raise ModelError(unsupported_ops_message(label, unsupported))


def fold_constant_subgraphs(
    model: onnx.ModelProto, label: str, opset: int, rounds: int = 8
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Evaluate nodes whose inputs are constant (or a Shape of a static tensor) until none is left.

    Folded values become initializers and shape inference runs again, so shapes that
    depended on them (a Reshape fed by a Shape/Gather/Concat chain) become static.
    """
    consts = _initializers(model.graph, label)
    for _ in range(rounds):
        shapes, _ = _value_infos(model)
        ctx = Context(label, opset, consts, shapes)
        kept = [
            node for node in model.graph.node if not (_is_foldable(node, ctx) and _fold(node, ctx, opset))
        ]
        if len(kept) == len(model.graph.node):
            break
        del model.graph.node[:]
        model.graph.node.extend(kept)
        model.graph.initializer.extend(numpy_helper.from_array(v, n) for n, v in ctx.new_consts.items())
        model = check_and_infer_shapes(model, label)
    return model, consts


def _name_nodes(graph: onnx.GraphProto) -> None:
    for index, node in enumerate(graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"


def _check_acyclic_order(graph: onnx.GraphProto, label: str) -> None:
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    for node in graph.node:
        missing = [n for n in node.input if n not in available]
        if missing:
            raise ModelError(
                f"{label}: node {node.name!r} ({node.op_type}) reads {missing[0]!r}, which no earlier "
                "node, input or initializer provides (missing initializer, cycle or unsorted graph)"
            )
        available.update(node.output)


def _initializers(graph: onnx.GraphProto, label: str) -> dict[str, np.ndarray]:
    consts = {}
    for tensor in graph.initializer:
        try:
            consts[tensor.name] = numpy_helper.to_array(tensor)
        except (ValueError, TypeError, KeyError) as error:
            raise ModelError(f"{label}: initializer {tensor.name!r} cannot be read: {error}") from None
    return consts


def _value_infos(model: onnx.ModelProto) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Static shapes and element types that shape inference found, by tensor name."""
    shapes, dtypes = {}, {}
    graph = model.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in tensor_type.shape.dim):
            shapes[value.name] = tuple(d.dim_value for d in tensor_type.shape.dim)
        dtypes[value.name] = SUPPORTED_DTYPES.get(tensor_type.elem_type, "float32")
    return shapes, dtypes


def _is_foldable(node: onnx.NodeProto, ctx: Context) -> bool:
    inputs = [n for n in node.input if n]
    if node.op_type == "Shape":
        return inputs[0] in ctx.shapes
    return all(n in ctx.consts for n in inputs) and node.op_type not in ("QuantizeLinear",)


# onnx.reference implements (De)QuantizeLinear only from opset 19; their per-tensor and per-axis
# semantics are unchanged since opset 13, so constant ones are evaluated at this opset.
QDQ_OP_TYPES = ("QuantizeLinear", "DequantizeLinear")
QDQ_REFERENCE_OPSET = 21


def _fold(node: onnx.NodeProto, ctx: Context, opset: int) -> bool:
    """Evaluate ``node`` into constants (returns True, so it can filter the node out)."""
    if node.op_type == "Shape":
        ctx.add_const(node.output[0], _shape_output(node, ctx.shapes[node.input[0]]))
        return True
    feeds = {n: ctx.consts[n] for n in node.input if n}
    if node.op_type in QDQ_OP_TYPES:
        opset = max(opset, QDQ_REFERENCE_OPSET)
    try:
        values = ReferenceEvaluator(_single_node_model(node, feeds, opset)).run(None, feeds)
    except Exception as error:  # onnx.reference raises many types; name the node instead
        raise ModelError(
            f"{ctx.label}: constant node {node.name!r} ({node.op_type}) fails: {error}"
        ) from None
    for name, value in zip(node.output, values, strict=False):
        ctx.add_const(name, np.asarray(value))
    return True


def _single_node_model(node: onnx.NodeProto, feeds: dict[str, np.ndarray], opset: int) -> onnx.ModelProto:
    """Wrap one node in a model so onnx.reference evaluates it at the model's own opset."""
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
        for n, v in feeds.items()
    ]
    outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _shape_output(node: onnx.NodeProto, shape: tuple[int, ...]) -> np.ndarray:
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.array(shape[start:end], dtype=np.int64)


def _require_shapes(node: onnx.NodeProto, ctx: Context) -> None:
    for name in [*node.input, *node.output[:1]]:
        if name and name not in ctx.shapes and name not in ctx.consts:
            raise ModelError(
                f"{ctx.label}: node {node.name!r} ({node.op_type}): no static shape for {name!r}"
            )


def _assemble(name, nodes, ctx: Context, inputs, outputs, dtypes) -> Graph:
    used = {n for node in nodes for n in node.inputs} | {n for node in nodes for n in node.outputs}
    used |= set(inputs) | set(outputs)
    tensors = {}
    for tensor_name in used:
        if not tensor_name:
            continue
        data = ctx.consts.get(tensor_name)
        shape = tuple(data.shape) if data is not None else ctx.shapes.get(tensor_name)
        if shape is None:
            raise ModelError(f"{ctx.label}: tensor {tensor_name!r} has no static shape after shape inference")
        if any(s <= 0 for s in shape) and data is None:
            raise ModelError(f"{ctx.label}: tensor {tensor_name!r} has a zero or negative dimension {shape}")
        dtype = str(data.dtype) if data is not None else dtypes.get(tensor_name, "float32")
        tensors[tensor_name] = Tensor(tensor_name, shape, dtype, data)
    return Graph(name, tuple(nodes), tensors, inputs, outputs)
