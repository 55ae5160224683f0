"""Build integer layers from a quantized IR graph: one builder per ``Op``, listed in ``BUILDERS``.

A layer is a callable ``run(args) -> (int32 output, saturations)`` over the integer values of the
node's computed inputs (engine layout: 4-D tensors NHWC, others as in ONNX). Weights, biases,
multipliers and tables are prepared once, at build time, from the tensors' ``QuantParams``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from nnasim.engine.tflite_layers import (
    average_pool_kernel,
    mean_kernel,
    resize_bilinear_kernel,
    softmax_kernel,
    xnnpack_leaky_relu_kernel,
    xnnpack_resize_bilinear_kernel,
)
from nnasim.errors import ModelError
from nnasim.ir import Activation, Graph, Node, Op, QuantParams
from nnasim.ir.execute import linear_taps, nearest_indices, source_coordinates, unary_function
from nnasim.kernels import layout
from nnasim.kernels.add import add, make_add_params
from nnasim.kernels.concat import concat
from nnasim.kernels.conv2d import Conv2d, ConvGeometry
from nnasim.kernels.conv_transpose import zero_insert
from nnasim.kernels.fully_connected import FullyConnected
from nnasim.kernels.layernorm import layer_norm, layer_norm_params
from nnasim.kernels.lut import build_table, lookup
from nnasim.kernels.matmul import matmul_activations
from nnasim.kernels.mul import mul
from nnasim.kernels.pooling import max_pool, window_sum
from nnasim.kernels.reduce import reduce_sum
from nnasim.kernels.requant import (
    FLOAT32_RULES,
    Q31_RULES,
    TFLITE_RULES,
    OutputStage,
    Requantizer,
    make_output_stage,
    requantize,
)
from nnasim.kernels.resize import fixed_weights, resize_bilinear, resize_nearest, weight_bits
from nnasim.kernels.softmax import exp_table, softmax_last_axis
from nnasim.quant.params import activation_params, per_axis, quantize_array

LayerFn = Callable[[list[np.ndarray]], tuple[np.ndarray, int]]


def default_acc_bits(bits: int) -> int:
    """Accumulator width: int32 for 8-bit activations, int64 for 16-bit."""
    return 32 if bits <= 8 else 64


@dataclass(frozen=True)
class BuildContext:
    """What every builder needs: the quantized graph, the requantization rule, accumulator width.

    ``acc_bits`` None gives each node the accumulator of its widest input (``default_acc_bits``),
    as a mixed-precision graph needs: int32 behind 8-bit inputs, int64 behind 16-bit ones.
    ``add_rule``, when set, is ADD's rule instead of ``rule`` (TFLite's default interpreter on
    16-bit files: its own kernels, ``fixedpoint``, but an optimized int16 ADD of its own).
    """

    graph: Graph
    rule: str
    acc_bits: int | None
    add_rule: str | None = None

    def acc_bits_of(self, node: Node) -> int:
        if self.acc_bits is not None:
            return self.acc_bits
        widest = max(
            (self.fmt(n).bits for n in node.inputs if n and not self.graph.tensors[n].is_const), default=8
        )
        return default_acc_bits(widest)

    def fmt(self, name: str) -> QuantParams:
        params = self.graph.tensors[name].quant
        if params is None:
            raise ModelError(f"tensor {name!r} has no quantization format (run the quantization pass)")
        return params

    def scale(self, name: str) -> float:
        return float(np.asarray(self.fmt(name).scale).reshape(-1)[0])

    def zp(self, name: str) -> int:
        return int(np.asarray(self.fmt(name).zero_point).reshape(-1)[0])

    def multiplier(self, numerator: np.ndarray | float, out_name: str) -> np.ndarray:
        """``numerator / scale_out``: float32 arithmetic for the float32 rule (onnxruntime), else float64."""
        if self.rule in FLOAT32_RULES:
            return (np.asarray(numerator, np.float32) / np.float32(self.scale(out_name))).astype(np.float32)
        return np.asarray(numerator, np.float64) / self.scale(out_name)

    def product(self, a: str, b: np.ndarray | float) -> np.ndarray:
        """``scale_a * b`` in the rule's float type (the scale of an accumulator)."""
        dtype = np.float32 if self.rule in FLOAT32_RULES else np.float64
        return np.asarray(self.scale(a), dtype) * np.asarray(b, dtype)

    def stage(
        self,
        node: Node,
        real: np.ndarray,
        channels: int = 1,
        acc_bits: int | None = None,
        rule: str | None = None,
    ) -> OutputStage:
        """Output stage of ``node``: requantize by ``real`` and apply its fused activation.

        ``acc_bits`` narrows the accumulator where its values provably fit (a rescaled ``x - zp``):
        TFLite's int16 kernels then use the 32-bit MultiplyByQuantizedMultiplier, as it does.
        ``rule``, when given, is the stage's rule instead of the context's (a kernel of its own).
        """
        out = node.outputs[0]
        fmt = self.fmt(out)
        lo, hi, negative = self._activation(node.act, out, np.asarray(real), channels)
        widest = self.acc_bits_of(node)
        acc_bits = widest if acc_bits is None else min(acc_bits, widest)
        args = (rule or self.rule, self.zp(out), fmt.qmin, fmt.qmax, acc_bits, lo, hi, negative)
        try:
            return make_output_stage(np.asarray(real).reshape(-1), *args)
        except ValueError as error:
            raise ModelError(f"node {node.name!r} ({node.op.value}): {error}") from None

    def _activation(self, act: Activation | None, out: str, real: np.ndarray, channels: int):
        if act is None:
            return None, None, None
        if act.kind in (Op.RELU, Op.CLIP):
            return self.clamp_bounds(act, out) + (None,)
        if act.kind == Op.LEAKY_RELU:
            return None, None, real.reshape(-1) * act.alpha
        slope = self.graph.const(act.slope).reshape(-1).astype(np.float64)
        return None, None, np.broadcast_to(real.reshape(-1), (max(channels, slope.size),)) * slope

    def clamp_bounds(self, act: Activation, out: str) -> tuple[int | None, int | None]:
        """ReLU/Clip bounds as integers of ``out``'s format (None where unbounded)."""
        scale, zp = self.scale(out), self.zp(out)
        lo = zp + int(np.rint(act.lo / scale)) if np.isfinite(act.lo) else None
        hi = zp + int(np.rint(act.hi / scale)) if np.isfinite(act.hi) else None
        return lo, hi

    def ndim(self, name: str) -> int:
        return len(self.graph.shape(name))

    def input_bound(self, name: str) -> int:
        fmt, zp = self.fmt(name), self.zp(name)
        return max(fmt.qmax - zp, zp - fmt.qmin)

    def input_range(self, name: str) -> tuple[int, int]:
        """The (least, largest) integer of ``name``'s format."""
        fmt = self.fmt(name)
        return fmt.qmin, fmt.qmax


def _fitting_bits(bound: int) -> int:
    """32 where values of magnitude up to ``bound`` fit a 32-bit accumulator, else 64."""
    return 32 if bound < 2**31 else 64


def integer_weight(ctx: BuildContext, name: str) -> np.ndarray:
    """``q - zero_point`` of a weight: given integers (QDQ models) or quantized float data (narrow range)."""
    data, fmt = ctx.graph.const(name), ctx.fmt(name)
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.int64) - per_axis(fmt.zero_point, data.ndim, fmt.axis).astype(np.int64)
    return quantize_array(data, fmt, narrow=True).astype(np.int64)


def integer_bias(ctx: BuildContext, node: Node, acc_scale: np.ndarray, channels: int) -> np.ndarray:
    """The bias in the accumulator's format (given int32 data of QDQ models is used as is)."""
    if len(node.inputs) < 3 or not node.inputs[2]:
        return np.zeros(channels, np.int64)
    data = ctx.graph.const(node.inputs[2]).reshape(-1)
    if np.issubdtype(data.dtype, np.integer):
        return np.broadcast_to(data.astype(np.int64), (channels,)).copy()
    scaled = np.rint(data.astype(np.float64) / np.asarray(acc_scale, np.float64))
    return saturate_to_int(np.broadcast_to(scaled, (channels,)), ctx.acc_bits_of(node))


def saturate_to_int(values: np.ndarray, bits: int) -> np.ndarray:
    """Whole-number floats saturated to signed ``bits``-bit integers, as int64. (A float clip at
    ``2**63 - 1`` rounds to ``2**63`` and wraps in the cast: a huge bias behind a 64-bit
    accumulator, from a channel with near-zero weights, would flip sign.)"""
    limit = 2 ** (bits - 1)
    high, low = values >= limit, values < -limit
    out = np.where(high | low, 0.0, values).astype(np.int64)
    out[high], out[low] = limit - 1, -limit
    return out


def _weight_scales(ctx: BuildContext, name: str, channels: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(ctx.fmt(name).scale).reshape(-1), (channels,))


def build_conv(ctx: BuildContext, node: Node) -> LayerFn:
    conv, requantizer, zp = _conv_core(ctx, node, tuple(node.attrs["strides"]), tuple(node.attrs["pads"]))
    return lambda args: conv.run(args[0], zp, requantizer)


def build_conv_transpose(ctx: BuildContext, node: Node) -> LayerFn:
    """The frontend's equivalent conv (stride 1) over the zero-point-spread input (kernels.conv_transpose)."""
    pads, strides = tuple(node.attrs["pads"]), tuple(node.attrs["strides"])
    crop = tuple(max(-p, 0) for p in pads)
    conv, requantizer, zp = _conv_core(ctx, node, (1, 1), tuple(max(p, 0) for p in pads))
    return lambda args: conv.run(zero_insert(args[0], zp, strides, crop), zp, requantizer)


def _conv_core(ctx: BuildContext, node: Node, strides, pads) -> tuple[Conv2d, Requantizer, int]:
    x, w = node.inputs[0], node.inputs[1]
    weight = integer_weight(ctx, w)
    channels = weight.shape[0]
    acc_scale = ctx.product(x, _weight_scales(ctx, w, channels))
    a = node.attrs
    out_hw = tuple(ctx.graph.shape(node.outputs[0])[2:])
    geometry = ConvGeometry(
        tuple(a["kernel_shape"]), strides, pads, tuple(a["dilations"]), a["group"], out_hw
    )
    conv = Conv2d(
        weight.transpose(0, 2, 3, 1),
        integer_bias(ctx, node, acc_scale, channels),
        geometry,
        ctx.input_bound(x),
        input_range=ctx.input_range(x),
    )
    stage = ctx.stage(node, ctx.multiplier(acc_scale, node.outputs[0]), channels)
    return conv, Requantizer(stage, channels, conv.bias, conv.acc_bound), ctx.zp(x)


def build_gemm(ctx: BuildContext, node: Node) -> LayerFn:
    """Gemm ``x @ W.T + b`` (W is (N, K)) and MatMul by a constant (K, N) on the last axis."""
    x, w = node.inputs[0], node.inputs[1]
    if node.op == Op.MATMUL and not ctx.graph.tensors[w].is_const:
        return build_matmul_activations(ctx, node)
    weight = integer_weight(ctx, w)
    weight = weight.T if node.op == Op.GEMM else weight
    channels = weight.shape[1]
    acc_scale = ctx.product(x, _weight_scales(ctx, w, channels))
    fc = FullyConnected(
        weight,
        integer_bias(ctx, node, acc_scale, channels),
        ctx.input_bound(x),
        input_range=ctx.input_range(x),
    )
    real = ctx.multiplier(acc_scale, node.outputs[0])
    # TFLite's reference FULLY_CONNECTED requantizes in double, not with its Q31 multipliers
    stage = ctx.stage(node, real, channels, rule="float64" if ctx.rule == "fixedpoint" else None)
    zp = ctx.zp(x)

    def run(args):
        onnx_x = layout.to_onnx_layout(args[0])
        acc = fc.accumulate(np.ascontiguousarray(onnx_x), zp)
        out, saturations = requantize(acc, stage, fc.bias)
        return layout.from_onnx_layout(out), saturations

    return run


def build_matmul_activations(ctx: BuildContext, node: Node) -> LayerFn:
    """MatMul whose second operand is computed: ``(a - za) @ (b - zb)``, rescaled by ``s_a * s_b / s_out``."""
    a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
    zero_points = ctx.zp(a), ctx.zp(b)
    bounds = ctx.input_bound(a), ctx.input_bound(b)
    consts = {
        i: _operand(ctx, name, ctx.ndim(name))
        for i, name in enumerate((a, b))
        if ctx.graph.tensors[name].is_const
    }
    stage = ctx.stage(node, ctx.multiplier(ctx.product(a, ctx.scale(b)), out))

    def run(args):
        computed = iter(args)
        left, right = (layout.to_onnx_layout(consts[i] if i in consts else next(computed)) for i in range(2))
        out_q, saturations = requantize(matmul_activations(left, right, *zero_points, *bounds), stage)
        return layout.from_onnx_layout(out_q), saturations

    return run


def build_reduce_mean(ctx: BuildContext, node: Node) -> LayerFn:
    """ReduceMean: exact sums of ``x - zp`` (ONNX layout), divided by the count in the output stage."""
    x, out = node.inputs[0], node.outputs[0]
    axes, keepdims = tuple(node.attrs["axes"]), bool(node.attrs["keepdims"])
    count = int(np.prod([ctx.graph.shape(x)[axis] for axis in axes]))
    stage = ctx.stage(node, ctx.multiplier(ctx.product(x, 1.0 / count), out))
    zp = ctx.zp(x)

    def run(args):
        sums = reduce_sum(layout.to_onnx_layout(args[0]), zp, axes, keepdims)
        out_q, saturations = requantize(np.ascontiguousarray(sums), stage)
        return layout.from_onnx_layout(out_q), saturations

    return run


def build_layer_norm(ctx: BuildContext, node: Node) -> LayerFn:
    """LayerNormalization in fixed point (kernels.layernorm): the same integers under every rule."""
    x, out = node.inputs[0], node.outputs[0]
    axis = node.attrs["axis"]
    shape = ctx.graph.shape(x)
    fout = ctx.fmt(out)
    params = layer_norm_params(
        ctx.graph.const(node.inputs[1]),
        ctx.graph.const(node.inputs[2]),
        node.attrs["epsilon"],
        ctx.scale(x),
        ctx.scale(out),
        ctx.input_bound(x),
    )
    zp, zo = ctx.zp(x), ctx.zp(out)
    clamp = _clamp_only(ctx, node)
    rows = int(np.prod(shape[:axis], dtype=np.int64))

    def run(args):
        onnx_x = np.ascontiguousarray(layout.to_onnx_layout(args[0])).reshape(rows, -1)
        out_q, saturations = layer_norm(onnx_x, zp, params, zo, fout.qmin, fout.qmax)
        return clamp(layout.from_onnx_layout(out_q.reshape(shape))), saturations

    return run


def build_batchnorm(ctx: BuildContext, node: Node) -> LayerFn:
    """An unfolded BatchNormalization: per-channel ``(x - zp) * w[c] + b[c]`` on ONNX axis 1."""
    x, w = node.inputs[0], node.inputs[1]
    weight = integer_weight(ctx, w).reshape(-1)
    channels = weight.size
    acc_scale = ctx.product(x, _weight_scales(ctx, w, channels))
    bias = integer_bias(ctx, node, acc_scale, channels)
    ndim = ctx.ndim(x)
    axis = layout.onnx_axis_to_engine(1, ndim)
    stage = ctx.stage(node, ctx.multiplier(acc_scale, node.outputs[0]), channels)
    zp = ctx.zp(x)

    def run(args):
        acc = np.moveaxis(args[0].astype(np.int64) - zp, axis, -1) * weight + bias
        out, saturations = requantize(acc, stage)
        return np.ascontiguousarray(np.moveaxis(out, -1, axis)), saturations

    return run


def _operand(ctx: BuildContext, name: str, out_ndim: int, data: np.ndarray | None = None, fmt=None):
    """A constant operand as integers in engine layout broadcastable to a rank-``out_ndim`` output."""
    data = ctx.graph.const(name) if data is None else data
    fmt = ctx.fmt(name) if fmt is None else fmt
    q = data if np.issubdtype(data.dtype, np.integer) else quantize_array(data, fmt)
    return _broadcastable(q.astype(np.int32), out_ndim)


def _broadcastable(x: np.ndarray, out_ndim: int) -> np.ndarray:
    """An ONNX-layout tensor (a constant, or a computed one of lower rank) made rank ``out_ndim``
    by numpy's broadcasting rule and moved to engine layout."""
    return layout.from_onnx_layout(x.reshape((1,) * (out_ndim - x.ndim) + x.shape))


class _Operands:
    """Resolves a binary node's two operands: computed (from ``args``) or constant (prepared once)."""

    def __init__(self, ctx: BuildContext, node: Node, formats: list[QuantParams] | None = None, datas=None):
        out_ndim = ctx.ndim(node.outputs[0])
        self.ndims = [ctx.ndim(n) for n in node.inputs[:2]]
        self.out_ndim = out_ndim
        self.consts = {}
        for i, name in enumerate(node.inputs[:2]):
            if ctx.graph.tensors[name].is_const:
                data = None if datas is None else datas[i]
                fmt = None if formats is None else formats[i]
                self.consts[i] = _operand(ctx, name, out_ndim, data, fmt)

    def __call__(self, args: list[np.ndarray]) -> list[np.ndarray]:
        computed = iter(args)
        values = []
        for i in range(2):
            if i in self.consts:
                values.append(self.consts[i])
            else:
                value = next(computed)
                values.append(
                    value if self.ndims[i] == self.out_ndim else _broadcastable(value, self.out_ndim)
                )
        return values


def build_add(ctx: BuildContext, node: Node) -> LayerFn:
    """Add/Sub with rescaling; a fused ReLU/Clip clamps, a fused LeakyReLU/PReLU rescales the
    negative side of the sum in a second output stage (multiplier 1 for positive values).

    With LeakyReLU/PReLU the sum is kept at int32 range between the two stages: the output's format
    is calibrated after the activation, so the sum's negative side may lie far below its qmin.
    """
    a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
    clamps = node.act is not None and node.act.kind in (Op.RELU, Op.CLIP)
    lo, hi = ctx.clamp_bounds(node.act, out) if clamps else (None, None)
    fmt = ctx.fmt(out)
    sum_range = (fmt.qmin, fmt.qmax) if node.act is None or clamps else (-(2**31), 2**31 - 1)
    params = make_add_params(
        ctx.scale(a),
        ctx.scale(b),
        ctx.scale(out),
        (ctx.zp(a), ctx.zp(b), ctx.zp(out)),
        max(ctx.fmt(a).bits, ctx.fmt(b).bits),  # the left shift must leave room for the widest input
        ctx.add_rule if ctx.add_rule and node.op == Op.ADD else ctx.rule,
        *sum_range,
        lo,
        hi,
        sign_b=-1 if node.op == Op.SUB else 1,
    )
    operands = _Operands(ctx, node)
    if node.act is None or clamps:
        return lambda args: add(*operands(args), params)
    shape = ctx.graph.shape(out)
    slope_stage = ctx.stage(node, np.ones(1), shape[1] if len(shape) > 1 else 1)
    zp = ctx.zp(out)

    def run(args):
        total, saturations = add(*operands(args), params)
        out_q, more = requantize(total.astype(np.int64) - zp, slope_stage)
        return out_q, saturations + more

    return run


def build_mul(ctx: BuildContext, node: Node) -> LayerFn:
    """Mul, and Div by a constant (a Mul by its reciprocal, quantized on its own)."""
    a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
    formats, datas, scale_b = None, None, ctx.scale(b) if ctx.graph.tensors[b].quant else None
    if node.op == Op.DIV:
        if not ctx.graph.tensors[b].is_const:
            raise ModelError(f"node {node.name!r} (Div): only division by a constant is supported")
        reciprocal = (1.0 / ctx.graph.const(b)).astype(np.float32)
        fmt_b = activation_params(
            float(reciprocal.min()), float(reciprocal.max()), ctx.fmt(out).bits, ctx.fmt(out).scheme
        )
        formats, datas, scale_b = [ctx.fmt(a), fmt_b], [None, reciprocal], float(fmt_b.scale)
        zp_b = int(fmt_b.zero_point)
    else:
        zp_b = ctx.zp(b)
    operands = _Operands(ctx, node, formats, datas)
    bound_b = max(fmt_b.qmax - zp_b, zp_b - fmt_b.qmin) if node.op == Op.DIV else ctx.input_bound(b)
    acc_bits = _fitting_bits(ctx.input_bound(a) * bound_b)
    if node.op == Op.MUL and ctx.rule in TFLITE_RULES:  # TFLite's Prepare: s_a * s_b / s_out in float32
        real = np.float32(np.float32(ctx.scale(a)) * np.float32(scale_b)) / np.float32(ctx.scale(out))
    else:
        real = ctx.multiplier(ctx.product(a, scale_b), out)
    stage = ctx.stage(node, real, acc_bits=acc_bits)
    zp_a = ctx.zp(a)
    return lambda args: requantize(mul(*operands(args), zp_a, zp_b), stage)


def build_concat(ctx: BuildContext, node: Node) -> LayerFn:
    out = node.outputs[0]
    ndim = ctx.ndim(out)
    axis = layout.onnx_axis_to_engine(node.attrs["axis"], ndim)
    stages = [ctx.stage(node, ctx.multiplier(ctx.product(name, 1.0), out)) for name in node.inputs]
    zero_points = [ctx.zp(name) for name in node.inputs]
    consts = {
        i: _operand(ctx, name, ndim) for i, name in enumerate(node.inputs) if ctx.graph.tensors[name].is_const
    }

    def run(args):
        computed = iter(args)
        inputs = [consts[i] if i in consts else next(computed) for i in range(len(node.inputs))]
        return concat(inputs, zero_points, stages, axis)

    return run


def _clamp_only(ctx: BuildContext, node: Node) -> Callable[[np.ndarray], np.ndarray]:
    """A ReLU/Clip fused into a layer that keeps its input's format: a clamp of the integers."""
    if node.act is None:
        return lambda q: q
    if node.act.kind not in (Op.RELU, Op.CLIP):
        raise ModelError(
            f"node {node.name!r}: {node.act.kind.value} fused into {node.op.value} is not supported"
        )
    lo, hi = ctx.clamp_bounds(node.act, node.outputs[0])
    return lambda q: np.clip(q, lo, hi)


def build_maxpool(ctx: BuildContext, node: Node) -> LayerFn:
    a = node.attrs
    out_hw = ctx.graph.shape(node.outputs[0])[2:]
    dilations = tuple(a.get("dilations", (1, 1)))
    clamp = _clamp_only(ctx, node)
    geometry = (*a["kernel_shape"], *a["strides"], *a["pads"][:2], *dilations, *out_hw)
    return lambda args: (clamp(max_pool(args[0], *geometry)), 0)


def build_avgpool(ctx: BuildContext, node: Node) -> LayerFn:
    """Window sums, then one output stage per distinct window size (border windows may be smaller)."""
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs
    out_hw = ctx.graph.shape(out)[2:]
    dilations = tuple(a.get("dilations", (1, 1)))
    zp = np.int64(ctx.zp(x))
    args_geometry = (*a["kernel_shape"], *a["strides"], np.array(a["pads"], np.int64), *dilations, *out_hw)
    stages: dict[int, OutputStage] = {}
    tflite_kernel = average_pool_kernel(ctx.rule, ctx.fmt(x), ctx.fmt(out))
    clamp = _clamp_only(ctx, node) if tflite_kernel is not None else None
    fmt = ctx.fmt(out)

    def run(args):
        sums, counts = window_sum(args[0], zp, *args_geometry, bool(a["count_include_pad"]))
        if tflite_kernel is not None:
            values = tflite_kernel(sums, counts[None, :, :, None])
            return clamp(np.clip(values, fmt.qmin, fmt.qmax)).astype(np.int32), 0
        result = np.empty(sums.shape, np.int32)
        saturations = 0
        for count in np.unique(counts):
            if count not in stages:
                stages[count] = ctx.stage(node, ctx.multiplier(ctx.product(x, 1.0 / count), out))
            mask = counts == count
            result[:, mask], n = requantize(sums[:, mask], stages[count])
            saturations += n
        return result, saturations

    return run


def build_global_avgpool(ctx: BuildContext, node: Node) -> LayerFn:
    x, out = node.inputs[0], node.outputs[0]
    _, _, h, w = ctx.graph.shape(x)
    stage = ctx.stage(node, ctx.multiplier(ctx.product(x, 1.0 / (h * w)), out))
    zp = ctx.zp(x)
    tflite_kernel = mean_kernel(ctx.rule, ctx.fmt(x), ctx.fmt(out), h * w) if node.act is None else None
    if tflite_kernel is not None:
        return lambda args: (
            tflite_kernel((args[0].astype(np.int64) - zp).sum(axis=(1, 2), keepdims=True)).astype(np.int32),
            0,
        )
    return lambda args: requantize((args[0].astype(np.int64) - zp).sum(axis=(1, 2), keepdims=True), stage)


def build_reshape(ctx: BuildContext, node: Node) -> LayerFn:
    shape = tuple(node.attrs["shape"])
    clamp = _clamp_only(ctx, node)
    return lambda args: (clamp(layout.reshape(args[0], shape)), 0)


def build_transpose(ctx: BuildContext, node: Node) -> LayerFn:
    perm = tuple(node.attrs["perm"])
    clamp = _clamp_only(ctx, node)
    return lambda args: (clamp(layout.transpose(args[0], perm)), 0)


def build_slice(ctx: BuildContext, node: Node) -> LayerFn:
    slices = node.attrs["slices"]
    clamp = _clamp_only(ctx, node)
    return lambda args: (clamp(layout.slice_(args[0], slices)), 0)


def build_resize(ctx: BuildContext, node: Node) -> LayerFn:
    x, out = node.inputs[0], node.outputs[0]
    a = node.attrs
    (_, _, h, w), (oh, ow) = ctx.graph.shape(x), a["size"]
    ctm = a["coordinate_transformation_mode"]
    coords_y, coords_x = source_coordinates(oh, h, ctm), source_coordinates(ow, w, ctm)
    if a["mode"] == "nearest":
        rows = nearest_indices(coords_y, h, a["nearest_mode"])
        cols = nearest_indices(coords_x, w, a["nearest_mode"])
        clamp = _clamp_only(ctx, node)
        return lambda args: (clamp(resize_nearest(args[0], rows, cols)), 0)
    formats = (ctx.fmt(x), ctx.fmt(out), ctx.graph.shape(x), (oh, ow), ctm)
    if ctx.rule == "xnnpack":
        tflite_kernel = xnnpack_resize_bilinear_kernel(*formats)
    else:
        tflite_kernel = resize_bilinear_kernel(ctx.rule, *formats)
    if tflite_kernel is not None:
        clamp = _clamp_only(ctx, node)
        fmt = ctx.fmt(out)
        return lambda args: (clamp(np.clip(tflite_kernel(args[0]), fmt.qmin, fmt.qmax)).astype(np.int32), 0)
    y0, y1, fy = linear_taps(coords_y, h)
    x0, x1, fx = linear_taps(coords_x, w)
    bits = weight_bits(ctx.input_bound(x), ctx.acc_bits_of(node))
    wy, wx = fixed_weights(fy, bits), fixed_weights(fx, bits)
    stage = ctx.stage(node, ctx.multiplier(ctx.product(x, 2.0 ** (-2 * bits)), out))
    zp = np.int64(ctx.zp(x))
    return lambda args: requantize(resize_bilinear(args[0], zp, y0, y1, wy, x0, x1, wx, bits), stage)


UNARY_FUNCTIONS = {Op.SIGMOID: lambda v: 1.0 / (1.0 + np.exp(-v)), Op.EXP: np.exp}
LUT_OPS = (Op.SIGMOID, Op.EXP, Op.HARD_SIGMOID, Op.HARD_SWISH, Op.SQRT, Op.POW, Op.ERF, Op.TANH)


def build_lut(ctx: BuildContext, node: Node) -> LayerFn:
    """A unary non-linear op (Sigmoid, Exp, HardSigmoid, HardSwish, Sqrt, Pow, Erf, Tanh) as a table over
    every input integer (2**8 or 2**16 entries, built here in float64 once; integers at run time)."""
    x, out = node.inputs[0], node.outputs[0]
    fin, fout = ctx.fmt(x), ctx.fmt(out)
    function = UNARY_FUNCTIONS.get(node.op) or unary_function(node)
    table = build_table(
        function,
        ctx.scale(x),
        ctx.zp(x),
        (fin.qmin, fin.qmax),
        ctx.scale(out),
        ctx.zp(out),
        (fout.qmin, fout.qmax),
    )
    clamp = _clamp_only(ctx, node)
    return lambda args: (clamp(lookup(args[0], table, fin.qmin)), 0)


def build_softmax(ctx: BuildContext, node: Node) -> LayerFn:
    x, out = node.inputs[0], node.outputs[0]
    fin, fout = ctx.fmt(x), ctx.fmt(out)
    multiplier = round(1.0 / ctx.scale(out))
    if abs(multiplier * ctx.scale(out) - 1.0) > 1e-6:
        raise ModelError(f"node {node.name!r} (Softmax): the output scale must be 1/R for an integer R")
    table = exp_table(ctx.scale(x), fin.qmax - fin.qmin + 1)
    axis = layout.onnx_axis_to_engine(node.attrs["axis"], ctx.ndim(x))
    zo = ctx.zp(out)
    tflite_kernel = softmax_kernel(ctx.rule, fin, fout)

    def run(args):
        moved = np.moveaxis(args[0], axis, -1)
        flat = np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])
        if tflite_kernel is not None:
            return np.ascontiguousarray(np.moveaxis(tflite_kernel(flat).reshape(moved.shape), -1, axis)), 0
        result = softmax_last_axis(flat, table, multiplier, zo, fout.qmax).reshape(moved.shape)
        return np.ascontiguousarray(np.moveaxis(result, -1, axis)), 0

    return run


def build_activation(ctx: BuildContext, node: Node) -> LayerFn:
    """A ReLU/Clip/LeakyReLU/PReLU left standalone: rescale ``x - zp`` with the activation fused.

    A ReLU/Clip whose output keeps the input's format (common with pow2 scales) is only a clamp.
    Under the fixedpoint rule a bounded ReLU/Clip's multiplier is ``float32(s_in / s_out)``, as
    TFLite's ReluX divides the two float scales before widening to double.
    """
    from nnasim.ir.execute import activation_of

    x, out = node.inputs[0], node.outputs[0]
    if ctx.rule == "xnnpack" and node.op == Op.LEAKY_RELU:
        kernel = xnnpack_leaky_relu_kernel(ctx.fmt(x), ctx.fmt(out), node.attrs["alpha"])
        return lambda args: (kernel(args[0]), 0)
    if ctx.rule == "xnnpack":  # XNNPACK leaves the other int8 activations to TFLite's kernels
        ctx = replace(ctx, rule="fixedpoint")
    act = activation_of(node)
    if act.kind == Op.PRELU and ctx.graph.tensors[act.slope].quant is not None:
        return _quantized_slope_prelu(ctx, node, act.slope)
    real = ctx.multiplier(ctx.product(x, 1.0), out)
    bounded = act.kind in (Op.RELU, Op.CLIP) and (np.isfinite(act.lo) or np.isfinite(act.hi))
    if ctx.rule in Q31_RULES and bounded:
        real = np.float64(np.float32(ctx.scale(x)) / np.float32(ctx.scale(out)))
    if act.kind in (Op.RELU, Op.CLIP) and float(real) == 1.0 and ctx.zp(x) == ctx.zp(out):
        clamp = _clamp_only(ctx, node.with_(act=act))
        return lambda args: (clamp(args[0]), 0)
    channels = ctx.graph.shape(out)[1] if ctx.ndim(out) > 1 else 1
    stage = ctx.stage(node.with_(act=act), real, channels, acc_bits=_fitting_bits(ctx.input_bound(x)))
    bound = ctx.input_bound(x)
    requantizer = Requantizer(stage, channels, np.full(channels, -ctx.zp(x)), acc_bound=bound)
    axis = layout.onnx_axis_to_engine(1, ctx.ndim(x)) if ctx.ndim(x) > 1 else 0

    def run(args):
        acc = np.ascontiguousarray(np.moveaxis(args[0], axis, -1))  # a view when channels are last
        result = np.empty(acc.shape, np.int32)
        saturations = requantizer.into(acc.reshape(-1, channels), result.reshape(-1, channels))
        return np.ascontiguousarray(np.moveaxis(result, -1, axis)), saturations

    return run


def _quantized_slope_prelu(ctx: BuildContext, node: Node, slope: str) -> LayerFn:
    """PReLU with an integer slope of its own format (TFLite's PRELU): ``x - zp`` rescaled by
    ``s_in / s_out`` where it is >= 0, else ``(x - zp) * (a - zp_a)`` by ``s_in * s_a / s_out``
    (under the TFLite rules both quotients in float32, as TFLite computes them)."""
    x, out = node.inputs[0], node.outputs[0]
    alpha = ctx.graph.const(slope).reshape(-1).astype(np.int64) - ctx.zp(slope)
    if ctx.rule in TFLITE_RULES:
        s_in, s_a, s_out = (np.float32(ctx.scale(n)) for n in (x, slope, out))
        real_pos, real_neg = np.float64(s_in / s_out), np.float64(s_in * s_a / s_out)
    else:
        real_pos = ctx.multiplier(ctx.product(x, 1.0), out)
        real_neg = ctx.multiplier(ctx.product(x, ctx.scale(slope)), out)
    plain = node.with_(act=None)
    bound = ctx.input_bound(x) * int(np.abs(alpha).max(initial=1))
    pos = ctx.stage(plain, real_pos, acc_bits=_fitting_bits(ctx.input_bound(x)))
    neg = ctx.stage(plain, real_neg, alpha.size, acc_bits=_fitting_bits(bound))
    zp = ctx.zp(x)
    axis = layout.onnx_axis_to_engine(1, ctx.ndim(x)) if ctx.ndim(x) > 1 else 0

    def run(args):
        centred = np.moveaxis(args[0], axis, -1).astype(np.int64) - zp
        positive, n_pos = requantize(centred, pos)
        negative, n_neg = requantize(centred * alpha, neg)
        result = np.where(centred >= 0, positive, negative)
        return np.ascontiguousarray(np.moveaxis(result, -1, axis)), n_pos + n_neg

    return run


def build_requantize(ctx: BuildContext, node: Node) -> LayerFn:
    """A copy into another format (a quantized model's DQ -> Q between widths or scales): ``x - zp``
    rescaled by ``scale_in / scale_out``; a plain copy where the formats are equal."""
    x, out = node.inputs[0], node.outputs[0]
    fin, fout = ctx.fmt(x), ctx.fmt(out)
    same = fin.bits == fout.bits and ctx.scale(x) == ctx.scale(out) and ctx.zp(x) == ctx.zp(out)
    if same and fin.signed == fout.signed:
        return lambda args: (args[0], 0)
    stage = ctx.stage(node, ctx.multiplier(ctx.product(x, 1.0), out))
    zp = ctx.zp(x)

    def run(args):
        result, saturations = requantize(args[0].astype(np.int64)[..., None] - zp, stage)
        return result[..., 0], saturations

    return run


BUILDERS: dict[Op, Callable[[BuildContext, Node], LayerFn]] = {
    Op.IDENTITY: build_requantize,
    Op.CONV: build_conv,
    Op.CONV_TRANSPOSE: build_conv_transpose,
    Op.REDUCE_MEAN: build_reduce_mean,
    Op.LAYER_NORM: build_layer_norm,
    Op.GEMM: build_gemm,
    Op.MATMUL: build_gemm,
    Op.BATCHNORM: build_batchnorm,
    Op.ADD: build_add,
    Op.SUB: build_add,
    Op.MUL: build_mul,
    Op.DIV: build_mul,
    Op.CONCAT: build_concat,
    Op.MAXPOOL: build_maxpool,
    Op.AVGPOOL: build_avgpool,
    Op.GLOBAL_AVGPOOL: build_global_avgpool,
    Op.RESHAPE: build_reshape,
    Op.TRANSPOSE: build_transpose,
    Op.SLICE: build_slice,
    Op.RESIZE: build_resize,
    Op.SIGMOID: build_lut,
    Op.EXP: build_lut,
    Op.HARD_SIGMOID: build_lut,
    Op.HARD_SWISH: build_lut,
    Op.SQRT: build_lut,
    Op.POW: build_lut,
    Op.ERF: build_lut,
    Op.TANH: build_lut,
    Op.SOFTMAX: build_softmax,
    Op.RELU: build_activation,
    Op.CLIP: build_activation,
    Op.LEAKY_RELU: build_activation,
    Op.PRELU: build_activation,
    Op.IDENTITY: build_requantize,
}


def build_layer(ctx: BuildContext, node: Node) -> LayerFn:
    builder = BUILDERS.get(node.op)
    if builder is None:
        raise ModelError(f"node {node.name!r}: {node.op.value} has no integer kernel")
    return builder(ctx, node)
