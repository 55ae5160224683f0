"""Integer layer normalisation over the last axis of (rows, N) integers, fixed point throughout.

Per row, with ``d = q - zp``: the mean is ``m = round(sum(d) * 2**P / N)``, the centred values
``c = d * 2**P - m`` carry ``P`` fraction bits, the variance is ``V = floor(sum(c*c) / N)`` and the
standard deviation ``sigma = isqrt(V + eps_q)`` (exact integer square root, ``eps`` in the same
units). The normalised value ``z = round(c * 2**Z / sigma)`` has ``Z`` fraction bits; the output is
``zo + round((z * G[j] + B[j] * 2**Z) / 2**(Z + F))`` with ``G = round(scale / s_out * 2**F)`` and
``B = round(bias / s_out * 2**F)`` per element ``j`` of the row, saturated to [qmin, qmax].
Rounding is half away from zero everywhere. ``P`` and ``F`` are chosen per layer so no int64
intermediate overflows (``layer_norm_params``). No floating point at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from nnasim.kernels.fixedpoint import rounding_divide_by_pot
from nnasim.kernels.jit import kernel

MAX_CENTRE_BITS = 16
NORM_BITS = 16  # Z: fraction bits of the normalised value
MAX_GAIN_BITS = 16
INT64_SAFE = 2**62


@dataclass(frozen=True)
class LayerNormParams:
    centre_bits: int  # P
    gain_bits: int  # F
    eps: int  # eps in units of (s_in * 2**-P)**2
    gain: np.ndarray  # int64 G per element of the row
    offset: np.ndarray  # int64 B per element of the row


def layer_norm_params(
    scale: np.ndarray, bias: np.ndarray, epsilon: float, s_in: float, s_out: float, input_bound: int
) -> LayerNormParams:
    """Fixed-point parameters for rows of ``scale.size`` elements with ``|q - zp| <= input_bound``."""
    n = scale.size
    centre = MAX_CENTRE_BITS
    while centre > 0 and n * (2 * input_bound << centre) ** 2 >= INT64_SAFE:
        centre -= 1
    gain_real = np.asarray(scale, np.float64).reshape(-1) / s_out
    offset_real = np.asarray(bias, np.float64).reshape(-1) / s_out
    largest = float(np.abs(gain_real).max(initial=0)) * np.sqrt(n) + float(np.abs(offset_real).max(initial=0))
    gain_bits = MAX_GAIN_BITS
    while gain_bits > 0 and (largest + 1) * 2.0 ** (NORM_BITS + gain_bits) >= INT64_SAFE / 4:
        gain_bits -= 1
    eps = min(int(round(epsilon / (s_in * 2.0**-centre) ** 2)), INT64_SAFE // 4)
    return LayerNormParams(
        centre_bits=centre,
        gain_bits=gain_bits,
        eps=eps,
        gain=np.rint(gain_real * 2.0**gain_bits).astype(np.int64),
        offset=np.rint(offset_real * 2.0**gain_bits).astype(np.int64),
    )


def layer_norm(q: np.ndarray, zp: int, params: LayerNormParams, zo: int, qmin: int, qmax: int):
    """``q``: int (rows, N); returns (int32 (rows, N), saturations)."""
    out = np.empty(q.shape, np.int32)
    saturations = _layer_norm_rows(
        np.ascontiguousarray(q),
        np.int64(zp),
        params.centre_bits,
        params.gain_bits,
        np.int64(params.eps),
        params.gain,
        params.offset,
        np.int64(zo),
        qmin,
        qmax,
        out,
    )
    return out, int(saturations)


@kernel(inline="always")
def isqrt(n):
    """floor(sqrt(n)) of an int64 ``n >= 0`` by integer Newton iteration."""
    if n < 2:
        return n
    x = n
    y = (x + 1) // 2
    while y < x:
        x = y
        y = (x + n // x) // 2
    return x


@kernel(inline="always")
def round_div(a, b):
    """``a / b`` for ``b > 0``, rounded half away from zero."""
    if a >= 0:
        return (2 * a + b) // (2 * b)
    return -((-2 * a + b) // (2 * b))


@kernel(parallel=True)
def _layer_norm_rows(q, zp, centre, gain_bits, eps, gain, offset, zo, qmin, qmax, out):
    rows, n = q.shape
    counts = np.zeros(rows, np.int64)
    for r in prange(rows):
        total = np.int64(0)
        for j in range(n):
            total += np.int64(q[r, j]) - zp
        mean = round_div(total << centre, np.int64(n))
        squares = np.int64(0)
        for j in range(n):
            c = ((np.int64(q[r, j]) - zp) << centre) - mean
            squares += c * c
        sigma = max(isqrt(squares // n + eps), np.int64(1))
        for j in range(n):
            c = ((np.int64(q[r, j]) - zp) << centre) - mean
            z = round_div(c << NORM_BITS, sigma)
            y = rounding_divide_by_pot(z * gain[j] + (offset[j] << NORM_BITS), NORM_BITS + gain_bits) + zo
            if y < qmin or y > qmax:
                counts[r] += 1
            out[r, j] = min(max(y, qmin), qmax)
    return counts.sum()
