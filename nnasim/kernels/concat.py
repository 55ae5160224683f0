"""Concatenation with rescaling: every input is requantized to the output's format first."""

from __future__ import annotations

import numpy as np

from nnasim.kernels.requant import OutputStage, requantize


def concat(inputs: list[np.ndarray], zero_points: list[int], stages: list[OutputStage], axis: int):
    """Join ``inputs`` along ``axis``; input i is ``requantize(x_i - z_i, stages[i])``.

    Returns (int32 output, saturations).
    """
    parts, saturations = [], 0
    for x, zp, stage in zip(inputs, zero_points, stages, strict=True):
        part, count = requantize(x.astype(np.int64) - zp, stage)
        parts.append(part)
        saturations += count
    return np.concatenate(parts, axis=axis), saturations
