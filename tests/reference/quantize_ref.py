"""Reference input quantization: ONNX QuantizeLinear in float32 on the NCHW tensor, then NHWC."""

import numpy as np

TO_NHWC = (0, 2, 3, 1)


def quantize_ref(x, scale, zero_point, qmin, qmax):
    q = np.rint(np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64) + zero_point
    q = np.clip(np.where(np.isnan(q), 0.0, q), qmin, qmax).astype(np.int64)
    return q.transpose(TO_NHWC) if q.ndim == 4 else q
