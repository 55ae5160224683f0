"""Reference layout ops: the ONNX op applied to the NCHW tensor, the result moved to NHWC if 4-D."""

import numpy as np

TO_NHWC = (0, 2, 3, 1)


def to_engine(x):
    return x.transpose(TO_NHWC) if x.ndim == 4 else x


def transpose_ref(nchw, perm):
    return to_engine(np.transpose(nchw, perm))


def reshape_ref(nchw, shape):
    return to_engine(np.reshape(nchw, shape))


def slice_ref(nchw, slices):
    return to_engine(nchw[tuple(slice(*s) for s in slices)])
