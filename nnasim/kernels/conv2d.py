"""Integer 2-D convolution, NHWC: groups, depthwise, dilation, stride, padding (top, left, bottom, right).

Accumulates ``sum (x - x_zp) * w + bias`` exactly (int64 values). Dense and grouped convolutions
are im2col (Numba) plus an exact BLAS product (see ``gemm``); depthwise convolutions are a direct
Numba loop, parallel over output rows. Padding contributes zero (``x_zp`` in the input's format).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from nnasim.kernels.gemm import ExactMatmul


@dataclass(frozen=True)
class ConvGeometry:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]


def output_hw(in_hw, kernel, strides, pads, dilations) -> tuple[int, int]:
    """Output height/width (floor mode) of a convolution or pooling window."""
    return tuple(
        (size + pads[i] + pads[i + 2] - (dilations[i] * (kernel[i] - 1) + 1)) // strides[i] + 1
        for i, size in enumerate(in_hw)
    )


class Conv2d:
    """A convolution layer's integer core with its weights prepared once.

    ``weight`` is int (O, KH, KW, I/groups); ``input_bound`` is the largest |x - x_zp| possible.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, geometry: ConvGeometry, input_bound: int):
        self.geometry = geometry
        self.weight = np.ascontiguousarray(weight, dtype=np.int64)
        self.bias = np.asarray(bias, dtype=np.int64)
        out_ch, kh, kw, cin_g = weight.shape
        self.depthwise = geometry.groups > 1 and cin_g == 1 and out_ch == geometry.groups
        if not self.depthwise:
            per_group = out_ch // geometry.groups
            self.matmuls = [
                ExactMatmul(
                    self.weight[g * per_group : (g + 1) * per_group].reshape(per_group, -1).T, input_bound
                )
                for g in range(geometry.groups)
            ]

    def __call__(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        g = self.geometry
        if self.depthwise:
            return depthwise_conv2d(
                x, np.int64(x_zp), self.weight, self.bias, *g.strides, *g.pads[:2], *g.dilations, *g.out_hw
            )
        n = x.shape[0]
        cin_g = x.shape[3] // g.groups
        outs = []
        for group, matmul in enumerate(self.matmuls):
            cols = im2col(
                x[..., group * cin_g : (group + 1) * cin_g],
                np.int64(x_zp),
                *g.kernel,
                *g.strides,
                *g.pads[:2],
                *g.dilations,
                *g.out_hw,
                np.zeros(1, matmul.dtype),
            )
            outs.append(matmul(cols))
        acc = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)
        acc += self.bias
        return acc.reshape(n, *g.out_hw, -1)


@njit(cache=True, parallel=True)
def im2col(x, x_zp, kh, kw, sh, sw, pad_top, pad_left, dh, dw, oh, ow, dtype_probe):
    """Rows (n, oy, ox), columns (ky, kx, c) of ``x - x_zp``; zero where the window leaves the input."""
    n, h, w, c = x.shape
    cols = np.zeros((n * oh * ow, kh * kw * c), dtype_probe.dtype)
    for row in prange(n * oh):
        b, oy = row // oh, row % oh
        for ox in range(ow):
            r = row * ow + ox
            for ky in range(kh):
                iy = oy * sh - pad_top + ky * dh
                if iy < 0 or iy >= h:
                    continue
                for kx in range(kw):
                    ix = ox * sw - pad_left + kx * dw
                    if ix < 0 or ix >= w:
                        continue
                    base = (ky * kw + kx) * c
                    for ch in range(c):
                        cols[r, base + ch] = x[b, iy, ix, ch] - x_zp
    return cols


@njit(cache=True, parallel=True)
def depthwise_conv2d(x, x_zp, weight, bias, sh, sw, pad_top, pad_left, dh, dw, oh, ow):
    """Depthwise convolution (one filter per channel, channel multiplier 1) with int64 accumulators."""
    n, h, w, c = x.shape
    kh, kw = weight.shape[1], weight.shape[2]
    acc = np.empty((n, oh, ow, c), np.int64)
    for row in prange(n * oh):
        b, oy = row // oh, row % oh
        for ox in range(ow):
            for ch in range(c):
                acc[b, oy, ox, ch] = bias[ch]
            for ky in range(kh):
                iy = oy * sh - pad_top + ky * dh
                if iy < 0 or iy >= h:
                    continue
                for kx in range(kw):
                    ix = ox * sw - pad_left + kx * dw
                    if ix < 0 or ix >= w:
                        continue
                    for ch in range(c):
                        acc[b, oy, ox, ch] += (np.int64(x[b, iy, ix, ch]) - x_zp) * weight[ch, ky, kx, 0]
    return acc
