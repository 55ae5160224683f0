"""Reference integer layers of a quantized graph, in plain numpy int64 and Python ints.

``layer_ref(graph, node, inputs, rule)`` recomputes one node's integer output from the integer
values of its computed inputs (engine layout, NHWC) and the formats the quantization pass put on
the graph, with multipliers, biases and accumulator widths derived here from those formats. It
covers the ops of the mixed-precision tests (Conv, Gemm, Add, MaxPool, GlobalAveragePool,
Reshape, Softmax, standalone activations, and Identity between formats).
"""

from __future__ import annotations

import numpy as np

from nnasim.ir import Op
from tests.reference.add_ref import add_ref
from tests.reference.conv2d_ref import conv2d_ref
from tests.reference.fixedpoint_ref import mbqm32, quantize_multiplier
from tests.reference.pooling_ref import max_pool_ref
from tests.reference.requant_ref import requantize_ref
from tests.reference.softmax_ref import softmax_ref


def _scale(fmt) -> np.ndarray:
    return np.asarray(fmt.scale, np.float64).reshape(-1)


def _zp(fmt) -> int:
    return int(np.asarray(fmt.zero_point).reshape(-1)[0])


def _acc_bits(graph, node) -> int:
    widest = max(graph.tensors[n].quant.bits for n in node.inputs if n and not graph.tensors[n].is_const)
    return 32 if widest <= 8 else 64


def _real(numerator: np.ndarray, out_scale: float, rule: str) -> np.ndarray:
    if rule == "float32":
        return (np.asarray(numerator, np.float32) / np.float32(out_scale)).astype(np.float32)
    return np.asarray(numerator, np.float64) / out_scale


def _acc_scale(x_scale: float, w_scale: np.ndarray, rule: str) -> np.ndarray:
    dtype = np.float32 if rule == "float32" else np.float64
    return dtype(x_scale) * np.asarray(w_scale, dtype)


def _weights(graph, name: str) -> np.ndarray:
    """Weights quantized here: ``clip(rint(w / s), -qmax, qmax)`` per tensor or per channel."""
    tensor = graph.tensors[name]
    fmt = tensor.quant
    scale = np.asarray(fmt.scale, np.float32)
    if fmt.axis is not None:
        shape = [1] * tensor.data.ndim
        shape[fmt.axis] = -1
        scale = scale.reshape(shape)
    q = np.rint(tensor.data.astype(np.float32) / scale)
    return np.clip(q, -fmt.qmax, fmt.qmax).astype(np.int64)


def _bias(graph, node, acc_scale, channels: int, acc_bits: int) -> np.ndarray:
    if len(node.inputs) < 3 or not node.inputs[2]:
        return np.zeros(channels, np.int64)
    data = graph.tensors[node.inputs[2]].data.reshape(-1).astype(np.float64)
    limit = 2 ** (acc_bits - 1)
    return np.array(
        [min(max(int(v), -limit), limit - 1) for v in np.rint(data / np.asarray(acc_scale, np.float64))]
    )


def _activation(graph, node, real, out_fmt, channels):
    """(lo, hi, real_negative) of a fused activation, as integers/multipliers of the output."""
    act = node.act
    if act is None:
        return None, None, None
    scale, zp = float(_scale(out_fmt)[0]), _zp(out_fmt)
    if act.kind in (Op.RELU, Op.CLIP):
        lo = zp + int(np.rint(act.lo / scale)) if np.isfinite(act.lo) else None
        hi = zp + int(np.rint(act.hi / scale)) if np.isfinite(act.hi) else None
        return lo, hi, None
    if act.kind == Op.LEAKY_RELU:
        return None, None, np.asarray(real).reshape(-1) * act.alpha
    slope = graph.tensors[act.slope].data.reshape(-1).astype(np.float64)
    return None, None, np.broadcast_to(np.asarray(real).reshape(-1), (max(channels, slope.size),)) * slope


def _output_stage(graph, node, acc, numerator, rule):
    out_fmt = graph.tensors[node.outputs[0]].quant
    real = _real(numerator, float(_scale(out_fmt)[0]), rule)
    lo, hi, negative = _activation(graph, node, real, out_fmt, acc.shape[-1])
    bits = _acc_bits(graph, node)
    out, _ = requantize_ref(acc, real, rule, _zp(out_fmt), out_fmt.qmin, out_fmt.qmax, bits, lo, hi, negative)
    return out


def _conv(graph, node, x, rule):
    xf, w = graph.tensors[node.inputs[0]].quant, node.inputs[1]
    weight = _weights(graph, w)
    channels = weight.shape[0]
    acc_scale = _acc_scale(
        float(_scale(xf)[0]), np.broadcast_to(_scale(graph.tensors[w].quant), (channels,)), rule
    )
    a = node.attrs
    top, left, bottom, right = a["pads"]
    bias = _bias(graph, node, acc_scale, channels, _acc_bits(graph, node))
    acc = conv2d_ref(
        x,
        _zp(xf),
        weight.transpose(0, 2, 3, 1),
        bias,
        a["strides"],
        (top, left, bottom, right),
        a["dilations"],
        a["group"],
    )
    return _output_stage(graph, node, acc, acc_scale, rule)


def _gemm(graph, node, x, rule):
    xf, w = graph.tensors[node.inputs[0]].quant, node.inputs[1]
    weight = _weights(graph, w)
    weight = weight.T if node.op == Op.GEMM else weight
    channels = weight.shape[1]
    acc_scale = _acc_scale(
        float(_scale(xf)[0]), np.broadcast_to(_scale(graph.tensors[w].quant), (channels,)), rule
    )
    bias = _bias(graph, node, acc_scale, channels, _acc_bits(graph, node))
    acc = (np.asarray(x, np.int64) - _zp(xf)) @ weight + bias
    # TFLite's reference FULLY_CONNECTED requantizes in double
    return _output_stage(graph, node, acc, acc_scale, "float64" if rule == "fixedpoint" else rule)


def _add(graph, node, a, b, rule):
    fa, fb, fo = (graph.tensors[n].quant for n in (*node.inputs[:2], node.outputs[0]))
    channels = graph.tensors[node.outputs[0]].shape[1]
    lo, hi, negative = _activation(graph, node, np.ones(1), fo, channels)
    scales = [float(_scale(f)[0]) for f in (fa, fb, fo)]
    bits = max(fa.bits, fb.bits)
    # a fused PRelu/LeakyRelu: the output format is calibrated after the slope, so the sum is
    # held at int32 range (not the output's) until the slope stage rescales its negative side
    qmin, qmax = (fo.qmin, fo.qmax) if negative is None else (-(2**31), 2**31 - 1)
    out, _ = add_ref(a, b, *scales, _zp(fa), _zp(fb), _zp(fo), bits, rule, qmin, qmax, lo, hi)
    if negative is None:
        return out
    zo = _zp(fo)
    out, _ = requantize_ref(
        out - zo, 1.0, rule, zo, fo.qmin, fo.qmax, _acc_bits(graph, node), None, None, negative
    )
    return out


def _rescale(graph, node, x, rule, divisor: int = 1):
    """``x - zp`` times ``s_in / (divisor * s_out)``: requantize, standalone activations, averages."""
    xf = graph.tensors[node.inputs[0]].quant
    numerator = _acc_scale(float(_scale(xf)[0]), 1.0 / divisor, rule)
    acc = np.asarray(x, np.int64) - _zp(xf)
    if divisor > 1:
        acc = acc.sum(axis=(1, 2), keepdims=True)
    return _output_stage(graph, node, acc, numerator, rule)


def _tflite_mean(graph, node, x, count: int) -> np.ndarray:
    """TFLite's integer MEAN: the Q31 multiplier of ``s_in / s_out`` divided by ``count`` in
    integers, then one 32-bit MultiplyByQuantizedMultiplier of ``sum(x - zp)``."""
    xf, of = graph.tensors[node.inputs[0]].quant, graph.tensors[node.outputs[0]].quant
    multiplier, shift = quantize_multiplier(float(_scale(xf)[0]) / float(_scale(of)[0]))
    top_bit = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier, shift = (multiplier << top_bit) // count, shift - top_bit
    sums = (np.asarray(x, np.int64) - _zp(xf)).sum(axis=(1, 2), keepdims=True)
    out = np.array([mbqm32(int(v), multiplier, shift) + _zp(of) for v in sums.reshape(-1)], np.int64)
    return np.clip(out.reshape(sums.shape), of.qmin, of.qmax)


def layer_ref(graph, node, inputs: list[np.ndarray], rule: str) -> np.ndarray:
    """The integer output (int64, engine layout) of ``node`` on integer ``inputs``."""
    if node.op == Op.CONV:
        return _conv(graph, node, inputs[0], rule)
    if node.op in (Op.GEMM, Op.MATMUL):
        return _gemm(graph, node, inputs[0], rule)
    if node.op == Op.ADD:
        return _add(graph, node, inputs[0], inputs[1], rule)
    if node.op == Op.MAXPOOL:
        a = node.attrs
        out_hw = graph.tensors[node.outputs[0]].shape[2:]
        out = max_pool_ref(
            inputs[0], a["kernel_shape"], a["strides"], a["pads"], a.get("dilations", (1, 1)), out_hw
        )
        lo, hi, _ = _activation(graph, node, 1.0, graph.tensors[node.outputs[0]].quant, 1)
        return np.clip(out, lo, hi) if node.act is not None else out
    if node.op == Op.GLOBAL_AVGPOOL:
        _, _, h, w = graph.tensors[node.inputs[0]].shape
        if rule == "fixedpoint" and node.act is None:
            return _tflite_mean(graph, node, inputs[0], h * w)
        return _rescale(graph, node, inputs[0], rule, h * w)
    if node.op == Op.RESHAPE:
        nhwc = np.asarray(inputs[0])
        onnx = nhwc.transpose(0, 3, 1, 2) if nhwc.ndim == 4 else nhwc
        out = onnx.reshape(node.attrs["shape"])
        return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out
    if node.op == Op.SOFTMAX:
        xf, of = graph.tensors[node.inputs[0]].quant, graph.tensors[node.outputs[0]].quant
        multiplier = round(1.0 / float(_scale(of)[0]))
        return softmax_ref(inputs[0], float(_scale(xf)[0]), multiplier, _zp(of), of.qmax)
    if node.op == Op.IDENTITY or node.op in (Op.RELU, Op.PRELU, Op.CLIP, Op.LEAKY_RELU):
        if node.op != Op.IDENTITY and node.act is None:
            from nnasim.ir.execute import activation_of

            node = node.with_(act=activation_of(node))
        return _rescale(graph, node, inputs[0], rule)
    raise NotImplementedError(f"no reference for {node.op.value}")
