"""The fp32 executor: runs the IR in numpy (NCHW), the baseline of every comparison.

It must match onnxruntime to well below quantization noise; tests check it on every
built-in and trained model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import special

from nnasim.errors import DataError, ModelError
from nnasim.ir import Activation, Graph, Node, Op

Kernel = Callable[[Graph, Node, list[np.ndarray]], np.ndarray]


def _pad_spatial(x: np.ndarray, pads, value: float) -> np.ndarray:
    top, left, bottom, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _windows(x: np.ndarray, kernel, strides, dilations, out_hw) -> np.ndarray:
    """View of shape (N, C, OH, OW, KH, KW) over an already padded NCHW input."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    view = sliding_window_view(x, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    return view[:, :, : out_hw[0], : out_hw[1]]


def conv(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    x, weight = args[0], args[1]
    out_shape = graph.shape(node.outputs[0])
    a = node.attrs
    x = _pad_spatial(x, a["pads"], 0.0)
    x = _extend_with(x, out_shape[2:], a, 0.0)
    windows = _windows(x, a["kernel_shape"], a["strides"], a["dilations"], out_shape[2:])
    group = a["group"]
    if group == x.shape[1] == weight.shape[0]:  # depthwise, channel multiplier 1 (not a 1-channel conv)
        out = _depthwise(windows, weight)
    else:
        out = np.concatenate(
            [_dense_conv(w_x, w) for w_x, w in _split_groups(windows, weight, group)], axis=1
        )
    if len(args) > 2:
        out += args[2].reshape(1, -1, 1, 1)
    return out


def _split_groups(windows: np.ndarray, weight: np.ndarray, group: int):
    cin, cout = windows.shape[1] // group, weight.shape[0] // group
    for g in range(group):
        yield windows[:, g * cin : (g + 1) * cin], weight[g * cout : (g + 1) * cout]


def _dense_conv(windows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    n, c, oh, ow, kh, kw = windows.shape
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    out = cols @ weight.reshape(weight.shape[0], -1).T.astype(np.float32)
    return out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2)


def _depthwise(windows: np.ndarray, weight: np.ndarray) -> np.ndarray:
    n, c, oh, ow, kh, kw = windows.shape
    out = np.zeros((n, c, oh, ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            out += windows[..., i, j] * weight[:, 0, i, j].reshape(1, c, 1, 1)
    return out


def conv_transpose(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    """The frontend's equivalent convolution over the zero-inserted, padded (or cropped) input."""
    x = pad_or_crop(zero_insert(args[0], node.attrs["strides"], 0.0), node.attrs["pads"], 0.0)
    attrs = {**node.attrs, "strides": (1, 1), "pads": (0, 0, 0, 0)}
    return conv(graph, node.with_(attrs=attrs), [x, *args[1:]])


def zero_insert(x: np.ndarray, strides, fill) -> np.ndarray:
    """NCHW ``x`` with ``stride - 1`` pixels of value ``fill`` between neighbours (H and W)."""
    (sh, sw), (n, c, h, w) = strides, x.shape
    out = np.full((n, c, (h - 1) * sh + 1, (w - 1) * sw + 1), fill, x.dtype)
    out[:, :, ::sh, ::sw] = x
    return out


def pad_or_crop(x: np.ndarray, pads, fill) -> np.ndarray:
    """Pad H, W by (top, left, bottom, right) with ``fill``; negative values crop instead."""
    top, left, bottom, right = pads
    x = x[:, :, max(-top, 0) : x.shape[2] - max(-bottom, 0), max(-left, 0) : x.shape[3] - max(-right, 0)]
    return _pad_spatial(x, tuple(max(p, 0) for p in pads), fill)


def max_pool(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    a = node.attrs
    out_hw = graph.shape(node.outputs[0])[2:]
    x = _pad_spatial(args[0], a["pads"], -np.inf)
    x = _extend_with(x, out_hw, a, -np.inf)
    return _windows(x, a["kernel_shape"], a["strides"], a["dilations"], out_hw).max(axis=(4, 5))


def avg_pool(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    a = node.attrs
    out_hw = graph.shape(node.outputs[0])[2:]
    x = _extend_with(_pad_spatial(args[0], a["pads"], 0.0), out_hw, a, 0.0)
    total = _windows(x, a["kernel_shape"], a["strides"], a["dilations"], out_hw).sum(axis=(4, 5))
    ones = np.ones((1, 1, *args[0].shape[2:]), np.float32)
    ones = _pad_spatial(ones, a["pads"], 1.0 if a["count_include_pad"] else 0.0)
    count = _windows(
        _extend_with(ones, out_hw, a, 0.0), a["kernel_shape"], a["strides"], a["dilations"], out_hw
    )
    return (total / count.sum(axis=(4, 5))).astype(np.float32)


def _extend_with(x: np.ndarray, out_hw, attrs, value: float) -> np.ndarray:
    """Pad the bottom/right edge with ``value`` where ceil-mode outputs need windows past the input."""
    need = [
        (o - 1) * s + (k - 1) * d + 1
        for o, k, s, d in zip(
            out_hw, attrs["kernel_shape"], attrs["strides"], attrs["dilations"], strict=True
        )
    ]
    extra = [max(n - size, 0) for n, size in zip(need, x.shape[2:], strict=True)]
    if not any(extra):
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])), constant_values=value)


def gemm(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    x = args[0].reshape(args[0].shape[0], -1)
    out = x @ args[1].T
    return out + args[2] if len(args) > 2 else out


def batchnorm(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    x, scale, bias = args
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x * scale.reshape(shape) + bias.reshape(shape)


def softmax(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    x = args[0]
    e = np.exp(x - x.max(axis=node.attrs["axis"], keepdims=True))
    return e / e.sum(axis=node.attrs["axis"], keepdims=True)


def slice_(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return args[0][tuple(slice(start, stop, step) for start, stop, step in node.attrs["slices"])]


def resize(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    x = args[0]
    a = node.attrs
    for axis, out_size in zip((2, 3), a["size"], strict=True):
        coords = source_coordinates(out_size, x.shape[axis], a["coordinate_transformation_mode"])
        if a["mode"] == "nearest":
            x = np.take(x, nearest_indices(coords, x.shape[axis], a["nearest_mode"]), axis=axis)
        else:
            low, high, frac = linear_taps(coords, x.shape[axis])
            shape = [1] * x.ndim
            shape[axis] = -1
            frac = frac.reshape(shape).astype(np.float32)
            x = np.take(x, low, axis=axis) * (1 - frac) + np.take(x, high, axis=axis) * frac
    return x


def source_coordinates(out_size: int, in_size: int, mode: str) -> np.ndarray:
    """Input coordinate of each output pixel, by ONNX Resize's coordinate_transformation_mode."""
    out = np.arange(out_size, dtype=np.float64)
    scale = out_size / in_size
    if mode == "align_corners":
        return out * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros(out_size)
    if mode == "asymmetric":
        return out / scale
    if mode == "pytorch_half_pixel" and out_size == 1:
        return np.zeros(out_size)
    return (out + 0.5) / scale - 0.5


def nearest_indices(coords: np.ndarray, in_size: int, mode: str) -> np.ndarray:
    rounders = {
        "floor": np.floor,
        "ceil": np.ceil,
        "round_prefer_floor": lambda c: np.ceil(c - 0.5),
        "round_prefer_ceil": lambda c: np.floor(c + 0.5),
    }
    return np.clip(rounders[mode](coords), 0, in_size - 1).astype(np.int64)


def linear_taps(coords: np.ndarray, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coords = np.clip(coords, 0, in_size - 1)
    low = np.floor(coords).astype(np.int64)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, coords - low


def reduce_mean(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return args[0].mean(axis=node.attrs["axes"], keepdims=bool(node.attrs["keepdims"]))


def layer_norm(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    """ONNX LayerNormalization (stash type float32): ``(x - mean) / sqrt(var + eps) * scale + bias``."""
    x, scale, bias = args
    axes = tuple(range(node.attrs["axis"], x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    variance = (centred * centred).mean(axis=axes, keepdims=True)
    return centred / np.sqrt(variance + np.float32(node.attrs["epsilon"])) * scale + bias


def hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """In ``x``'s precision: float32 as onnxruntime, float64 when an integer table is built."""
    return np.clip(np.asarray(alpha, x.dtype) * x + np.asarray(beta, x.dtype), 0.0, 1.0)


def unary_function(node: Node) -> Callable[[np.ndarray], np.ndarray]:
    """The elementwise function of a unary non-linear op (also what its integer table tabulates)."""
    if node.op == Op.HARD_SIGMOID:
        return lambda x: hard_sigmoid(x, node.attrs["alpha"], node.attrs["beta"])
    if node.op == Op.POW:
        exponent = node.attrs["exponent"]
        return lambda x: np.power(x, np.asarray(exponent, x.dtype))
    return UNARY_FUNCTIONS[node.op]


UNARY_FUNCTIONS: dict[Op, Callable[[np.ndarray], np.ndarray]] = {
    Op.SIGMOID: lambda x: (0.5 * (1.0 + np.tanh(0.5 * x))).astype(x.dtype),  # no overflow in exp
    Op.EXP: np.exp,
    Op.HARD_SWISH: lambda x: x * hard_sigmoid(x, 1.0 / 6.0, 0.5),
    Op.SQRT: np.sqrt,
    Op.ERF: lambda x: special.erf(x).astype(x.dtype),
}


def _unary_op(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN/inf as onnxruntime gives
        return unary_function(node)(args[0])


def quantize_linear(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    x, scale, zero_point = args
    shape = _per_axis_shape(x, scale, node.attrs["axis"])
    info = np.iinfo(zero_point.dtype)
    q = np.rint(x / scale.reshape(shape)) + zero_point.reshape(shape).astype(np.float32)
    return np.clip(q, info.min, info.max).astype(zero_point.dtype)


def dequantize_linear(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    x, scale, zero_point = args[0], args[1], args[2] if len(args) > 2 else np.zeros((), np.int32)
    shape = _per_axis_shape(x, scale, node.attrs["axis"])
    return ((x.astype(np.int32) - zero_point.reshape(shape).astype(np.int32)) * scale.reshape(shape)).astype(
        np.float32
    )


def _per_axis_shape(x: np.ndarray, scale: np.ndarray, axis: int) -> tuple[int, ...]:
    if scale.size == 1:
        return ()
    shape = [1] * x.ndim
    shape[axis] = -1
    return tuple(shape)


def apply_activation(act: Activation, x: np.ndarray, graph: Graph) -> np.ndarray:
    """Apply an activation, standalone or fused into its producer."""
    if act.kind in (Op.RELU, Op.CLIP):
        return np.clip(x, act.lo, act.hi)
    if act.kind == Op.LEAKY_RELU:
        return np.where(x < 0, x * np.float32(act.alpha), x)
    slope = graph.const(act.slope)
    shape = (1, -1) + (1,) * (x.ndim - 2) if x.ndim > 1 else (-1,)
    return np.where(x < 0, x * slope.reshape(shape), x)


def activation_of(node: Node) -> Activation:
    """The Activation a standalone RELU/CLIP/PRELU/LEAKY_RELU node computes."""
    if node.op == Op.RELU:
        return Activation(Op.RELU, lo=0.0)
    if node.op == Op.CLIP:
        return Activation(Op.CLIP, lo=node.attrs["lo"], hi=node.attrs["hi"])
    if node.op == Op.LEAKY_RELU:
        return Activation(Op.LEAKY_RELU, alpha=node.attrs["alpha"])
    return Activation(Op.PRELU, slope=node.inputs[1])


def _activation_kernel(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return apply_activation(activation_of(node), args[0], graph)


def _binary(fn) -> Kernel:
    return lambda graph, node, args: fn(args[0], args[1])


def _unary(fn) -> Kernel:
    return lambda graph, node, args: fn(args[0])


KERNELS: dict[Op, Kernel] = {
    Op.CONV: conv,
    Op.GEMM: gemm,
    Op.MATMUL: _binary(np.matmul),
    Op.BATCHNORM: batchnorm,
    Op.RELU: _activation_kernel,
    Op.CLIP: _activation_kernel,
    Op.PRELU: _activation_kernel,
    Op.LEAKY_RELU: _activation_kernel,
    Op.SIGMOID: _unary_op,
    Op.EXP: _unary_op,
    Op.HARD_SIGMOID: _unary_op,
    Op.HARD_SWISH: _unary_op,
    Op.SQRT: _unary_op,
    Op.POW: _unary_op,
    Op.ERF: _unary_op,
    Op.REDUCE_MEAN: reduce_mean,
    Op.LAYER_NORM: layer_norm,
    Op.CONV_TRANSPOSE: conv_transpose,
    Op.SOFTMAX: softmax,
    Op.ADD: _binary(np.add),
    Op.SUB: _binary(np.subtract),
    Op.MUL: _binary(np.multiply),
    Op.DIV: _binary(np.divide),
    Op.CONCAT: lambda graph, node, args: np.concatenate(args, axis=node.attrs["axis"]),
    Op.MAXPOOL: max_pool,
    Op.AVGPOOL: avg_pool,
    Op.GLOBAL_AVGPOOL: _unary(lambda x: x.mean(axis=(2, 3), keepdims=True)),
    Op.RESHAPE: lambda graph, node, args: args[0].reshape(node.attrs["shape"]),
    Op.TRANSPOSE: lambda graph, node, args: args[0].transpose(node.attrs["perm"]),
    Op.SLICE: slice_,
    Op.RESIZE: resize,
    Op.IDENTITY: _unary(lambda x: x),
    Op.DROPOUT: _unary(lambda x: x),
    Op.QUANTIZE: quantize_linear,
    Op.DEQUANTIZE: dequantize_linear,
}


def run_node(graph: Graph, node: Node, args: list[np.ndarray]) -> np.ndarray:
    try:
        out = KERNELS[node.op](graph, node, args)
    except (ValueError, IndexError) as error:  # operands the frontend's checks let through
        raise ModelError(
            f"node {node.name!r} ({node.op.value}) cannot run on its operands: {error}"
        ) from None
    if node.act is not None:
        out = apply_activation(node.act, out, graph)
    if out.dtype == np.float64:
        out = out.astype(np.float32)
    return out


def check_feeds(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Feeds as float32 arrays of the graph's input shapes, or a DataError naming the mismatch."""
    missing = [name for name in graph.inputs if name not in feeds]
    if missing:
        raise DataError(f"missing input(s) {missing}; the model's inputs are {list(graph.inputs)}")
    checked = {}
    for name in graph.inputs:
        value = np.asarray(feeds[name], dtype=graph.tensors[name].dtype)
        if value.shape != graph.shape(name):
            raise DataError(f"input {name!r} has shape {value.shape}, the model expects {graph.shape(name)}")
        checked[name] = value
    return checked


def run_float(graph: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run ``graph`` in fp32; return its outputs, or every computed tensor with ``keep_all``."""
    values = check_feeds(graph, feeds)
    last_use = _last_uses(graph)
    for index, node in enumerate(graph.nodes):
        args = [values[n] if n in values else graph.const(n) for n in node.inputs if n]
        values[node.outputs[0]] = run_node(graph, node, args)
        if not keep_all:
            for name in last_use.get(index, ()):
                values.pop(name, None)
    if keep_all:
        return values
    return {name: values[name] for name in graph.outputs}


def _last_uses(graph: Graph) -> dict[int, list[str]]:
    """For each node index, the computed tensors no later node or graph output reads."""
    last: dict[str, int] = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name and not graph.tensors[name].is_const:
                last[name] = index
    by_index: dict[int, list[str]] = {}
    for name, index in last.items():
        if name not in graph.outputs:
            by_index.setdefault(index, []).append(name)
    return by_index


class FloatSession:
    """The fp32 executor behind the same interface as the integer engine's sessions."""

    bits = 32

    def __init__(self, graph: Graph):
        self.graph = graph
        self.saturations: dict[str, int] = {}
        self.notes: list[str] = []

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_float(self.graph, feeds)

    def run_layers(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_float(self.graph, feeds, keep_all=True)
