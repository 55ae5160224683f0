"""Reference transposed convolution by its definition: every input pixel scatters ``x * w`` (int64)."""

import numpy as np


def conv_transpose_ref(x, x_zp, weight, strides, pads, dilations, group, out_hw):
    """``x`` NCHW ints, ``weight`` ONNX (C_in, C_out/group, KH, KW); pads (top, left, bottom, right)
    of the ConvTranspose itself; returns int64 (N, C_out, OH, OW) sums of ``(x - x_zp) * w``."""
    x = np.asarray(x, np.int64) - x_zp
    weight = np.asarray(weight, np.int64)
    n, cin, h, w = x.shape
    cout_g, kh, kw = weight.shape[1:]
    cin_g = cin // group
    (sh, sw), (dh, dw) = strides, dilations
    out = np.zeros((n, cout_g * group, *out_hw), np.int64)
    for ci in range(cin):
        g = ci // cin_g
        for iy in range(h):
            for ix in range(w):
                for ky in range(kh):
                    oy = iy * sh + ky * dh - pads[0]
                    if not 0 <= oy < out_hw[0]:
                        continue
                    for kx in range(kw):
                        ox = ix * sw + kx * dw - pads[1]
                        if 0 <= ox < out_hw[1]:
                            out[:, g * cout_g : (g + 1) * cout_g, oy, ox] += (
                                x[:, ci, iy, ix, None] * weight[ci, :, ky, kx]
                            )
    return out
