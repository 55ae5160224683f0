"""Write a quantized graph (uniform or mixed precision) as a QDQ ONNX model onnxruntime runs.

Every activation is followed by a QuantizeLinear/DequantizeLinear pair in its own format (int8
or int16, per tensor); weights are stored as integers behind a DequantizeLinear (per channel
along the output axis where the format is); biases as int32 at ``scale_in * scale_weight``
when they fit, else at that scale times the smallest power of two that fits. A fused
activation becomes its own ONNX node before the output's Q/DQ (after an Add, a PRelu or
LeakyRelu reads the sum rounded to the output's scale but not clipped to its range, as in the
engine); a requantize node (mixed precision) becomes an Identity between two formats. Opset 21:
the first with int16 QuantizeLinear in the default domain.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nnasim.errors import ModelError
from nnasim.ir import Activation, Graph, Node, Op, QuantParams
from nnasim.ir.execute import activation_of
from nnasim.quant.params import quantize_array

OPSET = 21
INT_TYPES = {(8, True): np.int8, (8, False): np.uint8, (16, True): np.int16, (16, False): np.uint16}
STANDALONE_ACTIVATIONS = (Op.RELU, Op.CLIP, Op.LEAKY_RELU, Op.PRELU)
PLAIN_OPS = {
    Op.ADD: "Add",
    Op.SUB: "Sub",
    Op.MUL: "Mul",
    Op.DIV: "Div",
    Op.GLOBAL_AVGPOOL: "GlobalAveragePool",
    Op.SIGMOID: "Sigmoid",
    Op.EXP: "Exp",
    Op.IDENTITY: "Identity",
}


class _Writer:
    """Collects nodes and initializers; ``read[name]`` is the float tensor a consumer reads."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.read: dict[str, str] = {}

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def qdq(self, source: str, fmt: QuantParams, target: str) -> str:
        """``source`` (float) through Q and DQ in ``fmt``; the DQ output is named ``target``."""
        scale, zero = self._format_consts(target, fmt)
        self.nodes.append(helper.make_node("QuantizeLinear", [source, scale, zero], [f"{target}/q"]))
        self.nodes.append(helper.make_node("DequantizeLinear", [f"{target}/q", scale, zero], [target]))
        return target

    def rounded(self, source: str, fmt: QuantParams, target: str) -> str:
        """``source`` rounded to a multiple of ``fmt``'s scale but not clipped to its range."""
        scale = self.const(f"{target}/scale", np.asarray(fmt.scale, np.float32))
        self.nodes.append(helper.make_node("Div", [source, scale], [f"{target}/div"]))
        self.nodes.append(helper.make_node("Round", [f"{target}/div"], [f"{target}/round"]))
        self.nodes.append(helper.make_node("Mul", [f"{target}/round", scale], [target]))
        return target

    def _format_consts(self, name: str, fmt: QuantParams) -> tuple[str, str]:
        dtype = INT_TYPES[(fmt.bits, fmt.signed)]
        scale = self.const(f"{name}/scale", np.asarray(fmt.scale, np.float32))
        zero = self.const(f"{name}/zero_point", np.asarray(fmt.zero_point).astype(dtype))
        return scale, zero

    def integer_const(self, name: str, fmt: QuantParams, narrow: bool) -> str:
        """A constant stored as integers of ``fmt`` behind a DequantizeLinear."""
        data = self.graph.const(name)
        q = data if np.issubdtype(data.dtype, np.integer) else quantize_array(data, fmt, narrow=narrow)
        dtype = INT_TYPES[(fmt.bits, fmt.signed)]
        stored = self.const(f"{name}/int", q.astype(dtype))
        scale = self.const(f"{name}/scale", np.asarray(fmt.scale, np.float32))
        zero = self.const(f"{name}/zero_point", np.asarray(fmt.zero_point).astype(dtype))
        attrs = {"axis": fmt.axis} if fmt.axis is not None else {}
        self.nodes.append(
            helper.make_node("DequantizeLinear", [stored, scale, zero], [f"{name}/dq"], **attrs)
        )
        return f"{name}/dq"

    def bias(self, node: Node, x: str, w: str) -> list[str]:
        """The bias as int32 at ``scale_x * scale_w`` (times a power of two where int32 cannot hold it)."""
        if len(node.inputs) < 3 or not node.inputs[2]:
            return []
        name = node.inputs[2]
        data = self.graph.const(name).astype(np.float32).reshape(-1)
        w_fmt = self.graph.tensors[w].quant
        acc_scale = np.float32(self.graph.tensors[x].quant.scale) * np.asarray(w_fmt.scale, np.float32)
        acc_scale = np.broadcast_to(acc_scale.reshape(-1), data.shape).astype(np.float32)
        # 16-bit accumulators can hold biases int32 cannot: coarsen the bias scale by powers of two
        # (onnxruntime 1.32 quantizes a float bias itself, at scale_x * scale_w, overflowing int32)
        peak = float(np.abs(data.astype(np.float64) / acc_scale).max(initial=0.0))
        acc_scale = (
            acc_scale * np.float32(2.0 ** max(0, math.ceil(math.log2(max(peak, 1.0) / (2**31 - 1)))))
        ).astype(np.float32)
        q = np.clip(np.rint(data.astype(np.float64) / acc_scale), -(2**31), 2**31 - 1)
        stored = self.const(f"{name}/int", q.astype(np.int32))
        scale = self.const(f"{name}/scale", acc_scale)
        zero = self.const(f"{name}/zero_point", np.zeros(acc_scale.shape, np.int32))
        self.nodes.append(helper.make_node("DequantizeLinear", [stored, scale, zero], [f"{name}/dq"], axis=0))
        return [f"{name}/dq"]

    def operand(self, name: str) -> str:
        """A computed input as read, or a constant operand stored in its own format."""
        if name in self.read:
            return self.read[name]
        tensor = self.graph.tensors[name]
        if not tensor.is_const:
            raise ModelError(f"QDQ export: tensor {name!r} is read before it is written")
        if tensor.quant is None or not np.issubdtype(tensor.data.dtype, np.floating):
            return self.const(name, tensor.data)
        return self.integer_const(name, tensor.quant, narrow=False)

    def activation(self, act: Activation | None, source: str, name: str) -> str:
        """A fused activation as its own node; returns the float tensor after it."""
        if act is None:
            return source
        out = f"{name}/act"
        if act.kind == Op.RELU and act.hi == float("inf"):
            self.nodes.append(helper.make_node("Relu", [source], [out]))
        elif act.kind in (Op.RELU, Op.CLIP):
            lo = self.const(f"{name}/lo", np.float32(max(act.lo, np.finfo(np.float32).min)))
            hi = self.const(f"{name}/hi", np.float32(min(act.hi, np.finfo(np.float32).max)))
            self.nodes.append(helper.make_node("Clip", [source, lo, hi], [out]))
        elif act.kind == Op.LEAKY_RELU:
            self.nodes.append(helper.make_node("LeakyRelu", [source], [out], alpha=float(act.alpha)))
        else:
            slope = self.graph.const(act.slope).astype(np.float32).reshape(-1)
            rank = len(self.graph.shape(name))  # channels on ONNX axis 1, as PRelu broadcasts them
            slope = self.const(
                f"{name}/slope", slope.reshape((-1,) + (1,) * (rank - 2)) if rank > 2 else slope
            )
            self.nodes.append(helper.make_node("PRelu", [source, slope], [out]))
        return out


def export_qdq(graph: Graph, path: str | Path) -> Path:
    """Write quantized ``graph`` (``QuantParams`` on its tensors) to ``path`` as a QDQ model."""
    writer = _Writer(graph)
    for name in graph.inputs:
        writer.read[name] = writer.qdq(name, _format(graph, name), f"{name}/dq")
    for node in graph.nodes:
        out = node.outputs[0]
        raw = _emit(writer, node, f"{out}/raw")
        if _slope_after_sum(node):
            raw = writer.rounded(raw, _format(graph, out), f"{out}/sum")
        after = writer.activation(node.act, raw, out)
        writer.read[out] = writer.qdq(after, _format(graph, out), out)
    model = helper.make_model(
        helper.make_graph(
            writer.nodes,
            graph.name or "nnasim",
            [_value_info(graph, name) for name in graph.inputs],
            [_value_info(graph, name) for name in graph.outputs],
            writer.inits,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="nnasim",
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def _slope_after_sum(node: Node) -> bool:
    """An Add/Sub with a fused PRelu/LeakyRelu: the engine holds its sum at the output's scale but
    int32 range (the output format is calibrated after the slope, below which the sum may lie)."""
    return node.op in (Op.ADD, Op.SUB) and node.act is not None and node.act.kind in (Op.PRELU, Op.LEAKY_RELU)


def _format(graph: Graph, name: str) -> QuantParams:
    fmt = graph.tensors[name].quant
    if fmt is None:
        raise ModelError(f"QDQ export: tensor {name!r} has no format (export a quantized graph)")
    return fmt


def _value_info(graph: Graph, name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(graph.shape(name)))


def _emit(writer: _Writer, node: Node, out: str) -> str:
    """The ONNX node(s) computing ``node`` in float from dequantized inputs; returns ``out``."""
    a = node.attrs
    x = writer.operand(node.inputs[0])
    make = helper.make_node
    if node.op == Op.CONV:
        w = writer.integer_const(node.inputs[1], _format(writer.graph, node.inputs[1]), narrow=True)
        inputs = [x, w, *writer.bias(node, node.inputs[0], node.inputs[1])]
        conv = {k: list(a[k]) for k in ("kernel_shape", "strides", "pads", "dilations")}
        writer.nodes.append(make("Conv", inputs, [out], group=int(a["group"]), **conv))
    elif node.op in (Op.GEMM, Op.MATMUL):
        w = writer.integer_const(node.inputs[1], _format(writer.graph, node.inputs[1]), narrow=True)
        if node.op == Op.GEMM:
            writer.nodes.append(
                make("Gemm", [x, w, *writer.bias(node, node.inputs[0], node.inputs[1])], [out], transB=1)
            )
        else:
            writer.nodes.append(make("MatMul", [x, w], [out]))
    elif node.op in PLAIN_OPS:
        inputs = [x] + [writer.operand(n) for n in node.inputs[1:] if n]
        writer.nodes.append(make(PLAIN_OPS[node.op], inputs, [out]))
    elif node.op in STANDALONE_ACTIVATIONS:
        return writer.activation(activation_of(node), x, out.removesuffix("/raw"))
    elif node.op in (Op.MAXPOOL, Op.AVGPOOL):
        pool = {k: list(a[k]) for k in ("kernel_shape", "strides", "pads")}
        extra = {"count_include_pad": int(a["count_include_pad"])} if node.op == Op.AVGPOOL else {}
        if node.op == Op.MAXPOOL:
            extra["dilations"] = list(a.get("dilations", (1, 1)))
        writer.nodes.append(
            make(node.op.value, [x], [out], ceil_mode=int(a.get("ceil_mode", 0)), **pool, **extra)
        )
    elif node.op == Op.RESHAPE:
        shape = writer.const(f"{out}/shape", np.asarray(a["shape"], np.int64))
        writer.nodes.append(make("Reshape", [x, shape], [out]))
    elif node.op == Op.TRANSPOSE:
        writer.nodes.append(make("Transpose", [x], [out], perm=list(a["perm"])))
    elif node.op == Op.SOFTMAX:
        writer.nodes.append(make("Softmax", [x], [out], axis=int(a["axis"])))
    elif node.op == Op.CONCAT:
        writer.nodes.append(
            make("Concat", [writer.operand(n) for n in node.inputs], [out], axis=int(a["axis"]))
        )
    else:
        raise ModelError(f"QDQ export: node {node.name!r} ({node.op.value}) is not supported yet")
    return out
