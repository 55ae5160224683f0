"""ONNX's quantized operators on nnasim's integer kernels (NCHW numpy in and out).

QLinearConv / QLinearMatMul requantize with the ``float32`` rule by default, which is ONNX's and
onnxruntime's semantics: the multiplier ``x_scale * w_scale / y_scale`` is formed in the scales'
float type, applied to the integer accumulator in float32, rounded half to even and saturated.
These functions are the bridge the oracle tests (onnx backend node tests, onnxruntime) use.
"""

from __future__ import annotations

import numpy as np

from nnasim.kernels.conv2d import Conv2d, ConvGeometry, output_hw
from nnasim.kernels.fully_connected import FullyConnected
from nnasim.kernels.layout import TO_NCHW, TO_NHWC
from nnasim.kernels.requant import make_output_stage, requantize


def _int_range(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _input_bound(dtype, zero_point: int) -> int:
    lo, hi = _int_range(dtype)
    return max(hi - zero_point, zero_point - lo)


def _scalar(value) -> int:
    return int(np.asarray(value).reshape(-1)[0]) if value is not None else 0


def conv_accumulators(x, x_zp, w, w_zp=None, bias=None, attrs=None) -> np.ndarray:
    """ConvInteger: int64 accumulators (NCHW) of ``(x - x_zp) * (w - w_zp)`` plus ``bias``."""
    attrs = attrs or {}
    kernel = tuple(w.shape[2:])
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    onnx_pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
    pads = (onnx_pads[0], onnx_pads[1], onnx_pads[2], onnx_pads[3])  # ONNX order: y0, x0, y1, x1
    groups = int(attrs.get("group", 1))
    w_zp = np.zeros(1, np.int64) if w_zp is None else np.asarray(w_zp, np.int64).reshape(-1)
    weight = w.astype(np.int64) - w_zp.reshape(-1, 1, 1, 1)
    geometry = ConvGeometry(
        kernel, strides, pads, dilations, groups, output_hw(x.shape[2:], kernel, strides, pads, dilations)
    )
    bias = np.zeros(w.shape[0], np.int64) if bias is None else bias
    x_zp = _scalar(x_zp)
    conv = Conv2d(
        weight.transpose(0, 2, 3, 1),
        bias,
        geometry,
        _input_bound(x.dtype, x_zp),
        input_range=_int_range(x.dtype),
    )
    return conv(np.ascontiguousarray(x.transpose(TO_NHWC), dtype=np.int32), x_zp).transpose(TO_NCHW)


def matmul_accumulators(a, a_zp, b, b_zp=None) -> np.ndarray:
    """MatMulInteger: int64 ``(a - a_zp) @ (b - b_zp)`` with numpy batch broadcasting."""
    a_zp = _scalar(a_zp)
    bound = _input_bound(a.dtype, a_zp)
    b_centered = b.astype(np.int64) - (0 if b_zp is None else np.asarray(b_zp, np.int64))
    a = a.astype(np.int32)
    batch = np.broadcast_shapes(a.shape[:-2], b_centered.shape[:-2])
    a = np.broadcast_to(a, (*batch, *a.shape[-2:]))
    b_centered = np.broadcast_to(b_centered, (*batch, *b_centered.shape[-2:]))
    out = np.empty((*batch, a.shape[-2], b_centered.shape[-1]), np.int64)
    for index in np.ndindex(*batch):
        fc = FullyConnected(b_centered[index], None, bound, input_range=_int_range(a.dtype))
        out[index] = fc(np.ascontiguousarray(a[index]), a_zp)
    return out


def float32_multiplier(x_scale, w_scale, y_scale) -> np.ndarray:
    """``x_scale * w_scale / y_scale`` in the scales' own float type (as onnxruntime/ONNX do), as float32."""
    x_scale, w_scale, y_scale = (np.asarray(s) for s in (x_scale, w_scale, y_scale))
    return (x_scale * w_scale / y_scale).astype(np.float32).reshape(-1)


def _requantize_nchw(acc, multiplier, y_zp, out_dtype, rule, channel_axis):
    qmin, qmax = _int_range(out_dtype)
    stage = make_output_stage(
        multiplier,
        rule,
        _scalar(y_zp),
        qmin,
        qmax,
        acc_bits=32 if rule != "fixedpoint" or qmax <= 255 else 48,
    )
    channels_last = np.moveaxis(acc, channel_axis, -1)
    out, _ = requantize(channels_last, stage)
    return np.moveaxis(out, -1, channel_axis).astype(out_dtype)


def qlinear_conv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None, attrs=None, rule="float32"):
    """ONNX QLinearConv (NCHW) through the conv2d kernel and the output stage."""
    acc = conv_accumulators(x, x_zp, w, w_zp, bias, attrs)
    return _requantize_nchw(
        acc, float32_multiplier(x_scale, w_scale, y_scale), y_zp, np.asarray(y_zp).dtype, rule, 1
    )


def qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, rule="float32"):
    """ONNX QLinearMatMul; per-column ``b`` parameters are per-channel along the last axis."""
    acc = matmul_accumulators(a, a_zp, b, b_zp)
    return _requantize_nchw(
        acc, float32_multiplier(a_scale, b_scale, y_scale), y_zp, np.asarray(y_zp).dtype, rule, -1
    )


def _per_axis(param, ndim: int, axis: int) -> np.ndarray:
    param = np.asarray(param)
    if param.size == 1:
        return param.reshape(())
    shape = [1] * ndim
    shape[axis] = -1
    return param.reshape(shape)


def quantize_linear(x, scale, zero_point=None, axis: int = 1, dtype=np.uint8) -> np.ndarray:
    """ONNX QuantizeLinear: ``saturate(rint(x / scale) + zero_point)``, division in float32, ties to even."""
    dtype = np.asarray(zero_point).dtype if zero_point is not None else dtype
    qmin, qmax = _int_range(dtype)
    scale = _per_axis(scale, x.ndim, axis).astype(np.float32)
    zp = 0 if zero_point is None else _per_axis(zero_point, x.ndim, axis).astype(np.int64)
    q = np.rint(x.astype(np.float32) / scale).astype(np.float64) + zp
    return np.clip(np.nan_to_num(q), qmin, qmax).astype(dtype)


def dequantize_linear(x, scale, zero_point=None, axis: int = 1) -> np.ndarray:
    """ONNX DequantizeLinear: ``float32(x - zero_point) * scale``."""
    zp = 0 if zero_point is None else _per_axis(zero_point, x.ndim, axis).astype(np.int64)
    return (x.astype(np.int64) - zp).astype(np.float32) * _per_axis(scale, x.ndim, axis).astype(np.float32)
