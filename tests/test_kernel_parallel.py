"""Threads (``nnasim.kernels.parallel``): the same integers at one and two threads, BLAS kept
to one thread, and ``--threads`` on the command line."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from nnasim.cli import main
from nnasim.kernels import intgemm, parallel
from nnasim.kernels.conv2d import Conv2d, ConvGeometry
from nnasim.kernels.requant import Requantizer, make_output_stage, requantize


@pytest.fixture
def restore_threads():
    yield
    parallel.set_threads(1)


@pytest.mark.parametrize("kernel,strides", [((3, 3), (1, 1)), ((3, 3), (2, 2)), ((1, 1), (1, 1))])
def test_blocked_conv_is_the_same_at_one_and_two_threads(kernel, strides, restore_threads):
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 23, 19, 5)).astype(np.int32)
    weight = rng.integers(-127, 128, (7, *kernel, 5))
    bias = rng.integers(-5000, 5000, 7)
    pads = (1, 1, 1, 1) if kernel == (3, 3) else (0, 0, 0, 0)
    out_hw = tuple((n + pads[i] + pads[i + 2] - kernel[i]) // strides[i] + 1 for i, n in enumerate((23, 19)))
    conv = Conv2d(weight, bias, ConvGeometry(kernel, strides, pads, (1, 1), 1, out_hw), input_bound=128)
    stage = make_output_stage(np.full(7, 2.0**-9), "pow2", 0, -128, 127, 32)
    expected = requantize(conv(x, 3), stage)  # int64 accumulators (bias included), one pass
    results = []
    for threads in (1, 2):
        parallel.set_threads(threads)
        results.append(conv.run(x, 3, Requantizer(stage, 7, conv.bias, conv.acc_bound)))
    for out, saturations in results:
        assert np.array_equal(out, expected[0]) and saturations == expected[1]


@pytest.mark.parametrize("quads", [False, True])
def test_integer_products_share_their_blocks_among_threads(quads, restore_threads):
    """Row blocks and panels split between two threads give int64 numpy's integers."""
    if quads and intgemm.QUADS is None:
        pytest.skip("no VNNI on this CPU")
    rng = np.random.default_rng(11)
    rows, k, n = 3 * intgemm.MC + 7, 70, 75  # several row blocks, partial tiles and panels
    weight = rng.integers(-128, 128, (2, k, n))
    x_zp = 5
    products = intgemm.IntegerProducts.planned(weight, 133, (-128, 127) if quads else None)
    assert products.quads == quads
    x = rng.integers(-128, 128, (rows + 3, k))
    a = products.columns(x, x_zp)
    offsets = np.array([0, 3], np.int64)
    expected = sum((x[o : o + rows] - x_zp) @ weight[t] for t, o in enumerate(offsets))
    for threads in (1, 2):
        parallel.set_threads(threads)
        c = np.empty((rows, n), np.int32)
        products(a, offsets, c, x_zp)
        assert np.array_equal(c, expected)


def test_blocks_cover_the_range_once(restore_threads):
    seen = np.zeros(1000, np.int64)

    def mark(start, stop):
        seen[start:stop] += 1
        return stop - start

    for threads in (1, 2):
        parallel.set_threads(threads)
        assert parallel.for_blocks(mark, 1000, 64) == 1000
    assert np.all(seen == 2)


def test_blas_runs_one_thread_once_threads_are_set(restore_threads):
    parallel.set_threads(2)
    assert parallel.threads() == 2
    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")


def test_threads_option_rejects_zero(capsys, tmp_path):
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((1, 3, 32, 32), np.float32))
    assert main(["run", "tinynet", "--input", str(image), "--threads", "0"]) == 2
    assert "--threads 0: must be at least 1" in capsys.readouterr().err
