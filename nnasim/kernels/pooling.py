"""Integer pooling, NHWC: max pooling on the integers, average pooling as an exact window sum.

Average pooling returns int64 sums of ``x - x_zp`` and the per-position element counts; the
engine divides by the count in the output stage (one rounding, multiplier ``s_in / (s_out * count)``).
Windows past the input (padding, ceil mode) are skipped; ``count_include_pad`` counts the pads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnasim.kernels.jit import kernel


@kernel(parallel=True)
def max_pool(x, kh, kw, sh, sw, pad_top, pad_left, dh, dw, oh, ow):
    n, h, w, c = x.shape
    out = np.empty((n, oh, ow, c), np.int32)
    for row in prange(n * oh):
        b, oy = row // oh, row % oh
        for ox in range(ow):
            for ch in range(c):
                best = np.int64(-(1 << 62))
                for ky in range(kh):
                    iy = oy * sh - pad_top + ky * dh
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kw):
                        ix = ox * sw - pad_left + kx * dw
                        if 0 <= ix < w and x[b, iy, ix, ch] > best:
                            best = x[b, iy, ix, ch]
                out[b, oy, ox, ch] = best
    return out


@kernel(parallel=True)
def window_sum(x, x_zp, kh, kw, sh, sw, pads, dh, dw, oh, ow, count_include_pad):
    """(int64 sums of x - x_zp per window, int64 element count per output position)."""
    n, h, w, c = x.shape
    pad_top, pad_left, pad_bottom, pad_right = pads[0], pads[1], pads[2], pads[3]
    sums = np.zeros((n, oh, ow, c), np.int64)
    counts = np.zeros((oh, ow), np.int64)
    for row in prange(n * oh):
        b, oy = row // oh, row % oh
        for ox in range(ow):
            count = 0
            for ky in range(kh):
                iy = oy * sh - pad_top + ky * dh
                in_padded_y = -pad_top <= iy < h + pad_bottom
                for kx in range(kw):
                    ix = ox * sw - pad_left + kx * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        count += 1
                        for ch in range(c):
                            sums[b, oy, ox, ch] += np.int64(x[b, iy, ix, ch]) - x_zp
                    elif count_include_pad and in_padded_y and -pad_left <= ix < w + pad_right:
                        count += 1
            counts[oy, ox] = count
    return sums, counts
