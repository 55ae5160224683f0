"""Graphs that arrive with their own formats on every tensor (full-integer TFLite files).

The frontend puts the file's scale, zero point and axis on each tensor and stores constants as
real values (float32 weights, float64 biases); ``integer_constants`` turns them back into the
file's exact integers for the engine, as ``import_qdq`` does for QDQ weights.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnasim.errors import ModelError
from nnasim.ir import Graph, Tensor
from nnasim.quant.params import per_axis


def carries_formats(graph: Graph) -> bool:
    """Whether every graph input and every computed tensor already has a format."""
    computed = [*graph.inputs, *(out for node in graph.nodes for out in node.outputs)]
    return bool(graph.nodes) and all(graph.tensors[name].quant is not None for name in computed)


def integer_constants(graph: Graph) -> Graph:
    """Every constant with a format as its exact integers ``round(real / scale) + zero_point``."""
    tensors = {
        name: exact_integers(tensor, graph.source or graph.name)
        if tensor.is_const and tensor.quant
        else tensor
        for name, tensor in graph.tensors.items()
    }
    return graph.with_(tensors=tensors)


def exact_integers(tensor: Tensor, where: str) -> Tensor:
    """A constant stored as real values, back to the exact integers of its own format (``where``
    names the file, or file and node, for the error)."""
    if tensor.data.dtype.kind in "iu":
        return tensor
    fmt, data = tensor.quant, tensor.data
    scale = per_axis(fmt.scale, data.ndim, fmt.axis).astype(data.dtype)
    zp = per_axis(fmt.zero_point, data.ndim, fmt.axis).astype(np.int64)
    q = np.rint(data / scale).astype(np.int64) + zp
    if not np.array_equal((q - zp).astype(data.dtype) * scale, data):
        raise ModelError(f"{where}: constant {tensor.name!r} is not exactly representable in its own format")
    return replace(tensor, data=q)
