"""Reference fully connected layer: int64 numpy matmul."""

import numpy as np


def fully_connected_ref(x, x_zp, w, bias):
    out = (np.asarray(x, np.int64) - x_zp) @ np.asarray(w, np.int64)
    return out if bias is None else out + np.asarray(bias, np.int64)
