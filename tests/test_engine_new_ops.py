"""The integer engine on each op added for real models, at 8 and 16 bits, against onnxruntime's fp32.

Calibrated on the same inputs, the outputs must reach the SQNR the widths allow; the kernels
themselves are bit-exact against their numpy references in tests/test_kernel_*.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx_builders import input_shape
from oracles import ort_run
from test_float_exec import CASES

from nnasim.engine.session import build_session
from nnasim.frontend import load_lowered

NEW_OP_CASES = [
    "conv_transpose",
    "conv_transpose_output_padding_groups",
    "conv_one_input_channel",
    "split_input",
    "hard_sigmoid",
    "hard_swish",
    "sqrt",
    "pow_2",
    "pow_0_5",
    "erf",
    "reduce_mean_keepdims",
    "reduce_mean_axes_input",
    "layer_norm",
    "layer_norm_two_axes",
    "matmul_activations",
]
MIN_DB = {8: 30.0, 16: 75.0}


@pytest.mark.parametrize("scheme", ["pow2", "affine"])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("case", NEW_OP_CASES)
def test_new_op_integer_engine_tracks_onnxruntime(case, bits, scheme):
    model = CASES[case]()
    rng = np.random.default_rng(3)
    feeds = [{"x": rng.standard_normal(input_shape(model)).astype(np.float32)} for _ in range(3)]
    if case.startswith(("sqrt", "pow_0")):
        feeds = [{"x": np.abs(feed["x"])} for feed in feeds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = build_session(load_lowered(model), bits, scheme=scheme, calib=feeds)
    expected = ort_run(model, feeds[0])[0]
    got = session.run(feeds[0])["y"]
    sqnr = 10 * np.log10(np.sum(expected**2) / np.sum((got - expected) ** 2))
    assert sqnr > MIN_DB[bits], f"{sqnr:.1f} dB"
    assert sum(session.saturations.values()) <= 1  # at most the calibrated extreme, rounded past qmax
