"""Exact integer matrix products through float BLAS, the engine's speed trick.

Integer products summed in float32 are exact while every partial sum stays below 2**24 (float64:
2**53). The bound is proved per call from the actual weights and the largest possible input
magnitude; where it does not hold, the reduction is split into chunks that each satisfy it and
the chunk results are added in int64. The result is bit-identical to an int64 dot product.
"""

from __future__ import annotations

import numpy as np

from nnasim.kernels.parallel import threads

FLOAT32_EXACT = 2**24
FLOAT64_EXACT = 2**53
BLOCK_ELEMENTS = 1 << 16  # accumulators per block of a product: 256 KiB of float32, stays in L2


def block_rows(rows: int, columns: int) -> int:
    """Rows per block of a (rows x columns) product: an L2-sized block, and at least one block
    per thread."""
    return max(1, min(BLOCK_ELEMENTS // max(columns, 1), -(-rows // threads())))


def shared_block_rows(rows: int, columns: int) -> int:
    """Rows per block of a product whose kernels share each block among the threads: an
    L2-sized part per thread."""
    return max(1, min(BLOCK_ELEMENTS * threads() // max(columns, 1), rows))


def exact_chunks(weight: np.ndarray, input_bound: int, limit: int) -> list[tuple[int, int]]:
    """Split the reduction axis (rows of ``weight``, K x N) so each chunk's worst sum is < ``limit``.

    The worst partial sum of column n over rows [k0, k1) is input_bound * sum |w[k, n]|; chunks
    are taken greedily, each as long as the bound allows.
    """
    magnitude = np.abs(weight.astype(np.int64)) * int(input_bound)
    if int(magnitude.max(initial=0)) >= limit:
        raise ValueError("a single product exceeds the exact float range")
    cumulative = np.vstack([np.zeros((1, weight.shape[1]), np.int64), np.cumsum(magnitude, axis=0)])
    chunks, start = [], 0
    while start < weight.shape[0]:
        worst = (cumulative[start + 1 :] - cumulative[start]).max(axis=1)
        too_big = np.flatnonzero(worst >= limit)
        end = start + int(too_big[0]) if too_big.size else weight.shape[0]
        chunks.append((start, end))
        start = end
    return chunks


class ExactMatmul:
    """``cols @ weight`` for integer-valued float ``cols`` (M x K) and an integer ``weight`` (K x N).

    Chooses float32 when the proved bound allows, else float64, chunking the reduction if needed.
    """

    def __init__(self, weight: np.ndarray, input_bound: int):
        self.dtype = np.float32
        chunks = self._chunks_or_none(weight, input_bound, FLOAT32_EXACT)
        if chunks is None or len(chunks) > 4:
            self.dtype = np.float64
            chunks = exact_chunks(weight, input_bound, FLOAT64_EXACT)
        self.chunks = chunks
        self.weights = [np.ascontiguousarray(weight[k0:k1], dtype=self.dtype) for k0, k1 in chunks]

    @staticmethod
    def _chunks_or_none(weight, input_bound, limit):
        try:
            return exact_chunks(weight, input_bound, limit)
        except ValueError:
            return None

    def __call__(self, cols: np.ndarray) -> np.ndarray:
        """(M x N) products of exact integers: a float array (one chunk) or int64 (chunks summed).

        ``cols`` must already be in ``self.dtype``.
        """
        if len(self.chunks) == 1:
            return cols @ self.weights[0]
        total = np.zeros((cols.shape[0], self.weights[0].shape[1]), np.int64)
        for (k0, k1), weight in zip(self.chunks, self.weights, strict=True):
            total += (cols[:, k0:k1] @ weight).astype(np.int64)
        return total
