"""Reference pooling: numpy over padded copies (max: padded with a value below every integer)."""

from __future__ import annotations

import numpy as np


def _windows(x, kernel, strides, dilations, out_hw):
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            yield x[:, y0 : y0 + sh * (out_hw[0] - 1) + 1 : sh, x0 : x0 + sw * (out_hw[1] - 1) + 1 : sw]


def _padded(x, pads, out_hw, kernel, strides, dilations, value):
    top, left, bottom, right = pads
    need_h = (out_hw[0] - 1) * strides[0] + (kernel[0] - 1) * dilations[0] + 1
    need_w = (out_hw[1] - 1) * strides[1] + (kernel[1] - 1) * dilations[1] + 1
    extra_h = max(need_h - (x.shape[1] + top + bottom), 0)
    extra_w = max(need_w - (x.shape[2] + left + right), 0)
    return np.pad(
        x, ((0, 0), (top, bottom + extra_h), (left, right + extra_w), (0, 0)), constant_values=value
    )


def max_pool_ref(x, kernel, strides, pads, dilations, out_hw):
    low = np.iinfo(np.int64).min
    x = _padded(np.asarray(x, np.int64), pads, out_hw, kernel, strides, dilations, low)
    return np.maximum.reduce(list(_windows(x, kernel, strides, dilations, out_hw)))


def window_sum_ref(x, x_zp, kernel, strides, pads, dilations, out_hw, count_include_pad):
    x = np.asarray(x, np.int64) - x_zp
    valid = np.ones((1, *x.shape[1:3], 1), np.int64)
    padded_valid = _padded(valid, pads, out_hw, kernel, strides, dilations, 1 if count_include_pad else 0)
    # the ceil-mode extension past the padded input never counts
    h, w = valid.shape[1] + pads[0] + pads[2], valid.shape[2] + pads[1] + pads[3]
    padded_valid[:, h:] = 0
    padded_valid[:, :, w:] = 0
    sums = sum(
        _windows(_padded(x, pads, out_hw, kernel, strides, dilations, 0), kernel, strides, dilations, out_hw)
    )
    counts = sum(_windows(padded_valid, kernel, strides, dilations, out_hw))
    return sums, counts[0, :, :, 0]
