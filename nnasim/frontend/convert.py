"""One converter per ONNX op: ONNX NodeProto -> IR nodes with normalised attributes.

``CONVERTERS`` is the frontend's table of supported ops; SUPPORTED_OPS.md is generated
from it. A converter receives the import context and the node, and returns IR nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

from nnasim.errors import ModelError
from nnasim.ir import Node, Op


@dataclass
class Context:
    """What converters may read (constants, static shapes, opset) and add (new constants)."""

    label: str
    opset: int
    consts: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    new_consts: dict[str, np.ndarray] = field(default_factory=dict)

    def const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray | None:
        """Input ``index`` of ``node`` as a constant, None if absent, error if computed."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.consts:
            raise ModelError(f"{self.label}: node {node.name!r} ({node.op_type}): {what} must be constant")
        return self.consts[name]

    def add_const(self, name: str, value: np.ndarray) -> str:
        self.consts[name] = self.new_consts[name] = value
        self.shapes[name] = tuple(value.shape)
        return name

    def rank(self, name: str) -> int:
        return len(self.shapes[name])


Converter = Callable[[Context, onnx.NodeProto], list[Node]]


def attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _ir(node: onnx.NodeProto, op: Op, inputs=None, outputs=None, **attrs) -> Node:
    inputs = tuple(node.input) if inputs is None else tuple(inputs)
    return Node(node.name, op, inputs, tuple(outputs or node.output[:1]), attrs)


def _resolve_pads(ctx: Context, node: onnx.NodeProto, kernel, strides, dilations) -> tuple[int, ...]:
    """Explicit (top, left, bottom, right) pads, auto_pad resolved against the input shape."""
    attrs = attributes(node)
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        pads = tuple(attrs.get("pads", (0,) * 2 * len(kernel)))
    elif auto_pad == "VALID":
        pads = (0,) * 2 * len(kernel)
    else:
        size = ctx.shapes[node.input[0]][2:]
        begin, end = [], []
        for n, k, s, d in zip(size, kernel, strides, dilations, strict=True):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, large = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else large)
            end.append(large if auto_pad == "SAME_UPPER" else small)
        pads = tuple(begin + end)
    if any(p < 0 for p in pads):
        raise ModelError(f"{ctx.label}: node {node.name!r}: negative pads {pads}")
    return pads


def _require_2d(ctx: Context, node: onnx.NodeProto) -> None:
    if ctx.rank(node.input[0]) != 4:
        raise ModelError(
            f"{ctx.label}: node {node.name!r} ({node.op_type}): only 2-D spatial (NCHW) inputs are "
            f"supported, got shape {ctx.shapes[node.input[0]]}"
        )


def conv(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    _require_2d(ctx, node)
    weight = ctx.const(node, 1, "the weight")
    attrs = attributes(node)
    group = int(attrs.get("group", 1))
    channels = ctx.shapes[node.input[0]][1]
    if weight.ndim != 4 or group < 1 or channels != weight.shape[1] * group or weight.shape[0] % group:
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (Conv): weight {weight.shape} with group={group} does not fit "
            f"an input of {channels} channels"
        )
    bias = ctx.const(node, 2, "the bias")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (Conv): bias {bias.shape} is not one per output channel"
        )
    kernel = tuple(weight.shape[2:])
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    pads = _resolve_pads(ctx, node, kernel, strides, dilations)
    inputs = tuple(n for n in node.input if n)
    return [
        _ir(
            node,
            Op.CONV,
            inputs,
            kernel_shape=kernel,
            strides=strides,
            pads=pads,
            dilations=dilations,
            group=int(attrs.get("group", 1)),
        )
    ]


def pool(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    _require_2d(ctx, node)
    attrs = attributes(node)
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    if len(node.output) > 1 and node.output[1]:
        raise ModelError(f"{ctx.label}: node {node.name!r}: MaxPool's Indices output is not supported")
    op = Op.MAXPOOL if node.op_type == "MaxPool" else Op.AVGPOOL
    return [
        _ir(
            node,
            op,
            node.input[:1],
            kernel_shape=kernel,
            strides=strides,
            dilations=dilations,
            pads=_resolve_pads(ctx, node, kernel, strides, dilations),
            ceil_mode=int(attrs.get("ceil_mode", 0)),
            count_include_pad=int(attrs.get("count_include_pad", 0)),
        )
    ]


def global_avgpool(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    _require_2d(ctx, node)
    return [_ir(node, Op.GLOBAL_AVGPOOL, node.input[:1])]


def gemm(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Gemm with a constant B becomes ``y = A @ W.T + b`` (alpha, beta and transB folded in)."""
    attrs = attributes(node)
    if attrs.get("transA", 0):
        raise ModelError(f"{ctx.label}: node {node.name!r} (Gemm): transA=1 is not supported")
    weight = ctx.const(node, 1, "B (the weight)")
    weight = weight if attrs.get("transB", 0) else weight.T
    weight = (np.float32(attrs.get("alpha", 1.0)) * weight).astype(np.float32)
    features = int(np.prod(ctx.shapes[node.input[0]][1:]))
    if weight.ndim != 2 or ctx.rank(node.input[0]) != 2 or weight.shape[1] != features:
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (Gemm): B {weight.shape} does not fit input "
            f"{ctx.shapes[node.input[0]]}"
        )
    bias = ctx.const(node, 2, "C (the bias)")
    inputs = [node.input[0], ctx.add_const(f"{node.output[0]}::weight", np.ascontiguousarray(weight))]
    if bias is not None:
        if bias.size not in (1, weight.shape[0]):
            raise ModelError(
                f"{ctx.label}: node {node.name!r} (Gemm): C of shape {bias.shape} is not a per-output bias"
            )
        bias = np.broadcast_to(np.float32(attrs.get("beta", 1.0)) * bias.reshape(-1), (weight.shape[0],))
        inputs.append(ctx.add_const(f"{node.output[0]}::bias", bias.astype(np.float32)))
    return [_ir(node, Op.GEMM, inputs)]


def matmul(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """MatMul by a constant 2-D matrix on a 2-D input is a Gemm; other MatMuls stay."""
    b_name = node.input[1]
    if b_name in ctx.consts and ctx.consts[b_name].ndim == 2 and ctx.rank(node.input[0]) == 2:
        weight = np.ascontiguousarray(ctx.consts[b_name].T.astype(np.float32))
        inputs = [node.input[0], ctx.add_const(f"{node.output[0]}::weight", weight)]
        return [_ir(node, Op.GEMM, inputs)]
    return [_ir(node, Op.MATMUL)]


def batchnorm(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Inference BatchNormalization as a per-channel affine ``x * scale + bias`` on axis 1."""
    gamma, beta = ctx.const(node, 1, "scale"), ctx.const(node, 2, "B")
    mean, var = ctx.const(node, 3, "mean"), ctx.const(node, 4, "var")
    channels = ctx.shapes[node.input[0]][1] if ctx.rank(node.input[0]) > 1 else None
    if any(v.shape != (channels,) for v in (gamma, beta, mean, var)):
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (BatchNormalization): scale, B, mean and var must each hold "
            f"one value per channel ({channels})"
        )
    epsilon = np.float32(attributes(node).get("epsilon", 1e-5))
    if not np.all(var + epsilon > 0):
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (BatchNormalization): var + epsilon must be positive "
            f"(smallest {float(np.min(var + epsilon)):.3g})"
        )
    scale = (gamma / np.sqrt(var + epsilon)).astype(np.float32)
    bias = (beta - mean * scale).astype(np.float32)
    out = node.output[0]
    inputs = [node.input[0], ctx.add_const(f"{out}::scale", scale), ctx.add_const(f"{out}::bias", bias)]
    return [_ir(node, Op.BATCHNORM, inputs)]


def clip(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    attrs = attributes(node)
    lo, hi = ctx.const(node, 1, "min"), ctx.const(node, 2, "max")
    lo = float(lo) if lo is not None else float(attrs.get("min", -np.inf))
    hi = float(hi) if hi is not None else float(attrs.get("max", np.inf))
    return [_ir(node, Op.CLIP, node.input[:1], lo=lo, hi=hi)]


def prelu(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    slope = ctx.const(node, 1, "slope")
    channels = ctx.shapes[node.input[0]][1] if ctx.rank(node.input[0]) > 1 else 1
    if slope.size not in (1, channels) or (slope.size > 1 and max(slope.shape) != slope.size):
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (PRelu): slope shape {slope.shape} is not per-channel"
        )
    per_channel = np.broadcast_to(slope.reshape(-1), (channels,)).astype(np.float32)
    return [_ir(node, Op.PRELU, [node.input[0], ctx.add_const(f"{node.output[0]}::slope", per_channel)])]


def leaky_relu(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    return [_ir(node, Op.LEAKY_RELU, node.input[:1], alpha=float(attributes(node).get("alpha", 0.01)))]


def _axis(ctx: Context, node: onnx.NodeProto, default: int) -> int:
    axis = int(attributes(node).get("axis", default))
    rank = ctx.rank(node.input[0])
    return axis + rank if axis < 0 else axis


def softmax(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Softmax over one axis; opsets before 13 (softmax over the flattened tail) are reshaped to that."""
    rank = ctx.rank(node.input[0])
    axis = _axis(ctx, node, -1 if ctx.opset >= 13 else 1)
    if ctx.opset >= 13 or axis == rank - 1:
        return [_ir(node, Op.SOFTMAX, node.input[:1], axis=axis)]
    shape = ctx.shapes[node.input[0]]
    flat = (*shape[:axis], int(np.prod(shape[axis:])))
    a, b = f"{node.output[0]}::flat", f"{node.output[0]}::softmax"
    ctx.shapes[a] = ctx.shapes[b] = flat
    return [
        Node(f"{node.name}/flatten", Op.RESHAPE, (node.input[0],), (a,), {"shape": flat}),
        Node(node.name, Op.SOFTMAX, (a,), (b,), {"axis": axis}),
        Node(f"{node.name}/unflatten", Op.RESHAPE, (b,), (node.output[0],), {"shape": shape}),
    ]


def concat(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    return [_ir(node, Op.CONCAT, axis=_axis(ctx, node, 0))]


def reshape(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Reshape, Flatten, Squeeze and Unsqueeze: all a reshape to the inferred static shape."""
    return [_ir(node, Op.RESHAPE, node.input[:1], shape=ctx.shapes[node.output[0]])]


def transpose(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    perm = attributes(node).get("perm", tuple(reversed(range(ctx.rank(node.input[0])))))
    return [_ir(node, Op.TRANSPOSE, node.input[:1], perm=tuple(int(p) for p in perm))]


def slice_(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Slice with constant starts/ends/axes/steps, clamped to the input shape."""
    attrs = attributes(node)
    shape = ctx.shapes[node.input[0]]
    if ctx.opset < 10:
        starts, ends = attrs["starts"], attrs["ends"]
        axes, steps = attrs.get("axes", range(len(starts))), [1] * len(starts)
    else:
        starts, ends = ctx.const(node, 1, "starts"), ctx.const(node, 2, "ends")
        axes, steps = ctx.const(node, 3, "axes"), ctx.const(node, 4, "steps")
        axes = range(len(starts)) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
    slices = [[0, n, 1] for n in shape]
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = int(axis) + len(shape) if axis < 0 else int(axis)
        slices[axis] = _python_slice(int(start), int(end), int(step), shape[axis])
    return [_ir(node, Op.SLICE, node.input[:1], slices=tuple(tuple(s) for s in slices))]


def _python_slice(start: int, end: int, step: int, size: int) -> list:
    """(start, stop, step) clamped to ``size``; a reverse slice that runs past index 0 gets stop None.

    ``slice.indices`` reports that stop as -1, which Python indexing would read as "the last element".
    """
    if step == 0:
        raise ValueError("Slice step 0")
    start, stop, step = slice(start, end, step).indices(size)
    return [start, None if stop < 0 else stop, step]


def resize(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Resize and Upsample (nearest, linear) on the two spatial axes, to the inferred output size."""
    _require_2d(ctx, node)
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attributes(node).items()}
    mode = attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise ModelError(f"{ctx.label}: node {node.name!r} ({node.op_type}): mode {mode!r} is not supported")
    in_shape, out_shape = ctx.shapes[node.input[0]], ctx.shapes[node.output[0]]
    if in_shape[:2] != out_shape[:2]:
        raise ModelError(f"{ctx.label}: node {node.name!r}: only spatial (H, W) resizing is supported")
    default_ctm = "asymmetric" if node.op_type == "Upsample" or ctx.opset < 11 else "half_pixel"
    return [
        _ir(
            node,
            Op.RESIZE,
            node.input[:1],
            mode="nearest" if mode == "nearest" else "linear",
            coordinate_transformation_mode=attrs.get("coordinate_transformation_mode", default_ctm),
            nearest_mode=attrs.get("nearest_mode", "round_prefer_floor" if ctx.opset >= 11 else "floor"),
            size=tuple(out_shape[2:]),
        )
    ]


def conv_transpose(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """ConvTranspose as its equivalent convolution: stride-1 conv with the flipped, regrouped weight
    over the input with ``stride - 1`` zeros inserted between pixels (``strides``) and padded (or
    cropped, for negative values) by ``pads``, so both engines reuse their Conv.
    """
    _require_2d(ctx, node)
    weight = ctx.const(node, 1, "the weight")
    attrs = attributes(node)
    group = int(attrs.get("group", 1))
    channels = ctx.shapes[node.input[0]][1]
    if weight.ndim != 4 or weight.shape[0] != channels or channels % group:
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (ConvTranspose): weight {weight.shape} with group={group} "
            f"does not fit an input of {channels} channels"
        )
    kernel = tuple(int(k) for k in weight.shape[2:])
    strides = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    dilations = tuple(int(d) for d in attrs.get("dilations", (1, 1)))
    in_hw, out_hw = ctx.shapes[node.input[0]][2:], ctx.shapes[node.output[0]][2:]
    begin, end = _transpose_pads(ctx, node, attrs, in_hw, out_hw, kernel, strides, dilations)
    span = [(k - 1) * d for k, d in zip(kernel, dilations, strict=True)]
    pads = (span[0] - begin[0], span[1] - begin[1], span[0] - end[0], span[1] - end[1])
    cin_g, cout_g = channels // group, weight.shape[1]
    regrouped = weight.reshape(group, cin_g, cout_g, *kernel).transpose(0, 2, 1, 3, 4)
    conv_weight = np.ascontiguousarray(regrouped.reshape(group * cout_g, cin_g, *kernel)[..., ::-1, ::-1])
    inputs = [node.input[0], ctx.add_const(f"{node.output[0]}::weight", conv_weight.astype(np.float32))]
    bias = ctx.const(node, 2, "the bias")
    if bias is not None:
        inputs.append(node.input[2])
    return [
        _ir(
            node,
            Op.CONV_TRANSPOSE,
            inputs,
            kernel_shape=kernel,
            strides=strides,
            pads=pads,
            dilations=dilations,
            group=group,
        )
    ]


def _transpose_pads(ctx, node, attrs, in_hw, out_hw, kernel, strides, dilations):
    """(begin, end) pads of ConvTranspose, ``end`` net of output_padding, from the inferred output size."""
    full = [
        (i - 1) * s + (k - 1) * d + 1 for i, s, k, d in zip(in_hw, strides, kernel, dilations, strict=True)
    ]
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if "output_shape" not in attrs and auto_pad in ("NOTSET", ""):
        pads = list(attrs.get("pads", (0, 0, 0, 0)))
        begin = pads[:2]
    else:
        totals = [f - o for f, o in zip(full, out_hw, strict=True)]
        upper = auto_pad == "SAME_UPPER"
        begin = [t // 2 if upper else t - t // 2 for t in totals]
    end = [f - b - o for f, b, o in zip(full, begin, out_hw, strict=True)]
    return begin, end


def split(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Split into one Slice per output, the sizes taken from shape inference (any opset's form)."""
    axis = _axis(ctx, node, 0)
    shape = ctx.shapes[node.input[0]]
    nodes, start = [], 0
    for index, out in enumerate(node.output):
        size = ctx.shapes[out][axis]
        slices = [(0, n, 1) for n in shape]
        slices[axis] = (start, start + size, 1)
        start += size
        if out:
            nodes.append(
                Node(f"{node.name}/{index}", Op.SLICE, (node.input[0],), (out,), {"slices": tuple(slices)})
            )
    return nodes


def hard_sigmoid(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    attrs = attributes(node)
    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    return [_ir(node, Op.HARD_SIGMOID, node.input[:1], alpha=alpha, beta=beta)]


def pow_(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """Pow by a constant scalar exponent (2 and 0.5 are the common ones): an elementwise function."""
    exponent = ctx.const(node, 1, "the exponent")
    if exponent.size != 1:
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (Pow): only a scalar exponent is supported, got shape "
            f"{exponent.shape}"
        )
    return [_ir(node, Op.POW, node.input[:1], exponent=float(exponent.reshape(-1)[0]))]


def reduce_mean(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    attrs = attributes(node)
    rank = ctx.rank(node.input[0])
    axes = ctx.const(node, 1, "axes") if ctx.opset >= 18 else attrs.get("axes")
    if axes is None or len(axes) == 0:
        if attrs.get("noop_with_empty_axes", 0):
            return [_ir(node, Op.IDENTITY, node.input[:1])]
        axes = range(rank)
    axes = tuple(sorted(int(a) % rank for a in np.asarray(axes).reshape(-1)))
    return [_ir(node, Op.REDUCE_MEAN, node.input[:1], axes=axes, keepdims=int(attrs.get("keepdims", 1)))]


def layer_norm(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """LayerNormalization over the trailing axes from ``axis``; constant scale and bias."""
    if any(node.output[1:]):
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (LayerNormalization): the Mean and InvStdDev outputs are not "
            "supported"
        )
    axis = _axis(ctx, node, -1)
    shape = ctx.shapes[node.input[0]]
    scale = ctx.const(node, 1, "the scale")
    bias = ctx.const(node, 2, "the bias")
    bias = np.zeros_like(scale) if bias is None else bias
    try:
        scale, bias = (np.broadcast_to(v, shape[axis:]).astype(np.float32) for v in (scale, bias))
    except ValueError:
        raise ModelError(
            f"{ctx.label}: node {node.name!r} (LayerNormalization): scale/bias do not fit the normalised "
            f"shape {shape[axis:]}"
        ) from None
    out = node.output[0]
    inputs = [node.input[0], ctx.add_const(f"{out}::scale", scale), ctx.add_const(f"{out}::bias", bias)]
    epsilon = float(attributes(node).get("epsilon", 1e-5))
    return [_ir(node, Op.LAYER_NORM, inputs, axis=axis, epsilon=epsilon)]


class _Emitter:
    """Appends IR nodes with fresh, shape-registered output tensors (for converters that unroll)."""

    def __init__(self, ctx: Context, node: onnx.NodeProto):
        self.ctx, self.prefix, self.nodes = ctx, node.name, []

    def __call__(self, op: Op, inputs, out_shape, out: str | None = None, **attrs) -> str:
        out = out or f"{self.prefix}::{len(self.nodes)}"
        self.ctx.shapes[out] = tuple(out_shape)
        self.nodes.append(Node(f"{self.prefix}/{len(self.nodes)}", op, tuple(inputs), (out,), attrs))
        return out


LSTM_DEFAULT_ACTIVATIONS = ["Sigmoid", "Tanh", "Tanh"]


def lstm(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    """LSTM unrolled over its (static) sequence into MatMul/Gemm, Add, Sigmoid, Tanh and Mul nodes:
    both engines then run it with their existing kernels (integer: tables and exact products).

    Default activations, no peepholes, clip or input_forget; full sequence lengths; constant
    initial states (zeros or not). ONNX gate order i, o, f, c.
    """
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attributes(node).items()}
    activations = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    unsupported = [
        name
        for name, bad in (
            ("activations", activations not in ([], LSTM_DEFAULT_ACTIVATIONS, LSTM_DEFAULT_ACTIVATIONS * 2)),
            ("clip", "clip" in attrs),
            ("input_forget", attrs.get("input_forget", 0)),
            ("layout", attrs.get("layout", 0)),
            ("peepholes (P)", len(node.input) > 7 and node.input[7]),
            ("sequence_lens", len(node.input) > 4 and node.input[4]),
        )
        if bad
    ]
    if unsupported:
        raise ModelError(f"{ctx.label}: node {node.name!r} (LSTM): {', '.join(unsupported)} not supported")
    w, r = ctx.const(node, 1, "W"), ctx.const(node, 2, "R")
    bias = ctx.const(node, 3, "B")
    init_h, init_c = ctx.const(node, 5, "initial_h"), ctx.const(node, 6, "initial_c")
    seq, batch, _ = ctx.shapes[node.input[0]]
    dirs, hidden = w.shape[0], int(attrs["hidden_size"])
    direction = attrs.get("direction", "forward")
    emit = _Emitter(ctx, node)
    ys, last_h, last_c = [], [], []
    for d in range(dirs):
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        h, c, y_steps = _lstm_direction(
            ctx, emit, node, d, w, r, bias, init_h, init_c, seq, batch, hidden, reverse
        )
        ys.append(emit(Op.CONCAT, y_steps, (seq, 1, batch, hidden), axis=0))
        last_h.append(emit(Op.RESHAPE, [h], (1, batch, hidden), shape=(1, batch, hidden)))
        last_c.append(emit(Op.RESHAPE, [c], (1, batch, hidden), shape=(1, batch, hidden)))
    outputs = [node.output[i] if len(node.output) > i else "" for i in range(3)]
    for out, parts, shape, axis in (
        (outputs[0], ys, (seq, dirs, batch, hidden), 1),
        (outputs[1], last_h, (dirs, batch, hidden), 0),
        (outputs[2], last_c, (dirs, batch, hidden), 0),
    ):
        if out and dirs > 1:
            emit(Op.CONCAT, parts, shape, out=out, axis=axis)
        elif out:
            emit(Op.RESHAPE, parts, shape, out=out, shape=shape)
    return emit.nodes


def _lstm_direction(ctx, emit, node, d, w, r, bias, init_h, init_c, seq, batch, hidden, reverse):
    """One direction's steps: (last h, last c, the per-step (1, 1, batch, hidden) outputs in time order)."""
    name = node.output[0] or node.name
    w_t = ctx.add_const(f"{name}::W{d}", np.ascontiguousarray(w[d].T.astype(np.float32)))
    r_t = ctx.add_const(f"{name}::R{d}", np.ascontiguousarray(r[d].astype(np.float32)))  # Gemm: x @ R.T
    projected = emit(Op.MATMUL, [node.input[0], w_t], (seq, batch, 4 * hidden))
    if bias is not None:
        b = (bias[d, : 4 * hidden] + bias[d, 4 * hidden :]).astype(np.float32)
        projected = emit(Op.ADD, [projected, ctx.add_const(f"{name}::B{d}", b)], (seq, batch, 4 * hidden))
    h = None if init_h is None or not init_h.any() else ctx.add_const(f"{name}::h0_{d}", init_h[d])
    c = None if init_c is None or not init_c.any() else ctx.add_const(f"{name}::c0_{d}", init_c[d])
    steps: dict[int, str] = {}
    shape = (batch, hidden)
    for t in reversed(range(seq)) if reverse else range(seq):
        x_t = emit(
            Op.SLICE,
            [projected],
            (1, batch, 4 * hidden),
            slices=((t, t + 1, 1), (0, batch, 1), (0, 4 * hidden, 1)),
        )
        gates = emit(Op.RESHAPE, [x_t], (batch, 4 * hidden), shape=(batch, 4 * hidden))
        if h is not None:
            gates = emit(Op.ADD, [gates, emit(Op.GEMM, [h, r_t], (batch, 4 * hidden))], (batch, 4 * hidden))
        i, o, f, g = (
            emit(Op.SLICE, [gates], shape, slices=((0, batch, 1), (k * hidden, (k + 1) * hidden, 1)))
            for k in range(4)
        )
        i, o, f = (emit(Op.SIGMOID, [v], shape) for v in (i, o, f))
        g = emit(Op.TANH, [g], shape)
        new_c = emit(Op.MUL, [i, g], shape)
        if c is not None:
            new_c = emit(Op.ADD, [emit(Op.MUL, [f, c], shape), new_c], shape)
        c = new_c
        h = emit(Op.MUL, [o, emit(Op.TANH, [c], shape)], shape)
        steps[t] = emit(Op.RESHAPE, [h], (1, 1, batch, hidden), shape=(1, 1, batch, hidden))
    return h, c, [steps[t] for t in range(seq)]


def quantize(ctx: Context, node: onnx.NodeProto) -> list[Node]:
    ctx.const(node, 1, "the scale")
    ctx.const(node, 2, "the zero point")
    op = Op.QUANTIZE if node.op_type == "QuantizeLinear" else Op.DEQUANTIZE
    return [_ir(node, op, axis=_axis(ctx, node, 1))]


def simple(op: Op, n_inputs: int | None = None) -> Converter:
    """A converter for ops without attributes to normalise (keeps the first ``n_inputs`` inputs)."""

    def convert(ctx: Context, node: onnx.NodeProto) -> list[Node]:
        return [_ir(node, op, node.input[:n_inputs] if n_inputs else None)]

    return convert


CONVERTERS: dict[str, Converter] = {
    "Conv": conv,
    "ConvTranspose": conv_transpose,
    "Split": split,
    "HardSigmoid": hard_sigmoid,
    "HardSwish": simple(Op.HARD_SWISH),
    "Sqrt": simple(Op.SQRT),
    "Pow": pow_,
    "Erf": simple(Op.ERF),
    "Tanh": simple(Op.TANH),
    "LSTM": lstm,
    "ReduceMean": reduce_mean,
    "LayerNormalization": layer_norm,
    "BatchNormalization": batchnorm,
    "Relu": simple(Op.RELU),
    "PRelu": prelu,
    "LeakyRelu": leaky_relu,
    "Clip": clip,
    "Sigmoid": simple(Op.SIGMOID),
    "Exp": simple(Op.EXP),
    "Softmax": softmax,
    "Add": simple(Op.ADD),
    "Sub": simple(Op.SUB),
    "Mul": simple(Op.MUL),
    "Div": simple(Op.DIV),
    "Concat": concat,
    "MaxPool": pool,
    "AveragePool": pool,
    "GlobalAveragePool": global_avgpool,
    "Gemm": gemm,
    "MatMul": matmul,
    "Flatten": reshape,
    "Reshape": reshape,
    "Squeeze": reshape,
    "Unsqueeze": reshape,
    "Transpose": transpose,
    "Slice": slice_,
    "Upsample": resize,
    "Resize": resize,
    "Identity": simple(Op.IDENTITY, 1),
    "Dropout": simple(Op.DROPOUT, 1),
    "QuantizeLinear": quantize,
    "DequantizeLinear": quantize,
}

# Ops evaluated at import time when all their inputs are constant (shape arithmetic).
CONSTANT_ONLY_OPS = (
    "Constant",
    "Shape",
    "Gather",
    "Cast",
    "ConstantOfShape",
    "Range",
    "ReduceProd",
    "Floor",
    "Ceil",
    "Equal",
    "Where",
    "Expand",
    "Size",
    "Tile",
)
