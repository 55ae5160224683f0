"""Integer products on int16 pairs and uint8 quads (``intgemm``) vs numpy int64, and the bounds
that select them."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import binding
from numba import njit

from nnasim.kernels.conv2d import Conv2d, ConvGeometry, output_hw
from nnasim.kernels.fully_connected import FullyConnected
from nnasim.kernels.intgemm import (
    KC,
    MC,
    MR,
    NR,
    QUADS,
    IntegerProducts,
    _int_products,
    exact_blocks,
    int32_exact,
    int_products,
    pack_weights,
)
from tests.reference.conv2d_ref import conv2d_ref


def _zeros(weight: np.ndarray, nr: int = NR) -> np.ndarray:
    """The start values of pair products: zero for every packed channel."""
    return np.zeros(-(-weight.shape[-1] // nr) * nr, np.int64)


def _one_block(weight: np.ndarray, group: int = 2) -> np.ndarray:
    """One block over every tap and step of (T, K, N) weights: a single int32 sum."""
    return np.array([[0, weight.shape[0], 0, -(-weight.shape[1] // group), 0]], np.int64)


def _extreme_ints(rng, shape, bound: int) -> np.ndarray:
    """Values in [-bound, bound], a third of them at +-bound."""
    values = rng.integers(-bound, bound + 1, shape)
    extremes = rng.random(shape) < 1 / 3
    return np.where(extremes, np.where(rng.random(shape) < 0.5, -bound, bound), values)


@settings(max_examples=40, deadline=None)
@given(
    taps=st.integers(1, 3),
    rows=st.integers(1, MC + 2 * MR + 1),  # partial tiles and more than one row block
    k=st.integers(1, 2 * KC + 3),  # odd K and more than one reduction pass
    n=st.integers(1, 2 * NR + 1),  # partial panels
    bound=st.sampled_from([1, 127, 255, 2**15 - 1]),
    seed=st.integers(0, 2**32 - 1),
)
def test_int_products_match_int64(taps, rows, k, n, bound, seed):
    rng = np.random.default_rng(seed)
    w_bound = min(2**15 - 1, (2**31 - 1) // (bound * k * taps))  # the largest weights int32 allows
    weight = _extreme_ints(rng, (taps, k, n), w_bound)
    slack = int(rng.integers(0, 9))
    a = np.zeros((rows + slack, k + k % 2), np.int16)
    a[:, :k] = _extreme_ints(rng, (rows + slack, k), bound)
    offsets = rng.integers(0, slack + 1, taps).astype(np.int64)
    assert int32_exact(weight.reshape(-1, n), bound)  # over every tap: the sum runs over them all
    c = np.empty((rows, n), np.int32)
    int_products(a, offsets, pack_weights(weight), c, _zeros(weight), _one_block(weight))
    expected = sum(a[o : o + rows, :k].astype(np.int64) @ weight[t] for t, o in enumerate(offsets))
    assert np.array_equal(c, expected)


def test_int32_bound_edges():
    """Exact while the worst sum is below 2**31; operands must fit int16 without -2**15."""
    assert int32_exact(np.full((2**17 - 1, 1), 1), 2**14)  # 2**31 - 2**14
    assert not int32_exact(np.full((2**17, 1), 1), 2**14)  # 2**31
    assert not int32_exact(np.full((2**17, 1), -1), 2**14)
    assert int32_exact(np.array([[32767], [32767]]), 32767)
    assert not int32_exact(np.array([[1]]), 32768)
    assert not int32_exact(np.array([[-32768]]), 1)


def test_int_products_at_the_int32_limit():
    """Sums within 2**18 of 2**31, both signs, come out exact."""
    a = np.full((MR + 1, 4), 32767, np.int16)
    a[1::2] = -32767
    weight = np.full((1, 4, 3), 16383)
    assert int32_exact(weight[0], 32767)
    c = np.empty((MR + 1, 3), np.int32)
    int_products(a, np.zeros(1, np.int64), pack_weights(weight), c, _zeros(weight), _one_block(weight))
    expected = a.astype(np.int64) @ weight[0]
    assert np.abs(expected).max() > 2**31 - 2**18
    assert np.array_equal(c, expected)


@settings(max_examples=30, deadline=None)
@given(
    kernel=st.sampled_from([(1, 1), (3, 3), (1, 3), (2, 2)]),
    strides=st.sampled_from([(1, 1), (2, 2), (1, 2)]),
    pads=st.tuples(*[st.integers(0, 1)] * 4),
    channels=st.tuples(st.integers(1, 9), st.integers(1, 20)),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_takes_integer_products_at_8_bits(kernel, strides, pads, channels, seed):
    """8-bit layers run on ``int_products`` (window taps or im2col) and equal the int64 reference."""
    rng = np.random.default_rng(seed)
    cin, cout = channels
    x = rng.integers(-128, 128, (2, 9, 8, cin))
    weight = _extreme_ints(rng, (cout, *kernel, cin), 127)
    x_zp = int(rng.integers(-128, 128))
    geometry = ConvGeometry(
        kernel, strides, pads, (1, 1), 1, output_hw((9, 8), kernel, strides, pads, (1, 1))
    )
    conv = Conv2d(weight, np.arange(cout), geometry, input_bound=max(127 - x_zp, x_zp + 128))
    assert conv.products is not None and not conv.products.quads
    expected = conv2d_ref(x, x_zp, weight, np.arange(cout), strides, pads, (1, 1), 1)
    assert np.array_equal(conv(x, x_zp), expected)


def test_int_products_refuse_rows_past_the_input():
    """The tile reads rows by raw offsets: a tap reaching past ``a`` is an error, not a wild read."""
    a, c = np.zeros((MR, 2), np.int16), np.empty((MR, 1), np.int32)
    with pytest.raises(ValueError, match="past the input"):
        int_products(
            a, np.array([1], np.int64), pack_weights(np.ones((1, 2, 1))), c, _zeros(c), _one_block(a[None])
        )
    with pytest.raises(ValueError, match="narrower"):
        weight = np.ones((1, 4, 1))
        int_products(a, np.zeros(1, np.int64), pack_weights(weight), c, _zeros(c), _one_block(weight))


def test_a_bound_past_int32_sums_blocks_in_int64():
    """Past int32, the reduction runs in exact blocks added in int64; weights past int16 keep
    the float products."""
    weight = np.full((1, 3, 3, 300), 32767)
    weight[..., ::7] = -32767
    geometry = ConvGeometry((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, (4, 4))
    conv = Conv2d(weight, np.zeros(1), geometry, input_bound=255)
    assert conv.products.out_dtype == np.int64 and len(conv.products.blocks) > 1
    x = np.where(np.arange(4 * 4 * 300).reshape(1, 4, 4, 300) % 5 == 0, -128, 127)
    assert np.array_equal(conv(x, 0), conv2d_ref(x, 0, weight, np.zeros(1), (1, 1), (1, 1, 1, 1), (1, 1), 1))
    assert Conv2d(weight * 2, np.zeros(1), geometry, input_bound=255).products is None


@pytest.mark.skipif(not binding.get_host_cpu_features().get("avx2"), reason="needs AVX2")
def test_the_tile_compiles_to_pmaddwd_on_avx2():
    """LLVM selects ``vpmaddwd`` for the tile's portable IR, fused with the add into ``vpdpwssd``
    where the CPU has VNNI (a fresh compile: cached code has no asm)."""
    fresh = njit(nogil=True)(_int_products.py_func)
    c = np.empty((MR, NR), np.int32)
    args = (
        np.zeros((MR, 2), np.int16),
        np.zeros(1, np.int64),
        pack_weights(np.zeros((1, 2, NR))),
        c,
        c,
        np.zeros(NR, np.int64),
        _one_block(np.zeros((1, 2, NR))),
    )
    fresh(*args)
    asm = fresh.inspect_asm(fresh.signatures[0])
    assert "vpmaddwd" in asm or "vpdpwssd" in asm


needs_vnni = pytest.mark.skipif(QUADS is None, reason="needs VNNI (vpdpbusd)")


@needs_vnni
@settings(max_examples=40, deadline=None)
@given(
    taps=st.integers(1, 3),
    rows=st.integers(1, MC + 2 * 12 + 1),
    k=st.integers(1, 4 * KC + 5),  # K not a whole number of quads, more than one reduction pass
    n=st.integers(1, 2 * 32 + 1),
    low=st.sampled_from([-128, 0, -5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_quad_products_match_int64(taps, rows, k, n, low, seed):
    """uint8 x int8 quads with the zero-point start values equal ``(x - x_zp) @ W`` in int64,
    full-range weights and inputs included (where ``pmaddubsw`` would saturate)."""
    rng = np.random.default_rng(seed)
    weight = _extreme_ints(rng, (taps, k, n), 127)
    weight[rng.random(weight.shape) < 0.1] = -128
    x_zp = int(rng.integers(low, low + 256))
    products = IntegerProducts.planned(weight, max(low + 255 - x_zp, x_zp - low), (low, low + 255))
    slack = int(rng.integers(0, 9))
    x = rng.integers(low, low + 256, (rows + slack, k))
    a = products.columns(x, x_zp)
    offsets = rng.integers(0, slack + 1, taps).astype(np.int64)
    expected = sum((x[o : o + rows] - x_zp) @ weight[t] for t, o in enumerate(offsets))
    assert products.quads and (products.out_dtype == np.int64) == (np.abs(expected).max() >= 2**31)
    c = np.empty((rows, n), products.out_dtype)
    products(a, offsets, c, x_zp)
    assert np.array_equal(c, expected)


@needs_vnni
@settings(max_examples=30, deadline=None)
@given(
    kernel=st.sampled_from([(1, 1), (3, 3), (1, 3)]),
    strides=st.sampled_from([(1, 1), (2, 2)]),
    pads=st.tuples(*[st.integers(0, 1)] * 4),
    channels=st.tuples(st.integers(1, 9), st.integers(1, 40)),
    unsigned=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_and_fc_take_quads_with_the_input_range(kernel, strides, pads, channels, unsigned, seed):
    """Given the input format's range, 8-bit layers run on quads and equal the int64 reference,
    padding at the zero point included."""
    rng = np.random.default_rng(seed)
    cin, cout = channels
    low = 0 if unsigned else -128
    x = rng.integers(low, low + 256, (2, 9, 8, cin))
    weight = _extreme_ints(rng, (cout, *kernel, cin), 127)
    x_zp = int(rng.integers(low, low + 256))
    bound = max(low + 255 - x_zp, x_zp - low)
    geometry = ConvGeometry(
        kernel, strides, pads, (1, 1), 1, output_hw((9, 8), kernel, strides, pads, (1, 1))
    )
    conv = Conv2d(weight, np.arange(cout), geometry, bound, input_range=(low, low + 255))
    assert conv.products.quads
    expected = conv2d_ref(x, x_zp, weight, np.arange(cout), strides, pads, (1, 1), 1)
    assert np.array_equal(conv(x, x_zp), expected)
    fc_weight = weight.reshape(cout, -1).T
    fc = FullyConnected(fc_weight, None, bound, input_range=(low, low + 255))
    columns = rng.integers(low, low + 256, (7, fc_weight.shape[0]))
    assert fc.products.quads
    assert np.array_equal(fc(columns, x_zp), (columns - x_zp) @ fc_weight)


def test_quads_need_int8_weights_and_a_256_value_range():
    weight = np.ones((1, 4, 3), np.int64)
    assert not IntegerProducts.planned(weight, 128).quads  # range unknown
    assert not IntegerProducts.planned(weight, 128, (-128, 128)).quads  # 257 values: pairs
    weight[0, 0, 0] = 128
    assert not IntegerProducts.planned(weight, 128, (-128, 127)).quads


@needs_vnni
def test_the_quad_tile_compiles_to_vpdpbusd():
    """The quad tile is VNNI's ``vpdpbusd`` (a fresh compile: cached code has no asm)."""
    fresh = njit(nogil=True)(_int_products.py_func)
    packed = pack_weights(np.zeros((1, 4, QUADS.channels)), QUADS)
    c = np.empty((QUADS.rows, QUADS.channels), np.int32)
    fresh(
        np.zeros((QUADS.rows, 4), np.uint8),
        np.zeros(1, np.int64),
        packed,
        c,
        c,
        np.zeros(QUADS.channels, np.int64),
        _one_block(np.zeros((1, 4, 1)), 4),
    )
    assert "vpdpbusd" in fresh.inspect_asm(fresh.signatures[0])


def test_a_portable_target_takes_no_quads(tmp_path):
    """With ``NUMBA_CPU_NAME=generic`` (a cache portable across machines) Numba compiles for no
    VNNI, so the kernels must not emit ``vpdpbusd``: the layers take the pairs and stay exact."""
    script = (
        "import numpy as np\n"
        "from nnasim.kernels.intgemm import QUADS, IntegerProducts\n"
        "w = np.random.default_rng(0).integers(-128, 128, (1, 40, 20))\n"
        "p = IntegerProducts.planned(w, 131, (-128, 127))\n"
        "x = np.random.default_rng(1).integers(-128, 128, (30, 40))\n"
        "a = p.columns(x, 3)\n"
        "c = np.empty((30, 20), np.int32)\n"
        "p(a, np.zeros(1, np.int64), c, 3)\n"
        "print(QUADS, p.quads, np.array_equal(c, (x - 3) @ w[0]))\n"
    )
    env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("NUMBA_CPU_FEATURES", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["None", "False", "True"]


@settings(max_examples=30, deadline=None)
@given(
    kernel=st.sampled_from([(1, 1), (3, 3), (2, 1)]),
    strides=st.sampled_from([(1, 1), (2, 2)]),
    channels=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    weight_bits=st.sampled_from([8, 16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_16_bit_layers_take_byte_planes(kernel, strides, channels, weight_bits, seed):
    """16-bit inputs run as two byte planes (quads for int8 weights where VNNI exists, else
    pairs), extreme values and blocks combined in int64 included, equal to the int64 reference."""
    rng = np.random.default_rng(seed)
    cin, cout = channels
    x = _extreme_ints(rng, (1, 7, 6, cin), 2**15 - 1) - 1  # [-32768, 32766]
    weight = _extreme_ints(rng, (cout, *kernel, cin), 2 ** (weight_bits - 1) - 1)
    x_zp = int(rng.integers(-100, 100))
    pads = (1, 0, 0, 1)
    geometry = ConvGeometry(
        kernel, strides, pads, (1, 1), 1, output_hw((7, 6), kernel, strides, pads, (1, 1))
    )
    conv = Conv2d(weight, np.arange(cout), geometry, 32768 + abs(x_zp), input_range=(-32768, 32767))
    assert conv.products.planes == 2 and conv.products.quads == (QUADS is not None and weight_bits == 8)
    expected = conv2d_ref(x, x_zp, weight, np.arange(cout), strides, pads, (1, 1), 1)
    assert np.array_equal(conv(x, x_zp), expected)


def test_exact_blocks_split_taps_then_steps():
    """Whole taps while their sum fits 2**31, a tap too large alone in runs of steps."""
    taps = np.full((3, 8, 1), 2**20)  # 2**23 * 255 per tap: one tap per block at bound 255
    assert exact_blocks(taps, 255, 2) == [(0, 1, 0, 4), (1, 2, 0, 4), (2, 3, 0, 4)]
    assert exact_blocks(taps, 1, 2) == [(0, 3, 0, 4)]
    wide = np.full((1, 8, 1), 2**28)  # 2**31 per tap at bound 1: split into steps of two values
    assert exact_blocks(wide, 1, 2) == [(0, 1, 0, 3), (0, 1, 3, 4)]
