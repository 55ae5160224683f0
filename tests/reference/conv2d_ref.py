"""Reference convolution: int64 numpy, NHWC, explicit zero padding, one einsum per kernel tap."""

from __future__ import annotations

import numpy as np


def conv2d_ref(x, x_zp, w, bias, strides, pads, dilations, groups):
    """x int (N,H,W,C); w int (O,KH,KW,C/groups); pads (top,left,bottom,right); returns int64 NHWC."""
    x = np.asarray(x, np.int64) - x_zp
    w = np.asarray(w, np.int64)
    top, left, bottom, right = pads
    x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (wd - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, oh, ow, o), np.int64)
    for g in range(groups):
        xg = x[..., g * cg : (g + 1) * cg]
        wg = w[g * og : (g + 1) * og]
        for ky in range(kh):
            for kx in range(kw):
                patch = xg[
                    :, ky * dh : ky * dh + sh * (oh - 1) + 1 : sh, kx * dw : kx * dw + sw * (ow - 1) + 1 : sw
                ]
                out[..., g * og : (g + 1) * og] += np.einsum("nhwc,oc->nhwo", patch, wg[:, ky, kx])
    return out + np.asarray(bias, np.int64)
