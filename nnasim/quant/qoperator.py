"""Every quantized-ONNX dialect rewritten to one: standard-domain QDQ, which ``quant.qdq`` imports.

- ``com.microsoft`` QuantizeLinear/DequantizeLinear (onnxruntime's 16-bit form) become the
  standard ops (same inputs and meaning).
- QOperator nodes (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ...) become what ONNX defines them
  as: DequantizeLinear on each integer operand, the float op, QuantizeLinear of the result with the
  node's own output scale and zero point. The integer kernels then run them with those formats.
- Ops that move integers without changing them (MaxPool, Reshape, Transpose, ... on an int8 tensor,
  as QOperator models and TFLite->ONNX converters write them) get the same DQ -> op -> Q wrapping,
  with the format of the tensor they move; an integer graph input gets a DequantizeLinear right
  after it, with the format its consumers give it. Its integers are then fed as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnasim.errors import ModelError

MS_DOMAIN = "com.microsoft"
FLOAT_SUFFIX = "::float"  # the float result of a rewritten op, quantized to the op's own output name
QDQ_TYPES = ("QuantizeLinear", "DequantizeLinear")
INTEGER_TYPES = {
    onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.INT16: np.int16,
    onnx.TensorProto.UINT16: np.uint16,
}
# ops that accept integer tensors and only move or select their values (output format = input format)
MOVES_INTEGERS = (
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "MaxPool",
    "Slice",
    "Concat",
    "Resize",
    "Upsample",
    "DepthToSpace",
    "SpaceToDepth",
)


@dataclass(frozen=True)
class QOp:
    """A QOperator node: its float op, its (value, scale, zero point) operand positions, its output's
    (scale, zero point) positions (None: a float output) and the position of an int32 bias."""

    float_op: str
    operands: tuple[tuple[int, int, int], ...]
    output: tuple[int, int] | None
    bias: int | None = None
    drop_attrs: tuple[str, ...] = ()


QOPS: dict[tuple[str, str], QOp] = {
    ("", "QLinearConv"): QOp("Conv", ((0, 1, 2), (3, 4, 5)), (6, 7), bias=8),
    ("", "QLinearMatMul"): QOp("MatMul", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    (MS_DOMAIN, "QGemm"): QOp("Gemm", ((0, 1, 2), (3, 4, 5)), (7, 8), bias=6),
    (MS_DOMAIN, "QLinearAdd"): QOp("Add", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    (MS_DOMAIN, "QLinearMul"): QOp("Mul", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    (MS_DOMAIN, "QLinearAveragePool"): QOp(
        "AveragePool", ((0, 1, 2),), (3, 4), drop_attrs=("channels_last",)
    ),
    (MS_DOMAIN, "QLinearGlobalAveragePool"): QOp(
        "GlobalAveragePool", ((0, 1, 2),), (3, 4), drop_attrs=("channels_last",)
    ),
    (MS_DOMAIN, "QLinearSigmoid"): QOp("Sigmoid", ((0, 1, 2),), (3, 4)),
    (MS_DOMAIN, "QLinearLeakyRelu"): QOp("LeakyRelu", ((0, 1, 2),), (3, 4)),
    (MS_DOMAIN, "QLinearSoftmax"): QOp("Softmax", ((0, 1, 2),), (3, 4), drop_attrs=("opset",)),
    (MS_DOMAIN, "QLinearConcat"): QOp("Concat", (), (0, 1)),  # operands: triples from input 2 on
}


def is_qoperator(node: onnx.NodeProto) -> bool:
    return (_domain(node), node.op_type) in QOPS


def needs_rewrite(model: onnx.ModelProto) -> bool:
    """Whether ``model`` holds anything but standard QDQ: another dialect or integer data movement."""
    integer_inputs = {i.name for i in model.graph.input if _elem_type(i) in INTEGER_TYPES}
    return bool(integer_inputs) or any(
        is_qoperator(node) or (node.op_type in QDQ_TYPES and _domain(node) == MS_DOMAIN)
        for node in model.graph.node
    )


def _domain(node: onnx.NodeProto) -> str:
    return "" if node.domain == "ai.onnx" else node.domain


def _elem_type(value: onnx.ValueInfoProto) -> int:
    return value.type.tensor_type.elem_type


Format = tuple[str, str, int]  # (scale, zero point, axis): names of constants in the model


class _Rewriter:
    """Rewrites one model's nodes to standard QDQ (see the module docstring)."""

    def __init__(self, model: onnx.ModelProto, label: str):
        self.model, self.label = model, label
        _constant_nodes_to_initializers(model)
        self.consts = {t.name: t for t in model.graph.initializer}
        self.dtypes = {
            i.name: INTEGER_TYPES[_elem_type(i)] for i in model.graph.input if _elem_type(i) in INTEGER_TYPES
        }
        self.formats: dict[str, Format] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.dequantized: dict[str, str] = {}

    def run(self) -> None:
        self._find_formats()
        for node in self.model.graph.node:
            self._rewrite(node)
        del self.model.graph.node[:]
        self.model.graph.node.extend(self.nodes)
        del self.model.graph.value_info[:]  # types changed: shape inference redoes them

    # formats of integer tensors: declared where they are produced or consumed, then propagated
    def _find_formats(self) -> None:
        for node in self.model.graph.node:
            for tensor, fmt in self._declared(node):
                if tensor and tensor not in self.consts:
                    self.formats.setdefault(tensor, fmt)
        for _ in range(len(self.model.graph.node)):
            changed = False
            for node in self.model.graph.node:
                if node.op_type not in MOVES_INTEGERS or _domain(node):
                    continue
                ins = [n for n in node.input[:1] if n]
                for a, b in ((ins[0], node.output[0]), (node.output[0], ins[0])) if ins else ():
                    if a in self.formats and b not in self.formats and self._is_integer(b, a):
                        self.formats[b] = self.formats[a]
                        changed = True
            if not changed:
                break

    def _is_integer(self, name: str, neighbour: str) -> bool:
        """``name`` is an integer tensor: a neighbour through a data-movement op of one."""
        if name in self.dtypes or name in self.consts:
            return name not in self.consts
        if neighbour in self.dtypes:
            self.dtypes[name] = self.dtypes[neighbour]
            return True
        return False

    def _declared(self, node: onnx.NodeProto):
        """(tensor, format) pairs a node states: Q/DQ operands and outputs, QOperator operands and outputs."""
        if node.op_type in QDQ_TYPES:
            fmt = self._format(node, 1, 2, _axis(node))
            self._note_dtype(node.output[0] if node.op_type == "QuantizeLinear" else node.input[0], fmt)
            yield (node.output[0] if node.op_type == "QuantizeLinear" else node.input[0]), fmt
            return
        spec = QOPS.get((_domain(node), node.op_type))
        if spec is None:
            return
        for value, scale, zp in self._operands(node, spec):
            fmt = self._format(node, scale, zp, 1)
            self._note_dtype(node.input[value], fmt)
            yield node.input[value], fmt
        if spec.output is not None and len(node.input) > spec.output[0] and node.input[spec.output[0]]:
            fmt = self._format(node, *spec.output, 1)
            self._note_dtype(node.output[0], fmt)
            yield node.output[0], fmt

    def _note_dtype(self, tensor: str, fmt: Format) -> None:
        zp = self.consts.get(fmt[1])
        if zp is not None:
            self.dtypes.setdefault(tensor, numpy_helper.to_array(zp).dtype.type)

    def _operands(self, node: onnx.NodeProto, spec: QOp):
        if spec.float_op == "Concat":
            return [(i, i + 1, i + 2) for i in range(2, len(node.input), 3)]
        return spec.operands

    def _format(self, node: onnx.NodeProto, scale: int, zp: int, axis: int) -> Format:
        if scale >= len(node.input) or node.input[scale] not in self.consts:
            raise ModelError(
                f"{self.label}: node {node.name!r} ({node.op_type}): its scale must be a constant initializer"
            )
        zp_name = node.input[zp] if zp < len(node.input) and node.input[zp] else ""
        if zp_name and zp_name not in self.consts:
            raise ModelError(
                f"{self.label}: node {node.name!r} ({node.op_type}): its zero point must be constant"
            )
        return node.input[scale], zp_name, axis

    # the rewrite
    def _rewrite(self, node: onnx.NodeProto) -> None:
        if node.op_type in QDQ_TYPES:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.domain = ""
            self.nodes.append(copy)
            return
        spec = QOPS.get((_domain(node), node.op_type))
        if spec is not None:
            self._expand(node, spec)
        elif not _domain(node) and node.op_type in MOVES_INTEGERS and self._moves_integers(node):
            self._wrap_data_movement(node)
        else:
            self.nodes.append(node)

    def _moves_integers(self, node: onnx.NodeProto) -> bool:
        return any(n in self.formats and n not in self.consts for n in node.input[:1]) or (
            node.op_type == "Concat" and any(n in self.formats for n in node.input)
        )

    def _dequantize(self, name: str, fmt: Format | None = None) -> str:
        """The float tensor of integer ``name`` (a DequantizeLinear added once per tensor and format)."""
        fmt = fmt or self.formats.get(name)
        if fmt is None:
            raise ModelError(
                f"{self.label}: integer tensor {name!r} has no scale and zero point anywhere in the model"
            )
        key = f"{name}|{fmt}"
        if key not in self.dequantized:
            out = f"{name}::dq{len(self.dequantized)}"
            axis = [] if fmt[2] == 1 else [helper.make_attribute("axis", fmt[2])]
            node = helper.make_node(
                "DequantizeLinear", [name, fmt[0], fmt[1]], [out], name=f"{name}::dequantize"
            )
            node.attribute.extend(axis)
            self.nodes.append(node)
            self.dequantized[key] = out
        return self.dequantized[key]

    def _quantize(self, source: str, target: str, fmt: Format, name: str) -> None:
        zp = fmt[1] or self._zero_point(target)
        self.nodes.append(helper.make_node("QuantizeLinear", [source, fmt[0], zp], [target], name=name))

    def _zero_point(self, tensor: str) -> str:
        """A zero constant of ``tensor``'s integer type (QuantizeLinear's output type comes from it)."""
        dtype = self.dtypes.get(tensor, np.uint8)
        name = f"{tensor}::zero_point"
        if name not in self.consts:
            self.consts[name] = numpy_helper.from_array(np.zeros((), dtype), name)
            self.model.graph.initializer.append(self.consts[name])
        return name

    def _expand(self, node: onnx.NodeProto, spec: QOp) -> None:
        inputs = []
        operands = self._operands(node, spec)
        for value, scale, zp in operands:
            axis = self._weight_axis(node, spec, value)
            inputs.append(self._dequantize(node.input[value], self._format(node, scale, zp, axis)))
        if spec.bias is not None and len(node.input) > spec.bias and node.input[spec.bias]:
            inputs.append(self._dequantize_bias(node, spec))
        attrs = [a for a in node.attribute if a.name not in spec.drop_attrs]
        self._check_attributes(node)
        has_output_format = (
            spec.output is not None and len(node.input) > spec.output[0] and node.input[spec.output[0]]
        )
        out = f"{node.output[0]}{FLOAT_SUFFIX}" if has_output_format else node.output[0]
        float_node = helper.make_node(spec.float_op, inputs, [out], name=node.name)
        float_node.attribute.extend(attrs)
        self.nodes.append(float_node)
        if has_output_format:
            self._quantize(out, node.output[0], self._format(node, *spec.output, 1), f"{node.name}::quantize")

    def _check_attributes(self, node: onnx.NodeProto) -> None:
        """Refuse the attribute values the float op would not mean the same way."""
        values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if values.get("channels_last"):
            raise ModelError(
                f"{self.label}: node {node.name!r} ({node.op_type}): channels_last=1 is not supported"
            )
        model_opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 13)
        if node.op_type == "QLinearSoftmax" and (values.get("opset", 13) >= 13) != (model_opset >= 13):
            raise ModelError(
                f"{self.label}: node {node.name!r} (QLinearSoftmax): its opset {values.get('opset')} "
                f"softmax semantics differ from the model's opset {model_opset}"
            )

    def _weight_axis(self, node: onnx.NodeProto, spec: QOp, value: int) -> int:
        """Per-channel axis of a constant operand: Conv weights on 0, MatMul/Gemm B on its N axis."""
        if value != 3 or spec.float_op not in ("Conv", "MatMul", "Gemm"):
            return 1
        if spec.float_op == "Conv":
            return 0
        if spec.float_op == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            return 0 if trans_b else 1
        b = self.consts.get(node.input[3])
        return len(b.dims) - 1 if b is not None else 1

    def _dequantize_bias(self, node: onnx.NodeProto, spec: QOp) -> str:
        """An int32 bias, in the accumulator's format: scale = x_scale * w_scale, zero point 0."""
        (_, xs, _), (_, ws, _) = spec.operands
        x_scale = numpy_helper.to_array(self.consts[node.input[xs]]).astype(np.float32)
        w_scale = numpy_helper.to_array(self.consts[node.input[ws]]).astype(np.float32)
        alpha = next((a.f for a in node.attribute if a.name == "alpha"), 1.0)
        scale = (x_scale * w_scale * np.float32(alpha)).astype(np.float32)
        bias = node.input[spec.bias]
        name = f"{bias}::scale"
        self.consts[name] = numpy_helper.from_array(scale, name)
        self.model.graph.initializer.append(self.consts[name])
        zp = f"{bias}::zero_point"
        self.consts[zp] = numpy_helper.from_array(np.zeros(scale.shape, np.int32), zp)
        self.model.graph.initializer.append(self.consts[zp])
        return self._dequantize(bias, (name, zp, 0))

    def _wrap_data_movement(self, node: onnx.NodeProto) -> None:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        count = 1 if node.op_type != "Concat" else len(node.input)
        for i in range(count):
            name = node.input[i]
            if name and name not in self.consts:
                copy.input[i] = self._dequantize(name)
        out = node.output[0]
        fmt = self.formats.get(out)
        if fmt is None:
            raise ModelError(
                f"{self.label}: node {node.name!r} ({node.op_type}) moves integers whose scale and zero "
                "point the model never states"
            )
        copy.output[0] = f"{out}{FLOAT_SUFFIX}"
        self.nodes.append(copy)
        self._quantize(copy.output[0], out, fmt, f"{node.name}::quantize")


def _constant_nodes_to_initializers(model: onnx.ModelProto) -> None:
    """Constant nodes (PyTorch exports write scales and zero points so) as initializers."""
    kept = []
    for node in model.graph.node:
        if node.op_type == "Constant" and not _domain(node) and [a.name for a in node.attribute] == ["value"]:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def _axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 1)


def to_standard_qdq(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """``model`` (any dialect) as standard-domain QDQ, in place (see the module docstring)."""
    if needs_rewrite(model):
        _Rewriter(model, label).run()
    return model
