"""Exact integer matrix products: int32 ``C = A @ W`` on int16 pairs, or on uint8 x int8 quads.

Pairs. The CPU's integer multiply-add of int16 pairs (x86 ``pmaddwd``: ``a0*w0 + a1*w1`` into
int32, 16 products per AVX2 instruction) does an 8-bit layer's products at about 1.5x float32
sgemm's rate (``benchmarks/int_products.py``). The tile is portable LLVM IR (sign-extend,
multiply, add the even and odd lanes), which LLVM selects as ``vpmaddwd`` on AVX2 (``vpdpwssd``
with VNNI) and as the best pairwise multiply-add elsewhere.

Quads. Where the CPU has VNNI (``vpdpbusd``: four uint8 x int8 products added to each int32
lane, 64 per AVX-512 instruction), an 8-bit layer whose weights fit int8 and whose input values
span at most 256 integers runs on quads: ``A`` holds ``x - lo`` in uint8 (``lo`` the input
format's least value), so ``A @ W = (x - x_zp) @ W + (x_zp - lo) * sum_k W``, and the tile
starts each output channel's sum at ``-(x_zp - lo) * sum_k W``. ``vpdpbusd`` adds without
saturating, modulo 2**32, so the result is exact whenever the true sum fits int32.

Exact when every value fits int16 with no pair ``(-2**15, -2**15) x (-2**15, -2**15)`` (the one
``pmaddwd`` overflow), and every partial sum fits int32: ``int32_exact`` proves both from the
largest ``|a|`` and the weights, as ``gemm.exact_chunks`` does for floats (for quads the final
sum is all that must fit).

Layouts. ``A`` is (rows, Kp), Kp a whole number of groups (pairs or quads) along K. Weights are
packed once into (taps, panels, Kp/group, NR, group): per reduction group, NR output channels'
weights side by side. A product sums over taps, each reading ``A`` from its own row offset: one
tap is a plain GEMM, a convolution's window taps on shifted rows of its padded input are the
implicit GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import binding, ir
from numba import prange, types
from numba.core import cgutils, config
from numba.extending import intrinsic

from nnasim.kernels.jit import kernel

MR, NR = 6, 16  # a pair tile: 6 rows x 16 channels, 12 AVX2 accumulators
MC, KC = 96, 256  # rows per block (A block in L2), reduction groups per pass (W panel in L1)
INT32_EXACT = 2**31
INT16_MAX = 2**15 - 1

_I8, _I16, _I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)


@dataclass(frozen=True)
class TileShape:
    """A tile's geometry: ``rows`` x ``lanes * vectors`` int32 accumulators, ``group`` products
    per lane per step."""

    rows: int
    lanes: int
    vectors: int
    group: int

    @property
    def channels(self) -> int:
        return self.lanes * self.vectors


PAIRS = TileShape(MR, 8, NR // 8, 2)


def _cpu_features() -> str:
    """The features Numba compiles for, as Numba picks them: ``NUMBA_CPU_FEATURES`` if set, else
    the host's, unless ``NUMBA_CPU_NAME`` names another CPU (a portable cache): then none."""
    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    return binding.get_host_cpu_features().flatten() if config.CPU_NAME in (None, "host") else ""


def _quad_tile() -> tuple[TileShape, str] | None:
    """The widest ``vpdpbusd`` the compile target has, with its LLVM intrinsic (None: no VNNI)."""
    features = set(_cpu_features().split(","))
    if "+avx512vnni" in features and "+avx512bw" in features:
        return TileShape(12, 16, 2, 4), "llvm.x86.avx512.vpdpbusd.512"  # 24 of 32 zmm
    if "+avxvnni" in features or {"+avx512vnni", "+avx512vl"} <= features:
        return TileShape(6, 8, 2, 4), "llvm.x86.avx512.vpdpbusd.256"  # 12 of 16 ymm
    return None


_QUADS = _quad_tile()
QUADS = _QUADS[0] if _QUADS else None


def int32_exact(weight: np.ndarray, input_bound: int) -> bool:
    """Whether int16 pair products of ``|a| <= input_bound`` and ``weight`` (K x N) sum exactly
    in int32: operands fit int16 (the bound excludes -2**15, so no pair overflows) and the worst
    partial sum ``input_bound * max_n sum_k |w[k, n]|`` stays below 2**31."""
    magnitude = np.abs(np.asarray(weight, np.int64))
    if input_bound > INT16_MAX or int(magnitude.max(initial=0)) > INT16_MAX:
        return False
    return int(input_bound) * int(magnitude.sum(axis=0).max(initial=0)) < INT32_EXACT


def quads_apply(taps: np.ndarray, input_range: tuple[int, int] | None) -> bool:
    """Whether uint8 x int8 quads serve weights ``taps``: the CPU has VNNI, the weights fit
    int8 and the input's values span at most 256 integers."""
    if QUADS is None or input_range is None:
        return False
    lo, hi = input_range
    return hi - lo <= 255 and int(taps.min(initial=0)) >= -128 and int(taps.max(initial=0)) <= 127


def pack_weights(taps: np.ndarray, shape: TileShape = PAIRS) -> np.ndarray:
    """(T, K, N) integer weights -> (T, panels, Kp/group, NR, group), int16 for pairs and int8
    for quads, zero-padded to whole groups of K and whole panels of NR channels."""
    count, k, n = taps.shape
    group, nr = shape.group, shape.channels
    steps, panels = -(-k // group), -(-n // nr)
    padded = np.zeros((count, group * steps, panels * nr), np.int16 if group == 2 else np.int8)
    padded[:, :k, :n] = taps
    return np.ascontiguousarray(padded.reshape(count, steps, group, panels, nr).transpose(0, 3, 1, 4, 2))


class IntegerProducts:
    """A layer's weights packed for ``int_products``, and how its input is laid out for them.

    ``taps`` is (T, K, N) integers; ``input_range`` the (least, largest) value of the input's
    format, which lets quads serve (see the module docstring); pairs serve otherwise.
    """

    def __init__(self, taps: np.ndarray, input_range: tuple[int, int] | None = None):
        taps = np.asarray(taps, np.int64)
        self.quads = quads_apply(taps, input_range)
        self.shape = QUADS if self.quads else PAIRS
        self.packed = pack_weights(taps, self.shape)
        self.low = input_range[0] if self.quads else None
        self.channel_sums = taps.sum(axis=(0, 1))
        self.channels = taps.shape[2]
        self.dtype = np.uint8 if self.quads else np.int16

    @property
    def depth(self) -> int:
        """Columns of ``A``: K padded to whole groups."""
        return self.packed.shape[2] * self.shape.group

    def offset(self, x_zp: int) -> int:
        """What is subtracted from the input's values to make ``A``."""
        return self.low if self.quads else x_zp

    def fill(self, x_zp: int) -> int:
        """``A``'s value where the input is padding (the zero point, offset like every value)."""
        return x_zp - self.low if self.quads else 0

    def __call__(self, a: np.ndarray, offsets: np.ndarray, c: np.ndarray, x_zp: int) -> None:
        """``c[r] = sum_t (x - x_zp)[offsets[t] + r] @ W_t`` from ``A`` laid out as above."""
        start = np.zeros(self.packed.shape[1] * self.shape.channels, np.int32)
        if self.quads:
            start[: self.channels] = -(x_zp - self.low) * self.channel_sums  # exact modulo 2**32
        int_products(a, offsets, self.packed, c, start)


def _pair_madd(builder, acc, a, w, shape):
    """``acc + a0*w0 + a1*w1`` per int32 lane of two int16-pair vectors (LLVM selects ``pmaddwd``)."""
    wide = ir.VectorType(_I32, 2 * shape.lanes)
    even = ir.Constant(ir.VectorType(_I32, shape.lanes), list(range(0, 2 * shape.lanes, 2)))
    odd = ir.Constant(ir.VectorType(_I32, shape.lanes), list(range(1, 2 * shape.lanes, 2)))
    product = builder.mul(builder.sext(a, wide), builder.sext(w, wide))
    pairs = builder.add(
        builder.shuffle_vector(product, product, even), builder.shuffle_vector(product, product, odd)
    )
    return builder.add(acc, pairs)


def _quad_madd(builder, acc, a, w, shape):
    """``acc + sum of four uint8 a x int8 w`` per int32 lane (``vpdpbusd``, modulo 2**32)."""
    lanes = ir.VectorType(_I32, shape.lanes)
    quads = ir.VectorType(_I8, 4 * shape.lanes)
    function = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(lanes, [lanes, quads, quads]), _QUADS[1]
    )
    return builder.call(function, [acc, a, w])


def _data(context, builder, array_type, value):
    return cgutils.create_struct_proxy(array_type)(context, builder, value=value).data


@intrinsic
def _tile(
    typingctx,
    a,
    a_start,
    lda,
    offsets,
    taps,
    w,
    w_start,
    tap_stride,
    steps,
    c,
    c_start,
    ldc,
    accumulate,
    start,
    start_at,
):
    """C[0:rows, 0:NR] (+)= sum over ``taps`` taps t of A[offsets[t] + 0:rows, 0:group*steps] @
    panel_t, elements addressed from the given starts, tap t's panel ``t * tap_stride`` elements
    after the first; without ``accumulate`` the sums begin at ``start[start_at : start_at + NR]``.

    int16 ``A`` takes the pair tile, uint8 ``A`` the quad tile. The rows x NR int32
    accumulators live in registers across the taps and the reduction.
    """
    if any(not isinstance(x, types.Array) or x.layout != "C" for x in (a, offsets, w, c, start)):
        return None  # the tile addresses rows by raw offsets: C-contiguous arrays only
    if a.dtype == types.uint8 and _QUADS:
        shape, madd = QUADS, _quad_madd
    elif a.dtype == types.int16:
        shape, madd = PAIRS, _pair_madd
    else:
        return None
    arguments = (a, a_start, lda, offsets, taps, w, w_start, tap_stride, steps, c, c_start, ldc)
    sig = types.void(*arguments, accumulate, start, start_at)
    element = _I8 if shape.group == 4 else _I16
    group = ir.VectorType(element, shape.group * shape.lanes)
    lanes = ir.VectorType(_I32, shape.lanes)
    splat = ir.Constant(lanes, [0] * shape.lanes)

    def codegen(context, builder, sig, args):
        a, a_start, lda, offsets, taps, w, w_start, tap_stride, steps, c, c_start, ldc = args[:12]
        accumulate, start, start_at = args[12:]
        a_ptr = builder.gep(_data(context, builder, sig.args[0], a), [a_start])
        o_ptr = _data(context, builder, sig.args[3], offsets)
        w_ptr = builder.gep(_data(context, builder, sig.args[5], w), [w_start])
        c_ptr = builder.gep(_data(context, builder, sig.args[9], c), [c_start])
        s_ptr = builder.gep(_data(context, builder, sig.args[13], start), [start_at])
        add = builder.icmp_unsigned("!=", accumulate, accumulate.type(0))
        targets, accs = [], []
        for r in range(shape.rows):
            row = builder.gep(c_ptr, [builder.mul(ldc, ldc.type(r))])
            targets.append([])
            accs.append([])
            for h in range(shape.vectors):
                target = builder.bitcast(builder.gep(row, [ldc.type(shape.lanes * h)]), lanes.as_pointer())
                begin = builder.bitcast(builder.gep(s_ptr, [ldc.type(shape.lanes * h)]), lanes.as_pointer())
                first = builder.select(add, builder.load(target, align=4), builder.load(begin, align=4))
                targets[r].append(target)
                accs[r].append(cgutils.alloca_once_value(builder, first))
        with cgutils.for_range(builder, taps) as tap:
            shift = builder.mul(builder.load(builder.gep(o_ptr, [tap.index])), lda)
            panel_ptr = builder.bitcast(
                builder.gep(w_ptr, [builder.mul(tap.index, tap_stride)]), group.as_pointer()
            )
            rows = [
                builder.bitcast(
                    builder.gep(a_ptr, [builder.add(shift, builder.mul(lda, lda.type(r)))]), _I32.as_pointer()
                )
                for r in range(shape.rows)
            ]
            with cgutils.for_range(builder, steps) as loop:
                step = builder.mul(loop.index, loop.index.type(shape.vectors))
                panel = [
                    builder.load(builder.gep(panel_ptr, [builder.add(step, step.type(h))]), align=1)
                    for h in range(shape.vectors)
                ]
                for r in range(shape.rows):
                    value = builder.load(builder.gep(rows[r], [loop.index]), align=1)
                    broadcast = builder.insert_element(lanes(None), value, _I32(0))
                    a_group = builder.bitcast(builder.shuffle_vector(broadcast, broadcast, splat), group)
                    for h, w_group in enumerate(panel):
                        total = madd(builder, builder.load(accs[r][h]), a_group, w_group, shape)
                        builder.store(total, accs[r][h])
        for r in range(shape.rows):
            for h in range(shape.vectors):
                builder.store(builder.load(accs[r][h]), targets[r][h], align=4)
        return context.get_dummy_value()

    return sig, codegen


@kernel(parallel=True)
def int_products(a, offsets, packed, c, start):
    """``c[r] = start + sum_t a[offsets[t] + r] @ W_t`` for every row r of ``c`` (rows, N) int32.

    ``a`` (R, Kp) int16 or uint8 and ``packed`` (T, panels, Kp/group, NR, group) from
    ``pack_weights``; ``start`` holds one int32 per packed channel. Rows past ``a``'s end are
    never read (partial tiles go through scratch tiles). Blocked as BLIS does: MC rows and one
    panel of NR channels at a time (the threads share these blocks out), KC reduction groups
    at a time, every tap of a tile summed in its registers.
    """
    rows, steps, nr, group = c.shape[0], packed.shape[2], packed.shape[3], packed.shape[4]
    mr = MR if group == 2 else 12 if nr == 32 else 6
    if offsets.size != packed.shape[0] or offsets.min() < 0 or offsets.max() + rows > a.shape[0]:
        raise ValueError("int_products: a tap's rows run past the input")
    if a.shape[1] < group * steps or c.shape[1] > packed.shape[1] * nr or start.size < packed.shape[1] * nr:
        raise ValueError("int_products: the input or output is narrower than the packed weights")
    offsets = np.ascontiguousarray(offsets)
    panels = packed.shape[1]
    for item in prange(-(-rows // MC) * panels):
        i0, panel = (item // panels) * MC, item % panels
        a_tile = np.zeros((mr, a.shape[1]), a.dtype)
        c_tile = np.zeros((mr, nr), np.int32)
        no_shift = np.zeros(1, np.int64)  # the scratch tile's one tap
        for k0 in range(0, steps, KC):
            for i in range(i0, min(i0 + MC, rows), mr):
                height = min(mr, i0 + MC - i, rows - i)
                _panel_tile(a, offsets, packed, panel, k0, c, i, height, a_tile, c_tile, start, no_shift)


@kernel(inline="always")
def _panel_tile(a, offsets, packed, panel, k0, c, i, height, a_tile, c_tile, start, no_shift):
    """One tile of rows [i, i + height) and one panel, over reduction groups [k0, k0 + KC) of
    every tap; added to C unless it is the first pass."""
    n, lda, steps, nr, group = c.shape[1], a.shape[1], packed.shape[2], packed.shape[3], packed.shape[4]
    mr, taps = a_tile.shape[0], packed.shape[0]
    kc = min(KC, steps - k0)
    tap_stride = packed.shape[1] * steps * nr * group
    w_start = (panel * steps + k0) * nr * group
    add = 1 if k0 > 0 else 0
    width = min(nr, n - panel * nr)
    s_at = panel * nr
    a_start = i * lda + group * k0
    if height == mr and width == nr:
        _tile(
            a,
            a_start,
            lda,
            offsets,
            taps,
            packed,
            w_start,
            tap_stride,
            kc,
            c,
            i * n + s_at,
            n,
            add,
            start,
            s_at,
        )
        return
    columns = slice(s_at, s_at + width)
    if add:
        c_tile[:height, :width] = c[i : i + height, columns]
    if height == mr:  # a partial panel only: C goes through the scratch tile, A is read in place
        _tile(
            a, a_start, lda, offsets, taps, packed, w_start, tap_stride, kc, c_tile, 0, nr, add, start, s_at
        )
    else:  # partial rows: each tap's rows copied into the scratch tile
        for t in range(taps):
            a_tile[:height] = a[offsets[t] + i : offsets[t] + i + height]
            first = 1 if add or t > 0 else 0
            w_t = w_start + t * tap_stride
            _tile(
                a_tile,
                group * k0,
                lda,
                no_shift,
                1,
                packed,
                w_t,
                0,
                kc,
                c_tile,
                0,
                nr,
                first,
                start,
                s_at,
            )
    c[i : i + height, columns] = c_tile[:height, :width]
