"""Integer transposed convolution as a convolution: the input with ``stride - 1`` pixels between
neighbours that hold the input's zero point (real value 0), cropped where the equivalent conv's
pads are negative; the remaining (positive) pads and the flipped weights are an ordinary ``Conv2d``.
"""

from __future__ import annotations

import numpy as np


def zero_insert(
    x: np.ndarray, x_zp: int, strides: tuple[int, int], crop: tuple[int, int, int, int]
) -> np.ndarray:
    """NHWC ``x`` spread by ``strides`` (new pixels hold ``x_zp``), then ``crop`` (t, l, b, r) removed."""
    (sh, sw), (n, h, w, c) = strides, x.shape
    out = np.full((n, (h - 1) * sh + 1, (w - 1) * sw + 1, c), x_zp, x.dtype)
    out[:, ::sh, ::sw] = x
    top, left, bottom, right = crop
    return np.ascontiguousarray(out[:, top : out.shape[1] - bottom, left : out.shape[2] - right])
