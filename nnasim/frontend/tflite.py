"""TFLite -> IR: every builtin op of the first subgraph becomes IR nodes, in the IR's NCHW layout.

Layout is handled once, here: every 4-D TFLite tensor (NHWC) is an NCHW IR tensor of the same
name, weights are transposed to the IR's OIHW, and the ops whose meaning depends on the memory
order (RESHAPE, FULLY_CONNECTED on 4-D input, TRANSPOSE, axes of CONCATENATION/SOFTMAX/MEAN/PAD)
get explicit transposes or remapped axes. Since the engine keeps 4-D tensors NHWC, its integer
tensors are laid out exactly as the interpreter's.

A full-integer model keeps its own formats: each tensor's scale, zero point and per-channel axis
become its ``QuantParams``; constants are stored dequantized (biases in float64, so int32/int64
values stay exact) and turned back into the file's integers by the engine. Float graphs run the
standard lowering passes; quantized ones are kept as they are (a pass would change their formats).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnasim.errors import ModelError, UsageError
from nnasim.frontend.tflite_patterns import fuse_decompositions
from nnasim.frontend.tflite_reader import TflModel, TflOp, TflTensor, read_tflite
from nnasim.ir import Activation, Graph, Node, Op, QuantParams, Tensor, check_graph

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)
NHWC_AXIS_TO_IR = {0: 0, 1: 2, 2: 3, 3: 1}
INTEGER_TYPES = {"INT8": (8, True), "UINT8": (8, False), "INT16": (16, True)}
FUSED_ACTIVATIONS = {
    0: None,
    1: Activation(Op.RELU, lo=0.0),
    2: Activation(Op.CLIP, lo=-1.0, hi=1.0),
    3: Activation(Op.CLIP, lo=0.0, hi=6.0),
}


class Unsupported(Exception):
    """An op the converter cannot map; collected so that all of them are reported at once."""


def load_tflite(path: str | Path, input_shape=None, lowered: bool = True) -> Graph:
    """Import a .tflite file into the IR; ``lowered`` runs the lowering passes on float graphs
    (quantized graphs are kept as they are: a pass would change their formats)."""
    graph, _ = convert_tflite(read_tflite(path), input_shape, lowered)
    return graph


def convert_tflite(model: TflModel, input_shape=None, lowered: bool = True) -> tuple[Graph, dict[int, str]]:
    """The IR graph and, for each TFLite tensor index it keeps, the IR tensor holding it."""
    builder = Builder(model)
    builder.check_input_shape(input_shape)
    ops = fuse_decompositions(model)
    folds = pads_into_convolutions(model, ops)
    builder.pad_folds = {out: (source, pads) for out, source, pads in folds.values()}
    problems = []
    for op in ops:
        if op.index in folds:
            continue
        converter = CONVERTERS.get(op.name)
        try:
            if converter is None:
                raise Unsupported("nnasim has no converter for this op")
            converter(builder, op)
        except Unsupported as reason:
            problems.append(f"op {op.index} {op.name} (output {builder.tensor_label(op)}): {reason}")
            builder.stand_in(op)  # later ops read its outputs without a second, derived complaint
    if problems:
        raise ModelError(
            f"{model.label}: {len(problems)} TFLite op(s) nnasim does not support:\n  "
            + "\n  ".join(problems)
        )
    graph = builder.graph()
    check_graph(graph)
    if lowered and not builder.quantized:
        from nnasim.passes import lower

        graph = lower(graph)
    return graph, dict(builder.names)


@dataclass
class Builder:
    """The graph under construction: IR names of TFLite tensors, IR tensors and nodes."""

    model: TflModel
    names: dict[int, str] = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    pad_folds: dict[int, tuple[int, tuple[int, int, int, int]]] = field(default_factory=dict)
    folded: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.quantized = any(
            self.model.tensors[i].dtype in INTEGER_TYPES for i in self.model.inputs + self.model.outputs
        )
        taken: set[str] = set()
        self._unique = {}
        for tensor in self.model.tensors:
            name = tensor.name if tensor.name not in taken else f"{tensor.name}#{tensor.index}"
            taken.add(name)
            self._unique[tensor.index] = name
        for index in self.model.inputs:
            self._declare_input(index)

    # --- tensors -------------------------------------------------------------------------------

    def t(self, index: int) -> TflTensor:
        return self.model.tensors[index]

    def tensor_label(self, op: TflOp) -> str:
        return repr(self.t(op.outputs[0]).name) if op.outputs else "none"

    def check_input_shape(self, input_shape) -> None:
        if input_shape is None:
            return
        shapes = (
            input_shape if isinstance(input_shape, dict) else {self.names[self.model.inputs[0]]: input_shape}
        )
        for name, shape in shapes.items():
            if name not in self.tensors or tuple(shape) != self.tensors[name].shape:
                raise UsageError(
                    f"{self.model.label}: TFLite models have static shapes; --input-shape "
                    f"{name}={list(shape)} differs from the file's "
                    f"{list(self.tensors.get(name, Tensor(name, ())).shape)}"
                )

    def fmt(self, index: int, axis: int | None = None) -> QuantParams | None:
        """The file's format of tensor ``index`` (``axis`` overrides the per-channel axis)."""
        tensor = self.t(index)
        if tensor.quant is None:
            return None
        bits, signed = INTEGER_TYPES.get(tensor.dtype, (32 if tensor.dtype == "INT32" else 64, True))
        per_channel = tensor.quant.scale.size > 1
        return QuantParams(
            scale=tensor.quant.scale.reshape(-1) if per_channel else tensor.quant.scale.reshape(()),
            zero_point=(
                tensor.quant.zero_point.reshape(-1) if per_channel else tensor.quant.zero_point.reshape(())
            ).astype(np.int32),
            bits=bits,
            axis=(axis if axis is not None else tensor.quant.axis) if per_channel else None,
            signed=signed,
        )

    def activation_fmt(self, index: int) -> QuantParams | None:
        fmt = self.fmt(index)
        if self.quantized and fmt is None:
            raise Unsupported(f"tensor {self.t(index).name!r} has no quantization in a quantized model")
        if self.quantized and self.t(index).dtype not in INTEGER_TYPES:
            raise Unsupported(
                f"float tensor {self.t(index).name!r} inside a quantized model (a float island)"
            )
        return fmt if self.quantized else None

    def _declare_input(self, index: int) -> None:
        tensor = self.t(index)
        name = self._unique[index]
        fmt = self.fmt(index) if tensor.dtype in INTEGER_TYPES else None
        self.tensors[name] = Tensor(name, ir_shape(tensor.shape), "float32", quant=fmt)
        self.names[index] = name

    def x(self, index: int) -> str:
        """IR name of a computed input (or of a constant, registered as a plain float constant)."""
        if index in self.names:
            return self.names[index]
        tensor = self.t(index)
        if self.data(index) is None:
            raise Unsupported(f"input tensor {tensor.name!r} is read before any op computes it")
        return self.const(index, ir_layout(self.real(index)), self.operand_fmt(index))

    def operand_fmt(self, index: int) -> QuantParams | None:
        """Format of a constant operand of an elementwise op: per tensor, as the kernels need."""
        fmt = self.fmt(index)
        if fmt is not None and fmt.axis is not None:
            raise Unsupported(f"constant {self.t(index).name!r} is quantized per channel")
        return fmt if self.quantized else None

    def real(self, index: int) -> np.ndarray:
        """A constant's real values in TFLite layout: float data as float32, integers dequantized
        (float64 for 32/64-bit integers, so biases stay exact)."""
        tensor = self.t(index)
        data = self.data(index)
        if data is None:
            raise Unsupported(f"tensor {tensor.name!r} must be constant")
        if data.dtype.kind == "f" or index in self.folded:
            return data.astype(np.float32)
        if tensor.quant is None:
            return data
        dtype = np.float64 if data.dtype.itemsize >= 4 else np.float32
        shape = [1] * data.ndim
        if tensor.quant.axis is not None and tensor.quant.scale.size > 1:
            shape[tensor.quant.axis] = -1
        zp = tensor.quant.zero_point.reshape(shape if data.ndim else ())
        scale = tensor.quant.scale.reshape(shape if data.ndim else ()).astype(dtype)
        return (data.astype(np.int64) - zp).astype(dtype) * scale

    def const(self, index_or_name: int | str, data: np.ndarray, fmt: QuantParams | None = None) -> str:
        """Register a constant (a TFLite constant in IR layout, or a made-up one); returns its IR name."""
        name = self._unique[index_or_name] if isinstance(index_or_name, int) else index_or_name
        base, copy = name, 1
        while name in self.tensors:  # a constant read by several ops, or in several layouts
            name, copy = f"{base}#{copy}", copy + 1
        self.tensors[name] = Tensor(name, tuple(data.shape), str(data.dtype), data, fmt)
        return name

    def data(self, index: int) -> np.ndarray | None:
        """The constant data of TFLite tensor ``index`` (a folded DEQUANTIZE's result included)."""
        return self.folded.get(index, self.t(index).data)

    def out(self, index: int) -> str:
        """Declare TFLite tensor ``index`` as computed here; returns its IR name."""
        name = self._unique[index]
        tensor = self.t(index)
        self.tensors[name] = Tensor(name, ir_shape(tensor.shape), "float32", quant=self.activation_fmt(index))
        self.names[index] = name
        return name

    def temp(self, name: str, shape: tuple[int, ...], fmt: QuantParams | None) -> str:
        """An IR tensor with no TFLite counterpart (a layout transpose, a flattened input)."""
        while name in self.tensors:
            name += "'"
        self.tensors[name] = Tensor(name, tuple(shape), "float32", quant=fmt)
        return name

    def stand_in(self, op: TflOp) -> None:
        """Declare the outputs of an op that could not be converted (only to report further ops)."""
        for index in op.outputs:
            if index not in self.names:
                name = self._unique[index]
                self.tensors[name] = Tensor(name, ir_shape(self.t(index).shape), "float32")
                self.names[index] = name

    def alias(self, index: int, name: str) -> None:
        self.names[index] = name

    def emit(self, op: TflOp, ir_op: Op, inputs, output: str, act=None, suffix: str = "", **attrs) -> None:
        node_name = f"{op.name.lower()}_{op.index}{suffix}"
        self.nodes.append(Node(node_name, ir_op, tuple(inputs), (output,), attrs, act))

    def graph(self) -> Graph:
        outputs = []
        for index in self.model.outputs:
            if index not in self.names:
                raise ModelError(f"{self.model.label}: graph output {self.t(index).name!r} is never computed")
            outputs.append(self.names[index])
        inputs = tuple(self.names[i] for i in self.model.inputs)
        used = (
            {n for node in self.nodes for n in (*node.inputs, *node.outputs) if n}
            | set(inputs)
            | set(outputs)
        )
        tensors = {name: tensor for name, tensor in self.tensors.items() if name in used}
        return Graph(Path(self.model.label).stem, tuple(self.nodes), tensors, inputs, tuple(outputs))

    # --- layout helpers ------------------------------------------------------------------------

    def to_tflite_order(self, op: TflOp, name: str, suffix: str = "") -> str:
        """A 4-D IR tensor transposed back to NHWC order (a 4-D IR tensor of the TFLite shape)."""
        shape = self.tensors[name].shape
        if len(shape) != 4:
            return name
        nhwc = tuple(shape[p] for p in TO_NHWC)
        temp = self.temp(f"{name}::nhwc", nhwc, self.tensors[name].quant)
        self.emit(op, Op.TRANSPOSE, [name], temp, suffix=f"/to_nhwc{suffix}", perm=TO_NHWC)
        return temp


def ir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[p] for p in TO_NCHW) if len(shape) == 4 else tuple(shape)


def ir_layout(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(data.transpose(TO_NCHW)) if data.ndim == 4 else data


def ir_axis(axis: int, rank: int) -> int:
    axis = axis + rank if axis < 0 else axis
    return NHWC_AXIS_TO_IR[axis] if rank == 4 else axis


def fused(op: TflOp) -> Activation | None:
    code = op.options.get("FusedActivationFunction", 0)
    if code not in FUSED_ACTIVATIONS:
        raise Unsupported(f"fused activation {code} (TANH/SIGN_BIT) is not supported")
    return FUSED_ACTIVATIONS[code]


def same_pads(in_hw, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """TFLite SAME padding as (top, left, bottom, right): the extra pixel goes bottom/right."""
    begin, end = [], []
    for n, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return (*begin, *end)


def window_pads(op: TflOp, in_hw, kernel, strides, dilations) -> tuple[int, int, int, int]:
    padding = op.options.get("Padding", 1)
    if padding == 1:  # VALID
        return (0, 0, 0, 0)
    return same_pads(in_hw, kernel, strides, dilations)


def transpose_conv(b: Builder, op: TflOp) -> None:
    """TRANSPOSE_CONV (output shape, OHWI filter, input, optional bias), float graphs."""
    strides = (op.options.get("StrideH", 1), op.options.get("StrideW", 1))
    bias = op.inputs[3] if len(op.inputs) > 3 else -1
    same = op.options.get("Padding", 0) == 0
    _transposed_conv(b, op, (op.inputs[2], op.inputs[1], bias), same, strides, fused(op))


def transpose_conv_bias(b: Builder, op: TflOp) -> None:
    """MediaPipe's Convolution2DTransposeBias (input, OHWI filter, bias): its custom options are a
    TfLiteTransposeConvParams (padding 1 SAME or 2 VALID, stride width, stride height)."""
    raw = op.options.get("CustomOptions", b"")
    if len(raw) < 12:
        raise Unsupported("its custom options are not TfLiteTransposeConvParams (12 bytes or more)")
    padding, stride_w, stride_h = struct.unpack("<3i", raw[:12])
    _transposed_conv(b, op, tuple(op.inputs[:3]), padding == 1, (stride_h, stride_w), None)


def _transposed_conv(b: Builder, op: TflOp, indices, same: bool, strides, act) -> None:
    """A transpose convolution as the IR's ConvTranspose: the equivalent stride-1 conv (OIHW filter
    flipped) with pads from TFLite's: output row ``i * stride - pad_top + ky`` (pad_top = half
    of SAME's total padding, 0 for VALID); the output tensor's size gives the bottom/right pads."""
    x_index, w_index, bias_index = indices
    if b.quantized:
        raise Unsupported("quantized transpose convolutions are not supported")
    if b.data(w_index) is None:
        raise Unsupported("the filter must be constant")
    weight = b.real(w_index)
    in_shape, out_shape = b.t(x_index).shape, b.t(op.outputs[0]).shape
    if weight.ndim != 4 or weight.shape[3] != in_shape[3]:
        raise Unsupported(f"filter {list(weight.shape)} does not fit {in_shape[3]} input channels")
    kernel = tuple(int(k) for k in weight.shape[1:3])
    pads_begin, pads_end = [], []
    for n, out, k, s in zip(in_shape[1:3], out_shape[1:3], kernel, strides, strict=True):
        total = (n - 1) * s + k - out
        pads_begin.append(max(total, 0) // 2 if same else 0)
        pads_end.append(total - pads_begin[-1])
    span = [k - 1 for k in kernel]
    pads = (span[0] - pads_begin[0], span[1] - pads_begin[1], span[0] - pads_end[0], span[1] - pads_end[1])
    conv_weight = np.ascontiguousarray(weight.transpose(0, 3, 1, 2)[..., ::-1, ::-1])
    inputs = [b.x(x_index), b.const(w_index, conv_weight)]
    if bias_index >= 0:
        inputs.append(b.const(bias_index, b.real(bias_index)))
    attrs = dict(kernel_shape=kernel, strides=tuple(strides), pads=pads, dilations=(1, 1), group=1)
    b.emit(op, Op.CONV_TRANSPOSE, inputs, b.out(op.outputs[0]), act, **attrs)


# --- PAD folding --------------------------------------------------------------------------------


def pads_into_convolutions(model: TflModel, ops: list[TflOp]) -> dict[int, tuple[int, int, tuple]]:
    """PAD ops (zero / zero-point padding of H and W only) whose every consumer is a convolution,
    to fold into those convolutions' pads: op index -> (output, input, (top, left, bottom, right))."""
    consumers: dict[int, list[TflOp]] = {}
    for op in ops:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op)
    folds = {}
    for op in ops:
        if op.name != "PAD" or op.outputs[0] in model.outputs or len(op.inputs) < 2:
            continue
        users = consumers.get(op.outputs[0], [])
        paddings = model.tensors[op.inputs[1]].data
        if paddings is None or paddings.shape != (4, 2) or not users:
            continue
        if paddings[0].any() or paddings[3].any() or (paddings < 0).any():
            continue
        if all(u.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and u.inputs[0] == op.outputs[0] for u in users):
            pads = (int(paddings[1, 0]), int(paddings[2, 0]), int(paddings[1, 1]), int(paddings[2, 1]))
            folds[op.index] = (op.outputs[0], op.inputs[0], pads)
    return folds


# --- converters ---------------------------------------------------------------------------------


def conv_2d(b: Builder, op: TflOp) -> None:
    x_index, extra = b.pad_folds.get(op.inputs[0], (op.inputs[0], (0, 0, 0, 0)))
    x = b.x(x_index)
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    in_c = b.t(x_index).shape[3]
    if b.data(op.inputs[1]) is None:
        raise Unsupported("the filter must be constant")
    weight = b.real(op.inputs[1])
    if depthwise:  # (1, H, W, C*M) -> (C*M, 1, H, W)
        weight = weight.transpose(3, 0, 1, 2)
        group = in_c
        axis = 0
    else:  # OHWI -> OIHW
        weight = weight.transpose(0, 3, 1, 2)
        if in_c % weight.shape[1]:
            raise Unsupported(f"filter {list(b.t(op.inputs[1]).shape)} does not fit {in_c} input channels")
        group = in_c // weight.shape[1]
        axis = 0
    w_fmt = b.fmt(op.inputs[1], axis=axis) if b.quantized else None
    w = b.const(op.inputs[1], np.ascontiguousarray(weight), w_fmt)
    inputs = [x, w]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(
            b.const(op.inputs[2], b.real(op.inputs[2]), b.fmt(op.inputs[2], axis=0) if b.quantized else None)
        )
    kernel = tuple(weight.shape[2:])
    strides = (op.options.get("StrideH", 1), op.options.get("StrideW", 1))
    dilations = (op.options.get("DilationHFactor", 1), op.options.get("DilationWFactor", 1))
    padded_hw = (
        b.t(x_index).shape[1] + extra[0] + extra[2],
        b.t(x_index).shape[2] + extra[1] + extra[3],
    )
    pads = tuple(
        p + e for p, e in zip(window_pads(op, padded_hw, kernel, strides, dilations), extra, strict=True)
    )
    b.emit(
        op,
        Op.CONV,
        inputs,
        b.out(op.outputs[0]),
        fused(op),
        kernel_shape=kernel,
        strides=strides,
        pads=pads,
        dilations=dilations,
        group=group,
    )


def pad(b: Builder, op: TflOp) -> None:
    """PAD not folded into a convolution: concatenation with zero blocks, one axis at a time."""
    paddings = b.t(op.inputs[1]).data
    if paddings is None:
        raise Unsupported("paddings must be constant")
    if op.name == "PADV2" and len(op.inputs) > 2:
        value = b.real(op.inputs[2]).reshape(-1)
        if value.size and float(value[0]) != 0.0:
            raise Unsupported("PADV2 with a non-zero constant value")
    current = b.x(op.inputs[0])
    fmt = b.activation_fmt(op.outputs[0])
    rank = len(b.t(op.inputs[0]).shape)
    steps = [(axis, int(lo), int(hi)) for axis, (lo, hi) in enumerate(paddings) if lo or hi]
    if (paddings < 0).any():
        raise Unsupported("negative paddings")
    if not steps:
        b.alias(op.outputs[0], current)
        return
    for step, (axis, lo, hi) in enumerate(steps):
        target = ir_axis(axis, rank)
        shape = list(b.tensors[current].shape)
        parts = []
        for count, where in ((lo, "before"), (hi, "after")):
            if count:
                shape_part = list(shape)
                shape_part[target] = count
                parts.append(
                    b.const(
                        f"{b.t(op.outputs[0]).name}::pad_{axis}_{where}",
                        np.zeros(shape_part, np.float32),
                        fmt,
                    )
                )
        inputs = ([parts[0]] if lo else []) + [current] + ([parts[-1]] if hi else [])
        last = step == len(steps) - 1
        shape[target] += lo + hi
        output = (
            b.out(op.outputs[0])
            if last
            else b.temp(f"{b.t(op.outputs[0]).name}::pad{step}", tuple(shape), fmt)
        )
        b.emit(op, Op.CONCAT, inputs, output, suffix="" if last else f"/axis{axis}", axis=target)
        current = output


def fully_connected(b: Builder, op: TflOp) -> None:
    x_index = op.inputs[0]
    x = b.x(x_index)
    if b.data(op.inputs[1]) is None:
        raise Unsupported("the weights must be constant")
    weight = b.real(op.inputs[1])
    n, k = weight.shape
    x_shape = b.t(x_index).shape
    fmt_x = b.tensors[x].quant
    if len(x_shape) != 2 or x_shape[1] != k:
        if int(np.prod(x_shape)) % k:
            raise Unsupported(f"input {list(x_shape)} does not flatten to rows of {k}")
        x = b.to_tflite_order(op, x)
        flat = b.temp(f"{b.t(op.outputs[0]).name}::rows", (int(np.prod(x_shape)) // k, k), fmt_x)
        b.emit(op, Op.RESHAPE, [x], flat, suffix="/rows", shape=(int(np.prod(x_shape)) // k, k))
        x = flat
    inputs = [
        x,
        b.const(
            op.inputs[1],
            np.ascontiguousarray(weight.astype(np.float32)),
            b.fmt(op.inputs[1], axis=0) if b.quantized else None,
        ),
    ]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(
            b.const(op.inputs[2], b.real(op.inputs[2]), b.fmt(op.inputs[2], axis=0) if b.quantized else None)
        )
    out_shape = b.t(op.outputs[0]).shape
    rows = b.tensors[x].shape[0]
    if tuple(out_shape) == (rows, n):
        b.emit(op, Op.GEMM, inputs, b.out(op.outputs[0]), fused(op))
        return
    fmt_out = b.activation_fmt(op.outputs[0])
    temp = b.temp(f"{b.t(op.outputs[0]).name}::rows", (rows, n), fmt_out)
    b.emit(op, Op.GEMM, inputs, temp, fused(op))
    _reshape_to(b, op, temp, op.outputs[0])


def _reshape_to(b: Builder, op: TflOp, source: str, out_index: int) -> None:
    """Reshape an IR tensor in TFLite order to TFLite tensor ``out_index`` (a 4-D result transposed)."""
    out_shape = b.t(out_index).shape
    if len(out_shape) != 4:
        b.emit(op, Op.RESHAPE, [source], b.out(out_index), suffix="/reshape", shape=tuple(out_shape))
        return
    fmt = b.activation_fmt(out_index)
    temp = b.temp(f"{b.t(out_index).name}::nhwc", tuple(out_shape), fmt)
    b.emit(op, Op.RESHAPE, [source], temp, suffix="/reshape", shape=tuple(out_shape))
    b.emit(op, Op.TRANSPOSE, [temp], b.out(out_index), suffix="/to_nchw", perm=TO_NCHW)


def reshape(b: Builder, op: TflOp) -> None:
    """RESHAPE, SQUEEZE, EXPAND_DIMS: row-major in TFLite (NHWC) order."""
    source_index = op.inputs[0]
    in_shape, out_shape = b.t(source_index).shape, b.t(op.outputs[0]).shape
    x = b.x(source_index)
    if _same_order(in_shape, out_shape):
        b.emit(op, Op.RESHAPE, [x], b.out(op.outputs[0]), shape=ir_shape(out_shape))
        return
    _reshape_to(b, op, b.to_tflite_order(op, x), op.outputs[0])


def _same_order(in_shape, out_shape) -> bool:
    """Whether the IR reshape of the NCHW tensors means the TFLite reshape: both 4-D with the same
    channel count and only unit axes moving, or neither 4-D."""
    if len(in_shape) != 4 and len(out_shape) != 4:
        return True
    if len(out_shape) != 4 and (in_shape[1] * in_shape[2] == 1 or in_shape[3] == 1):
        return True  # NHWC and NCHW flatten a 4-D tensor with H = W = 1 or C = 1 in the same order
    return len(in_shape) == 4 and len(out_shape) == 4 and tuple(in_shape) == tuple(out_shape)


def transpose(b: Builder, op: TflOp) -> None:
    perm = b.t(op.inputs[1]).data
    if perm is None:
        raise Unsupported("the permutation must be constant")
    in_rank, out_rank = len(b.t(op.inputs[0]).shape), len(b.t(op.outputs[0]).shape)
    a = TO_NHWC if in_rank == 4 else tuple(range(in_rank))
    c = TO_NCHW if out_rank == 4 else tuple(range(out_rank))
    ir_perm = tuple(int(a[int(perm[c[k]])]) for k in range(out_rank))
    b.emit(op, Op.TRANSPOSE, [b.x(op.inputs[0])], b.out(op.outputs[0]), perm=ir_perm)


def binary(ir_op: Op) -> Callable[[Builder, TflOp], None]:
    def convert(b: Builder, op: TflOp) -> None:
        out_rank = len(b.t(op.outputs[0]).shape)
        inputs = [_broadcast_operand(b, i, out_rank) for i in op.inputs[:2]]
        b.emit(op, ir_op, inputs, b.out(op.outputs[0]), fused(op))

    return convert


def _broadcast_operand(b: Builder, index: int, out_rank: int) -> str:
    """An elementwise operand; a constant of lower rank than a 4-D output is broadcast NHWC-wise."""
    tensor = b.t(index)
    if index in b.names or b.data(index) is None:
        name = b.x(index)
        if out_rank == 4 and len(tensor.shape) != 4 and tensor.shape and int(np.prod(tensor.shape)) > 1:
            raise Unsupported(
                f"computed operand {tensor.name!r} of rank {len(tensor.shape)} broadcast to 4-D"
            )
        return name
    data = b.real(index)
    if out_rank == 4 and data.ndim < 4:
        data = data.reshape((1,) * (4 - data.ndim) + data.shape)
    return b.const(index, ir_layout(data), b.operand_fmt(index))


def neg(b: Builder, op: TflOp) -> None:
    if b.quantized:
        raise Unsupported("integer NEG")
    minus = b.const(f"{b.t(op.outputs[0]).name}::minus_one", np.array(-1.0, np.float32))
    b.emit(op, Op.MUL, [b.x(op.inputs[0]), minus], b.out(op.outputs[0]))


def concatenation(b: Builder, op: TflOp) -> None:
    rank = len(b.t(op.outputs[0]).shape)
    axis = ir_axis(op.options.get("Axis", 0), rank)
    inputs = [_broadcast_operand(b, i, rank) for i in op.inputs]
    b.emit(op, Op.CONCAT, inputs, b.out(op.outputs[0]), fused(op), axis=axis)


def pool(ir_op: Op) -> Callable[[Builder, TflOp], None]:
    def convert(b: Builder, op: TflOp) -> None:
        o = op.options
        kernel = (o.get("FilterHeight", 1), o.get("FilterWidth", 1))
        strides = (o.get("StrideH", 1), o.get("StrideW", 1))
        in_hw = b.t(op.inputs[0]).shape[1:3]
        b.emit(
            op,
            ir_op,
            [b.x(op.inputs[0])],
            b.out(op.outputs[0]),
            fused(op),
            kernel_shape=kernel,
            strides=strides,
            dilations=(1, 1),
            pads=window_pads(op, in_hw, kernel, strides, (1, 1)),
            ceil_mode=0,
            count_include_pad=0,
        )

    return convert


def mean(b: Builder, op: TflOp) -> None:
    """MEAN over H and W of a 4-D tensor is a global average pool (TFLite's integer MEAN kernel);
    over other axes a ReduceMean on the remapped axes."""
    axes = b.data(op.inputs[1])
    in_shape = b.t(op.inputs[0]).shape
    if axes is None:
        raise Unsupported("the axes must be constant")
    rank = len(in_shape)
    axes = sorted({int(a) % rank for a in np.atleast_1d(axes)})
    x = b.x(op.inputs[0])
    out_shape = b.t(op.outputs[0]).shape
    keep = len(out_shape) == rank
    if rank == 4 and axes == [1, 2]:
        if keep:
            b.emit(op, Op.GLOBAL_AVGPOOL, [x], b.out(op.outputs[0]))
            return
        fmt = b.activation_fmt(op.outputs[0])
        pooled = b.temp(f"{b.t(op.outputs[0]).name}::pooled", (in_shape[0], in_shape[3], 1, 1), fmt)
        b.emit(op, Op.GLOBAL_AVGPOOL, [x], pooled)
        b.emit(op, Op.RESHAPE, [pooled], b.out(op.outputs[0]), suffix="/squeeze", shape=tuple(out_shape))
        return
    ir_axes = tuple(sorted(ir_axis(a, rank) for a in axes))
    if keep or rank != 4:
        b.emit(op, Op.REDUCE_MEAN, [x], b.out(op.outputs[0]), axes=ir_axes, keepdims=int(keep))
        return
    reduced = tuple(1 if i in ir_axes else n for i, n in enumerate(b.tensors[x].shape))
    kept = b.temp(f"{b.t(op.outputs[0]).name}::kept", reduced, b.activation_fmt(op.outputs[0]))
    b.emit(op, Op.REDUCE_MEAN, [x], kept, axes=ir_axes, keepdims=1)
    _reshape_to(b, op, b.to_tflite_order(op, kept), op.outputs[0])


def _slice(b: Builder, op: TflOp, source: int, out: int, starts, stops, steps, suffix: str = "") -> None:
    """An IR Slice of TFLite tensor ``source`` (TFLite axes) into ``out`` of the same rank."""
    rank = len(b.t(source).shape)
    slices = [None] * rank
    for axis in range(rank):
        stop = stops[axis]
        slices[ir_axis(axis, rank)] = (
            int(starts[axis]),
            None if stop is None else int(stop),
            int(steps[axis]),
        )
    b.emit(op, Op.SLICE, [b.x(source)], b.out(out), suffix=suffix, slices=tuple(slices))


def split(b: Builder, op: TflOp) -> None:
    """SPLIT (axis, x) and SPLIT_V (x, sizes, axis): one Slice per output, sizes from the outputs."""
    axis_index, source = (op.inputs[0], op.inputs[1]) if op.name == "SPLIT" else (op.inputs[2], op.inputs[0])
    axis_value = b.data(axis_index)
    if axis_value is None:
        raise Unsupported("the axis must be constant")
    shape = b.t(source).shape
    axis = int(np.asarray(axis_value).reshape(-1)[0]) % len(shape)
    start = 0
    for position, out in enumerate(op.outputs):
        size = b.t(out).shape[axis]
        starts, stops = [0] * len(shape), list(shape)
        starts[axis], stops[axis] = start, start + size
        _slice(b, op, source, out, starts, stops, [1] * len(shape), suffix=f"/{position}")
        start += size


def slice_(b: Builder, op: TflOp) -> None:
    """SLICE (begin, size; -1 to the end) and STRIDED_SLICE (begin, end, strides with begin/end
    masks and shrink_axis_mask; no ellipsis or new axes)."""
    source, out = op.inputs[0], op.outputs[0]
    shape = b.t(source).shape
    values = [b.data(i) for i in op.inputs[1:]]
    if any(v is None for v in values):
        raise Unsupported("begin/end/strides must be constant")
    o = op.options
    if op.name == "SLICE":
        begin, size = (np.asarray(v).reshape(-1) for v in values)
        starts = [int(v) for v in begin]
        stops = [n if int(z) == -1 else int(a) + int(z) for a, z, n in zip(begin, size, shape, strict=True)]
        steps = [1] * len(shape)
        shrink = 0
    else:
        if o.get("EllipsisMask", 0) or o.get("NewAxisMask", 0) or o.get("Offset", False):
            raise Unsupported("ellipsis, new-axis masks and offset are not supported")
        begin, end, strides = (np.asarray(v).reshape(-1) for v in values)
        starts, stops, steps = [], [], []
        shrink = o.get("ShrinkAxisMask", 0)
        for axis, n in enumerate(shape):
            step = int(strides[axis])
            lo = None if o.get("BeginMask", 0) >> axis & 1 else int(begin[axis])
            hi = None if o.get("EndMask", 0) >> axis & 1 else int(end[axis])
            if shrink >> axis & 1:
                hi, step = (lo + 1 if lo != -1 else None), 1
            start, stop, step = slice(lo, hi, step).indices(n)
            starts.append(start)
            stops.append(None if stop < 0 else stop)
            steps.append(step)
    if not shrink:
        _slice(b, op, source, out, starts, stops, steps)
        return
    kept = tuple(
        len(range(*slice(a, z, p).indices(n))) for a, z, p, n in zip(starts, stops, steps, shape, strict=True)
    )
    fmt = b.activation_fmt(out)
    temp = b.temp(f"{b.t(out).name}::sliced", ir_shape(kept), fmt)
    slices = [None] * len(shape)
    for axis in range(len(shape)):
        slices[ir_axis(axis, len(shape))] = (starts[axis], stops[axis], steps[axis])
    b.emit(op, Op.SLICE, [b.x(source)], temp, suffix="/slice", slices=tuple(slices))
    _reshape_to(b, op, b.to_tflite_order(op, temp), out)


def softmax(b: Builder, op: TflOp) -> None:
    beta = float(op.options.get("Beta", 1.0))
    if beta != 1.0:
        raise Unsupported(f"softmax with beta {beta} (only 1.0)")
    rank = len(b.t(op.inputs[0]).shape)
    b.emit(op, Op.SOFTMAX, [b.x(op.inputs[0])], b.out(op.outputs[0]), axis=ir_axis(rank - 1, rank))


def unary(ir_op: Op, **attrs) -> Callable[[Builder, TflOp], None]:
    def convert(b: Builder, op: TflOp) -> None:
        b.emit(op, ir_op, [b.x(op.inputs[0])], b.out(op.outputs[0]), **attrs)

    return convert


def leaky_relu(b: Builder, op: TflOp) -> None:
    alpha = float(op.options.get("Alpha", 0.2))
    b.emit(op, Op.LEAKY_RELU, [b.x(op.inputs[0])], b.out(op.outputs[0]), alpha=alpha)


def prelu(b: Builder, op: TflOp) -> None:
    alpha = b.real(op.inputs[1]).astype(np.float32).reshape(-1) * np.float32(
        op.options.get("AlphaScale", 1.0)
    )
    channels = b.t(op.inputs[0]).shape[-1]
    if alpha.size not in (1, channels):
        raise Unsupported(f"alpha of shape {list(b.t(op.inputs[1]).shape)} is not per channel")
    fmt = b.operand_fmt(op.inputs[1]) if op.options.get("AlphaScale", 1.0) == 1.0 else None
    data = np.broadcast_to(b.real(op.inputs[1]).reshape(-1), (channels,)).copy() if fmt else alpha
    slope = b.const(f"{b.t(op.outputs[0]).name}::slope", np.broadcast_to(data, (channels,)).copy(), fmt)
    b.emit(op, Op.PRELU, [b.x(op.inputs[0]), slope], b.out(op.outputs[0]))


def resize(b: Builder, op: TflOp) -> None:
    if len(b.t(op.inputs[0]).shape) != 4:
        raise Unsupported("only 4-D inputs")
    align, half = op.options.get("AlignCorners", False), op.options.get("HalfPixelCenters", False)
    bilinear = op.name == "RESIZE_BILINEAR"
    ctm = "align_corners" if align else ("half_pixel" if half else "asymmetric")
    nearest_mode = "round_prefer_ceil" if (align or half) else "floor"
    out_shape = b.t(op.outputs[0]).shape
    b.emit(
        op,
        Op.RESIZE,
        [b.x(op.inputs[0])],
        b.out(op.outputs[0]),
        mode="linear" if bilinear else "nearest",
        coordinate_transformation_mode=ctm,
        nearest_mode=nearest_mode,
        size=tuple(out_shape[1:3]),
    )


def quantize(b: Builder, op: TflOp) -> None:
    """QUANTIZE of a float graph input: the input takes the format; of an integer tensor: a requantization."""
    source = b.t(op.inputs[0])
    if source.dtype in INTEGER_TYPES:
        b.emit(op, Op.CLIP, [b.x(op.inputs[0])], b.out(op.outputs[0]), lo=float("-inf"), hi=float("inf"))
        return
    if op.inputs[0] not in b.model.inputs:
        raise Unsupported("QUANTIZE of a computed float tensor (a float island)")
    name = b.names[op.inputs[0]]
    b.tensors[name] = Tensor(name, b.tensors[name].shape, "float32", quant=b.fmt(op.outputs[0]))
    b.quantized = True
    b.alias(op.outputs[0], name)


def dequantize(b: Builder, op: TflOp) -> None:
    """DEQUANTIZE of a constant (fp16 or int8 weights) folds; of a graph output, the output keeps
    its integer format (the engine dequantizes outputs)."""
    if b.data(op.inputs[0]) is not None and op.inputs[0] not in b.names:
        b.folded[op.outputs[0]] = b.real(op.inputs[0]).astype(np.float32)
        return
    if op.outputs[0] in b.model.outputs:
        b.alias(op.outputs[0], b.x(op.inputs[0]))
        return
    raise Unsupported("DEQUANTIZE of a computed tensor inside the graph (a float island)")


def depth_to_space(b: Builder, op: TflOp) -> None:
    """DEPTH_TO_SPACE (depth taken as block row, block column, channel): on the IR's NCHW tensor,
    a reshape to N x b x b x C' x H x W, a transpose to N x C' x H x b x W x b and a reshape."""
    block = int(op.options["BlockSize"])
    n, h, w, c = b.t(op.inputs[0]).shape
    depth = c // (block * block)
    fmt = b.activation_fmt(op.outputs[0])
    name = b.t(op.outputs[0]).name
    split = b.temp(f"{name}::blocks", (n, block, block, depth, h, w), fmt)
    moved = b.temp(f"{name}::moved", (n, depth, h, block, w, block), fmt)
    b.emit(op, Op.RESHAPE, [b.x(op.inputs[0])], split, suffix="/split", shape=(n, block, block, depth, h, w))
    b.emit(op, Op.TRANSPOSE, [split], moved, suffix="/move", perm=(0, 3, 4, 1, 5, 2))
    b.emit(op, Op.RESHAPE, [moved], b.out(op.outputs[0]), shape=(n, depth, h * block, w * block))


def densify(b: Builder, op: TflOp) -> None:
    """DENSIFY of a sparse constant: the reader has given its output the dense data already."""
    if b.data(op.outputs[0]) is None:
        raise Unsupported("DENSIFY of a computed tensor")


CONVERTERS: dict[str, Callable[[Builder, TflOp], None]] = {
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": conv_2d,
    "FULLY_CONNECTED": fully_connected,
    "ADD": binary(Op.ADD),
    "SUB": binary(Op.SUB),
    "MUL": binary(Op.MUL),
    "DIV": binary(Op.DIV),
    "NEG": neg,
    "CONCATENATION": concatenation,
    "RESHAPE": reshape,
    "SQUEEZE": reshape,
    "EXPAND_DIMS": reshape,
    "TRANSPOSE": transpose,
    "MAX_POOL_2D": pool(Op.MAXPOOL),
    "AVERAGE_POOL_2D": pool(Op.AVGPOOL),
    "MEAN": mean,
    "SPLIT": split,
    "SPLIT_V": split,
    "SLICE": slice_,
    "STRIDED_SLICE": slice_,
    "HARD_SWISH": unary(Op.HARD_SWISH),
    "SQRT": unary(Op.SQRT),
    "PAD": pad,
    "PADV2": pad,
    "SOFTMAX": softmax,
    "LOGISTIC": unary(Op.SIGMOID),
    "EXP": unary(Op.EXP),
    "RELU": unary(Op.RELU),
    "RELU6": unary(Op.CLIP, lo=0.0, hi=6.0),
    "RELU_N1_TO_1": unary(Op.CLIP, lo=-1.0, hi=1.0),
    "RELU_0_TO_1": unary(Op.CLIP, lo=0.0, hi=1.0),
    "LEAKY_RELU": leaky_relu,
    "PRELU": prelu,
    "RESIZE_BILINEAR": resize,
    "RESIZE_NEAREST_NEIGHBOR": resize,
    "QUANTIZE": quantize,
    "DEQUANTIZE": dequantize,
    "DENSIFY": densify,
    "DEPTH_TO_SPACE": depth_to_space,
    "TRANSPOSE_CONV": transpose_conv,
    "CUSTOM(Convolution2DTransposeBias)": transpose_conv_bias,
}
