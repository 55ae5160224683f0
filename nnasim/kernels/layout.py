"""Data movement without arithmetic: transpose, reshape and slicing of integer tensors.

The engine keeps 4-D tensors NHWC; these helpers apply ONNX-layout (NCHW) semantics to them.
"""

from __future__ import annotations

import numpy as np

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def to_onnx_layout(x: np.ndarray) -> np.ndarray:
    return x.transpose(TO_NCHW) if x.ndim == 4 else x


def from_onnx_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(TO_NHWC)) if x.ndim == 4 else x


def transpose(x: np.ndarray, perm) -> np.ndarray:
    """ONNX Transpose on an engine-layout tensor; result in engine layout."""
    return from_onnx_layout(np.ascontiguousarray(to_onnx_layout(x).transpose(perm)))


def reshape(x: np.ndarray, shape) -> np.ndarray:
    """ONNX Reshape (row-major in NCHW order) on an engine-layout tensor."""
    return from_onnx_layout(np.ascontiguousarray(to_onnx_layout(x)).reshape(shape))


def slice_(x: np.ndarray, slices) -> np.ndarray:
    """ONNX Slice given as (start, stop, step) per ONNX axis."""
    index = tuple(slice(*s) for s in slices)
    return from_onnx_layout(np.ascontiguousarray(to_onnx_layout(x)[index]))


def onnx_axis_to_engine(axis: int, ndim: int) -> int:
    """Where ONNX axis ``axis`` of a rank-``ndim`` tensor lives in the engine layout."""
    axis = axis % ndim
    return TO_NHWC.index(axis) if ndim == 4 else axis
