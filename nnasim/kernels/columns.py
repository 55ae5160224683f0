"""The products' input: im2col columns and padded rows of ``x - offset``, in one or two planes.

One plane holds ``x - offset`` in the destination type (float for BLAS, int16 or uint8 for the
integer products). Two planes split a 16-bit value ``v = x - offset`` (``0 <= v < 2**16``)
into its low and high bytes, the first ``width`` columns holding ``v & 255`` and the next
``width`` ``v >> 8``, so that 8-bit integer products serve a 16-bit input (``intgemm``). The
number of planes is the length of ``fill``, which holds each plane's value where the window
leaves the input. Every element is written once (no zero-filled allocation): the copies are
memory-bound, and parallel over rows.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnasim.kernels.jit import kernel


@kernel(inline="always")
def _copy_planes(low, high, source, x_zp, planes):
    """``low[:] = source - x_zp`` with one plane; with two, its low bytes into ``low`` and its
    high bytes into ``high``, each value read once. The branch stays outside the loops, which
    then vectorise."""
    if planes == 1:
        for ch in range(source.size):
            low[ch] = source[ch] - x_zp
    else:
        for ch in range(source.size):
            v = source[ch] - x_zp
            low[ch] = v & 255
            high[ch] = v >> 8


@kernel(parallel=True)
def im2col(x, x_zp, kh, kw, sh, sw, pad_top, pad_left, dh, dw, oh, ow, width, fill):
    """Rows (n, oy, ox) and, per plane p, columns ``p * width + (ky, kx, c)`` of ``x - x_zp``
    in ``fill``'s type; ``fill[p]`` where the window leaves the input and in the columns from
    ``kh * kw * c`` up to ``width``."""
    n, h, w, c = x.shape
    planes = fill.size
    high = width * (planes - 1)  # where the second plane's columns begin
    cols = np.empty((n * oh * ow, planes * width), fill.dtype)
    for row in prange(n * oh):
        b, oy = row // oh, row % oh
        for ox in range(ow):
            r = row * ow + ox
            for p in range(planes):
                cols[r, p * width + kh * kw * c : (p + 1) * width] = fill[p]
            for ky in range(kh):
                iy = oy * sh - pad_top + ky * dh
                for kx in range(kw):
                    ix = ox * sw - pad_left + kx * dw
                    base = (ky * kw + kx) * c
                    if iy < 0 or iy >= h or ix < 0 or ix >= w:
                        for p in range(planes):
                            cols[r, p * width + base : p * width + base + c] = fill[p]
                    else:
                        low, high_bytes = cols[r, base : base + c], cols[r, high + base : high + base + c]
                        _copy_planes(low, high_bytes, x[b, iy, ix], x_zp, planes)
    return cols


@kernel(parallel=True)
def padded_rows(image, x_zp, top, left, bottom, right, extra, channels, fill):
    """(Hp * Wp + extra, planes * channels) rows of ``image - x_zp`` (H, W, C) padded by the
    given margins, in ``fill``'s type, plane p in columns ``p * channels`` on: ``fill[p]`` in
    the margins, the channels past C and the ``extra`` rows."""
    h, w, c = image.shape
    planes = fill.size
    high = channels * (planes - 1)
    hp, wp = h + top + bottom, w + left + right
    rows = np.empty((hp * wp + extra, planes * channels), fill.dtype)
    for p in range(planes):
        rows[hp * wp :, p * channels : (p + 1) * channels] = fill[p]
    for y in prange(hp):
        iy = y - top
        for x in range(wp):
            r, ix = y * wp + x, x - left
            inside = 0 <= iy < h and 0 <= ix < w
            for p in range(planes):
                rows[r, p * channels + (c if inside else 0) : (p + 1) * channels] = fill[p]
            if inside:
                _copy_planes(rows[r, :c], rows[r, high : high + c], image[iy, ix], x_zp, planes)
    return rows
