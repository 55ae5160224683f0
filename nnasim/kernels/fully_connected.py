"""Integer fully connected layer / matrix multiply: ``(x - x_zp) @ W + bias`` with exact int64 sums.

Integer products (int16 pairs, or VNNI's uint8 quads) where int32 accumulation is proved exact
(``intgemm``), else an exact float BLAS product (``gemm``).
"""

from __future__ import annotations

import numpy as np

from nnasim.kernels.gemm import ExactMatmul
from nnasim.kernels.intgemm import IntegerProducts


class FullyConnected:
    """``weight`` is int (K, N); ``input_bound`` is the largest |x - x_zp| possible and
    ``input_range`` the input format's (least, largest) value, where known (see ``Conv2d``).
    ``integer_products=False`` keeps the float product where the integer one would be exact."""

    def __init__(
        self,
        weight: np.ndarray,
        bias: np.ndarray | None,
        input_bound: int,
        integer_products: bool = True,
        input_range: tuple[int, int] | None = None,
    ):
        weight = np.asarray(weight, np.int64)
        self.products = (
            IntegerProducts.planned(weight[None], input_bound, input_range) if integer_products else None
        )
        self.matmul = None if self.products is not None else ExactMatmul(weight, input_bound)
        self.channels = weight.shape[1]
        self.bias = None if bias is None else np.asarray(bias, np.int64)

    def __call__(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """int64 accumulators, bias included."""
        acc = self.accumulate(x, x_zp).astype(np.int64)
        return acc if self.bias is None else acc + self.bias

    def accumulate(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """Accumulators without the bias: int32 or int64 (integer products), or int64 or floats holding
        exact integers (see ``gemm``)."""
        rows = x.reshape(-1, x.shape[-1])
        products = self.products
        if products is None:
            cols = np.subtract(rows, self.matmul.dtype(x_zp), dtype=self.matmul.dtype)
            return self.matmul(cols).reshape(*x.shape[:-1], -1)
        acc = np.empty((rows.shape[0], self.channels), products.out_dtype)
        products(products.columns(rows, x_zp), np.zeros(1, np.int64), acc, x_zp)
        return acc.reshape(*x.shape[:-1], -1)
