"""The integer engine: sessions built from a quantized graph, run on the kernels.

``set_threads`` is the kernels' one thread count (Numba and the product blocks; BLAS stays at one).
"""

from nnasim.kernels.parallel import set_threads

__all__ = ["set_threads"]
