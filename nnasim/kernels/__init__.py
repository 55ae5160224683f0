"""Integer kernels (NHWC, exact integer arithmetic), one op per module, listed in ``KERNELS``.

Adding a kernel: write the module with ``@kernel`` loops (``nnasim.kernels.jit``: Numba, compiled
once per machine into the user's cache, never with function-typed arguments), add it here, add
its plain numpy int64 reference under ``tests/reference/`` and a bit-exact test
``tests/test_kernel_<op>.py``, then teach ``nnasim.engine.layers`` to build it from an IR node.
"""

from __future__ import annotations

from nnasim.kernels import (
    add,
    concat,
    conv2d,
    conv_transpose,
    fully_connected,
    layernorm,
    layout,
    lut,
    matmul,
    mul,
    pooling,
    quantize,
    reduce,
    resize,
    softmax,
)
from nnasim.kernels.requant import requantize

KERNELS = {
    "conv2d": conv2d.Conv2d,
    "depthwise_conv2d": conv2d.depthwise_conv2d,
    "conv_transpose_input": conv_transpose.zero_insert,
    "fully_connected": fully_connected.FullyConnected,
    "matmul_activations": matmul.matmul_activations,
    "layer_norm": layernorm.layer_norm,
    "reduce_sum": reduce.reduce_sum,
    "add": add.add,
    "mul": mul.mul,
    "concat": concat.concat,
    "max_pool": pooling.max_pool,
    "window_sum": pooling.window_sum,
    "lookup": lut.lookup,
    "softmax": softmax.softmax_last_axis,
    "resize_nearest": resize.resize_nearest,
    "resize_bilinear": resize.resize_bilinear,
    "transpose": layout.transpose,
    "reshape": layout.reshape,
    "slice": layout.slice_,
    "requantize": requantize,
    "quantize_input": quantize.quantize_to_engine,
}
