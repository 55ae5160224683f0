"""Quantization formats from ranges: activations (affine or pow2) and weights (symmetric).

``affine``: ``real = scale * (q - zero_point)``, asymmetric activations, symmetric weights in the
narrow range ``[-(2**(b-1) - 1), 2**(b-1) - 1]``, the TFLite convention. ``pow2``: zero point 0 and
``scale = 2**-f`` (a Q-format with ``f`` fractional bits), the largest ``f`` whose range still holds
the calibrated magnitude. Scales are float32, as ONNX stores them.
"""

from __future__ import annotations

import math

import numpy as np

from nnasim.ir import QuantParams

SCHEMES = ("pow2", "affine")
MIN_SCALE = 2.0**-100  # ranges narrower than this are treated as this wide (float32 stays normal)


def int_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def pow2_scale(magnitude: float, qmax: int) -> float:
    """Smallest power-of-two scale with ``magnitude <= qmax * scale`` (2**0 for an all-zero tensor)."""
    if not magnitude > 0 or not math.isfinite(magnitude):
        return 1.0
    return max(2.0 ** math.ceil(math.log2(magnitude / qmax)), MIN_SCALE)


def activation_params(lo: float, hi: float, bits: int, scheme: str) -> QuantParams:
    """Per-tensor format covering ``[lo, hi]`` (widened to include 0, so 0 is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmin, qmax = int_range(bits)
    if scheme == "pow2":
        scale, zero_point = pow2_scale(max(-lo, hi), qmax), 0
    else:
        scale = max(float(np.float32((hi - lo) / (qmax - qmin))), MIN_SCALE) if hi > lo else 1.0
        zero_point = int(np.clip(qmin - round(lo / scale), qmin, qmax))
    return QuantParams(np.array(scale, np.float32), np.array(zero_point, np.int32), bits, scheme)


def unit_params(bits: int, scheme: str) -> QuantParams:
    """The fixed format of outputs in [0, 1] (softmax, sigmoid): ``scale = 2**-k``, as TFLite does."""
    qmin, _ = int_range(bits)
    if scheme == "pow2":
        scale, zero_point = 2.0 ** -(bits - 1), 0
    else:
        scale, zero_point = 2.0**-bits, qmin
    return QuantParams(np.array(scale, np.float32), np.array(zero_point, np.int32), bits, scheme)


def weight_params(
    weight: np.ndarray, bits: int, scheme: str, axis: int | None, min_scale: np.ndarray | float = 0.0
) -> QuantParams:
    """Symmetric weight format, per tensor (``axis`` None) or per channel along ``axis``; no scale
    below ``min_scale`` (per channel or one value) unless the channel is all zeros."""
    _, qmax = int_range(bits)
    if axis is None:
        magnitudes = np.array([np.abs(weight).max(initial=0.0)])
    else:
        magnitudes = (
            np.abs(np.moveaxis(weight, axis, 0)).reshape(weight.shape[axis], -1).max(axis=1, initial=0.0)
        )
    magnitudes = np.where(magnitudes > 0, np.maximum(magnitudes, np.asarray(min_scale) * qmax), 0.0)
    if scheme == "pow2":
        scales = np.array([pow2_scale(float(m), qmax) for m in magnitudes])
    else:
        scales = np.where(magnitudes > 0, np.maximum(magnitudes / qmax, MIN_SCALE), 1.0)
    scales = scales.astype(np.float32)
    shape = () if axis is None else scales.shape
    return QuantParams(scales.reshape(shape), np.zeros(shape, np.int32), bits, scheme, axis=axis)


def per_axis(values: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    """Reshape per-channel ``values`` to broadcast along ``axis`` of a rank-``ndim`` array."""
    values = np.asarray(values)
    if axis is None or values.ndim == 0:
        return values.reshape(())
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def quantize_array(x: np.ndarray, params: QuantParams, narrow: bool = False) -> np.ndarray:
    """``saturate(rint(x / scale) + zero_point)`` in float32 (ONNX QuantizeLinear), as int32."""
    qmin, qmax = params.qmin + (1 if narrow else 0), params.qmax
    scale = per_axis(params.scale, x.ndim, params.axis).astype(np.float32)
    zero_point = per_axis(params.zero_point, x.ndim, params.axis).astype(np.float64)
    q = np.rint(np.asarray(x, np.float32) / scale).astype(np.float64) + zero_point
    return np.clip(np.nan_to_num(q), qmin, qmax).astype(np.int32)


def dequantize_array(q: np.ndarray, params: QuantParams, axis: int | None = None) -> np.ndarray:
    """``float32(q - zero_point) * scale`` (ONNX DequantizeLinear); ``axis`` overrides the params' axis."""
    axis = params.axis if axis is None else axis
    zero_point = per_axis(params.zero_point, q.ndim, axis).astype(np.int64)
    scale = per_axis(params.scale, q.ndim, axis).astype(np.float32)
    return (np.asarray(q, np.int64) - zero_point).astype(np.float32) * scale
