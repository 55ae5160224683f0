"""Exact integer matrix products: ``C = A @ W`` on int16 pairs or uint8 x int8 quads.

Pairs. The CPU's integer multiply-add of int16 pairs (x86 ``pmaddwd``: ``a0*w0 + a1*w1`` into
int32) is portable LLVM IR (sign-extend, multiply, add the even and odd lanes), which LLVM
selects as ``vpmaddwd`` on AVX2, ``vpdpwssd`` with VNNI, and the best pairwise multiply-add
elsewhere; the tile is 12 rows x 32 channels in zmm registers where the target has AVX-512BW,
else 6 x 16 in ymm.

Quads. Where the CPU has VNNI (``vpdpbusd``: four uint8 x int8 products added to each int32
lane, 64 per AVX-512 instruction), layers whose weights fit int8 run on quads: ``A`` holds
``x - lo`` in uint8 (``lo`` the input format's least value), so ``A @ W = (x - x_zp) @ W +
(x_zp - lo) * sum_k W``, and the result starts at ``-(x_zp - lo) * sum_k W``.

Byte planes. A 16-bit input (its format spans up to 2**16 integers) is split into the low and
high bytes of ``v = x - lo`` (``columns``): ``A @ W = A_lo @ W + 256 * A_hi @ W``, two 8-bit
products, on quads where the weights fit int8, else on pairs with int16 weights (any pair of
a byte and an int16 weight sums below 2**31). Their int32 sums are combined in int64.

Exactness. A product's int32 sums are exact while the true sum fits: ``int32_exact`` proves
it for a whole layer (``|a| * max_n sum_k |w| < 2**31``, operands in int16) and the result is
then int32 (quads add modulo 2**32, so only the final sum must fit). Otherwise the reduction
is split into blocks of taps and reduction steps, each proved exact on its own
(``exact_blocks``, as ``gemm.exact_chunks`` does for floats), and every block's sum is added
into an int64 result, shifted by its plane's 8 bits.

Layouts. ``A`` is (rows, planes * Kp), Kp a whole number of groups (pairs or quads) along K.
Weights are packed once into (taps, panels, Kp/group, NR, group): per reduction group, NR
output channels' weights side by side. A product sums over taps, each reading ``A`` from its
own row offset: one tap is a plain GEMM, a convolution's window taps on shifted rows of its
padded input are the implicit GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import binding, ir
from numba import prange, types
from numba.core import cgutils, config
from numba.extending import intrinsic

from nnasim.kernels.columns import im2col
from nnasim.kernels.jit import kernel

MC, KC = 96, 256  # rows per block (A block in L2), reduction groups per pass (W panel in L1)
INT32_EXACT = 2**31
INT16_MAX = 2**15 - 1
BYTE = 255
BLOCK_COST = 16  # reduction steps a block's int64 flush costs, in the plan's estimate

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


def _cpu_features() -> str:
    """The features Numba compiles for, as Numba picks them: ``NUMBA_CPU_FEATURES`` if set, else
    the host's, unless ``NUMBA_CPU_NAME`` names another CPU (a portable cache): then none."""
    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    return binding.get_host_cpu_features().flatten() if config.CPU_NAME in (None, "host") else ""


_FEATURES = set(_cpu_features().split(","))


def _pair_tile() -> TileShape:
    """24 zmm accumulators where the target has AVX-512BW, else 12 ymm."""
    return TileShape(12, 16, 2, 2) if "+avx512bw" in _FEATURES else TileShape(6, 8, 2, 2)


def _quad_tile() -> tuple[TileShape, str] | None:
    """The widest ``vpdpbusd`` the compile target has, with its LLVM intrinsic (None: no VNNI)."""
    if "+avx512vnni" in _FEATURES and "+avx512bw" in _FEATURES:
        return TileShape(12, 16, 2, 4), "llvm.x86.avx512.vpdpbusd.512"  # 24 of 32 zmm
    if "+avxvnni" in _FEATURES or {"+avx512vnni", "+avx512vl"} <= _FEATURES:
        return TileShape(6, 8, 2, 4), "llvm.x86.avx512.vpdpbusd.256"  # 12 of 16 ymm
    return None


PAIRS = _pair_tile()
MR, NR = PAIRS.rows, PAIRS.channels
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


def exact_blocks(taps: np.ndarray, element_bound: int, group: int) -> list[tuple[int, int, int, int]]:
    """(first tap, last tap + 1, first step, last step + 1) blocks covering (T, K, N) weights
    once, each summing exactly in int32 for operands ``|a| <= element_bound``: whole runs of
    taps while their worst sum ``element_bound * max_n sum |w|`` stays below 2**31, and a tap
    that alone exceeds it in runs of reduction steps (``group`` values of K each)."""
    count, k, n = taps.shape
    steps = -(-k // group)
    magnitude = np.zeros((count, steps * group, n), np.int64)
    magnitude[:, :k] = np.abs(taps.astype(np.int64)) * int(element_bound)
    per_step = magnitude.reshape(count, steps, group, n).sum(axis=2)  # (T, steps, N)
    per_tap = per_step.sum(axis=1)  # (T, N)
    blocks, t = [], 0
    while t < count:
        end, total = t, np.zeros(n, np.int64)
        while end < count and int((total + per_tap[end]).max(initial=0)) < INT32_EXACT:
            total += per_tap[end]
            end += 1
        if end > t:
            blocks.append((t, end, 0, steps))
            t = end
            continue
        cumulative = np.vstack([np.zeros((1, n), np.int64), np.cumsum(per_step[t], axis=0)])
        s = 0
        while s < steps:
            too_big = np.flatnonzero((cumulative[s + 1 :] - cumulative[s]).max(axis=1) >= INT32_EXACT)
            stop = s + int(too_big[0]) if too_big.size else steps
            blocks.append((t, t + 1, s, stop))
            s = stop
        t += 1
    return blocks


@dataclass(frozen=True)
class ProductPlan:
    """How a layer's products run: the tile, the input's planes and what ``A`` holds, the
    blocks and whether the result is int32 (one exact sum) or int64 (blocks combined)."""

    shape: TileShape
    planes: int
    unsigned: bool  # A holds x - lo (quads, byte planes), else x - x_zp
    blocks: tuple[tuple[int, int, int, int, int], ...]  # (t0, t1, s0, s1, plane)
    wide: bool

    def cost(self) -> int:
        """Reduction steps of every tap summed, plus each block's flush (``BLOCK_COST``)."""
        return sum((t1 - t0) * (s1 - s0) + BLOCK_COST for t0, t1, s0, s1, _ in self.blocks)


def plan_products(
    taps: np.ndarray, input_bound: int, input_range: tuple[int, int] | None
) -> ProductPlan | None:
    """The cheapest exact plan for (T, K, N) integer weights and an input of ``|x - x_zp| <=
    input_bound`` within ``input_range`` (None: unknown): quads where the weights fit int8,
    pairs where they fit int16, one plane where the input spans 256 integers (or, on pairs,
    fits int16), two byte planes up to 2**16; None where no plan is exact."""
    lo_w, hi_w = int(taps.min(initial=0)), int(taps.max(initial=0))
    span = None if input_range is None else input_range[1] - input_range[0]
    planes = None if span is None or span > 2**16 - 1 else 1 if span <= BYTE else 2
    plans = []
    if QUADS is not None and planes and lo_w >= -128 and hi_w <= 127:
        plans.append(_plan(taps, QUADS, planes, span, input_bound))
    if lo_w >= -(2**15) and hi_w <= INT16_MAX:
        if input_bound <= INT16_MAX:
            plans.append(_plan(taps, PAIRS, 1, None, input_bound))
        if planes == 2:
            plans.append(_plan(taps, PAIRS, 2, span, input_bound))
    return min(plans, key=ProductPlan.cost, default=None)


def _plan(taps: np.ndarray, shape: TileShape, planes: int, span: int | None, input_bound: int) -> ProductPlan:
    """One plan, ``A`` holding ``x - lo`` in ``planes`` bytes (``span``: the input's largest
    ``x - lo``) or, for ``span`` None, ``x - x_zp``: a single int32 sum where ``int32_exact``
    holds on one plane (quads wrap modulo 2**32, so their final sum is all that must fit),
    else ``exact_blocks`` per plane."""
    count, k, n = taps.shape
    steps = -(-k // shape.group)
    if planes == 1 and int32_exact(taps.reshape(-1, n), input_bound):
        return ProductPlan(shape, 1, span is not None, ((0, count, 0, steps, 0),), False)
    plane_bounds = [input_bound] if span is None else [min(span, BYTE), span >> 8][:planes]
    blocks = tuple(
        (*block, plane)
        for plane, bound in enumerate(plane_bounds)
        for block in exact_blocks(taps, max(bound, 1), shape.group)
    )
    return ProductPlan(shape, planes, span is not None, blocks, True)


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
    """A layer's weights packed for ``int_products`` by its ``ProductPlan``, and how its input
    is laid out for them.

    ``taps`` is (T, K, N) integers, ``input_bound`` the largest ``|x - x_zp|`` and
    ``input_range`` the (least, largest) value of the input's format (quads and byte planes
    need it). Build it with ``IntegerProducts.planned``, which returns None where no exact
    integer plan exists.
    """

    def __init__(self, taps: np.ndarray, plan: ProductPlan, input_range: tuple[int, int] | None):
        taps = np.asarray(taps, np.int64)
        self.shape = plan.shape
        self.quads = plan.shape.group == 4
        self.planes = plan.planes
        self.packed = pack_weights(taps, self.shape)
        self.low = input_range[0] if plan.unsigned else None
        self.channel_sums = taps.sum(axis=(0, 1))
        self.channels = taps.shape[2]
        self.dtype = np.uint8 if self.quads else np.int16
        self.out_dtype = np.int64 if plan.wide else np.int32
        self.blocks = np.array(plan.blocks, np.int64).reshape(-1, 5)

    @classmethod
    def planned(cls, taps, input_bound: int, input_range=None) -> IntegerProducts | None:
        taps = np.asarray(taps, np.int64)
        plan = plan_products(taps, input_bound, input_range)
        return None if plan is None else cls(taps, plan, input_range)

    @property
    def depth(self) -> int:
        """Columns of one plane of ``A``: K padded to whole groups."""
        return self.packed.shape[2] * self.shape.group

    def offset(self, x_zp: int) -> int:
        """What is subtracted from the input's values to make ``A``."""
        return self.low if self.low is not None else x_zp

    def fill(self, x_zp: int) -> np.ndarray:
        """Each plane's value of ``A`` where the input is padding (the zero point, offset like
        every value), in ``A``'s type: the ``fill`` of ``columns.im2col``."""
        value = x_zp - self.offset(x_zp)
        planes = [value] if self.planes == 1 else [value & BYTE, value >> 8]
        return np.array(planes, self.dtype)

    def columns(self, rows: np.ndarray, x_zp: int) -> np.ndarray:
        """``A`` of a (M, K) input matrix."""
        m, k = rows.shape
        image = np.ascontiguousarray(rows).reshape(1, m, 1, k)
        return im2col(
            image, np.int64(self.offset(x_zp)), 1, 1, 1, 1, 0, 0, 1, 1, m, 1, self.depth, self.fill(x_zp)
        )

    def __call__(self, a: np.ndarray, offsets: np.ndarray, c: np.ndarray, x_zp: int) -> None:
        """``c[r] = sum_t (x - x_zp)[offsets[t] + r] @ W_t`` from ``A`` laid out as above;
        ``c`` is ``out_dtype``."""
        start = np.zeros(self.packed.shape[1] * self.shape.channels, np.int64)
        if self.low is not None:
            start[: self.channels] = -(x_zp - self.low) * self.channel_sums
        int_products(a, offsets, self.packed, c, start, self.blocks)


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
    o_start,
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
    """C[0:rows, 0:NR] (+)= sum over ``taps`` taps t of A[offsets[o_start + t] + 0:rows,
    0:group*steps] @ panel_t, elements addressed from the given starts, tap t's panel
    ``t * tap_stride`` elements after the first; without ``accumulate`` the sums begin at
    ``start[start_at : start_at + NR]``.

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
    sig = types.void(
        a, a_start, lda, offsets, o_start, taps, w, w_start, tap_stride, steps, c, c_start, ldc,
        accumulate, start, start_at,
    )  # fmt: skip
    element = _I8 if shape.group == 4 else _I16
    group = ir.VectorType(element, shape.group * shape.lanes)
    lanes = ir.VectorType(_I32, shape.lanes)
    splat = ir.Constant(lanes, [0] * shape.lanes)

    def codegen(context, builder, sig, args):
        (a, a_start, lda, offsets, o_start, taps, w, w_start, tap_stride, steps, c, c_start, ldc,
         accumulate, start, start_at) = args  # fmt: skip
        a_ptr = builder.gep(_data(context, builder, sig.args[0], a), [a_start])
        o_ptr = builder.gep(_data(context, builder, sig.args[3], offsets), [o_start])
        w_ptr = builder.gep(_data(context, builder, sig.args[6], w), [w_start])
        c_ptr = builder.gep(_data(context, builder, sig.args[10], c), [c_start])
        s_ptr = builder.gep(_data(context, builder, sig.args[14], start), [start_at])
        add = builder.icmp_unsigned("!=", accumulate, accumulate.type(0))
        targets, accs = [], []
        for r in range(shape.rows):
            row = builder.gep(c_ptr, [builder.mul(ldc, ldc.type(r))])
            targets.append([])
            accs.append([])
            for h in range(shape.vectors):
                target = builder.bitcast(builder.gep(row, [ldc.type(shape.lanes * h)]), lanes.as_pointer())
                begin = builder.bitcast(
                    builder.gep(s_ptr, [start_at.type(shape.lanes * h)]), lanes.as_pointer()
                )
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


_NO_INT32_RESULT = np.empty((0, 0), np.int32)


def int_products(a, offsets, packed, c, start, blocks):
    """``c[r] = start + sum_b (sum_{t in b} a[offsets[t] + r, plane b's columns of b's steps]
    @ W_t[b's steps]) << (8 * plane b)`` for every row r of ``c`` (rows, N), int32 or int64.

    ``a`` (R, planes * Kp) int16 or uint8, ``packed`` (T, panels, Kp/group, NR, group) from
    ``pack_weights``, ``start`` one int64 per packed channel and ``blocks`` rows (t0, t1, s0,
    s1, plane) as ``ProductPlan.blocks``; an int32 ``c`` takes one block, summed modulo 2**32.
    Rows past ``a``'s end are never read (partial tiles go through scratch tiles). Blocked as
    BLIS does: MC rows and one panel of NR channels at a time (the threads share these blocks
    out), KC reduction groups at a time, every tap of a tile summed in its registers. An int32
    ``c`` is written by its whole tiles (starting at ``start``), the partial ones copied from
    scratch; otherwise each block's int32 sums are added into ``c`` once, while in cache.
    """
    c32 = c if c.dtype == np.int32 else _NO_INT32_RESULT  # what the tiles may write in place
    _int_products(a, offsets, packed, c, c32, start, blocks)


@kernel(parallel=True)
def _int_products(a, offsets, packed, c, c32, start, blocks):
    """``int_products`` with ``c32`` = ``c`` where ``c`` is int32 (typed apart, so that the
    int64 form compiles without the in-place branch's types)."""
    rows, n = c.shape
    steps, nr, group = packed.shape[2], packed.shape[3], packed.shape[4]
    mr = 12 if nr == 32 else 6
    planes = blocks[:, 4].max() + 1
    direct = c.itemsize == 4
    if offsets.size != packed.shape[0] or offsets.min() < 0 or offsets.max() + rows > a.shape[0]:
        raise ValueError("int_products: a tap's rows run past the input")
    if a.shape[1] < planes * group * steps or n > packed.shape[1] * nr or start.size < packed.shape[1] * nr:
        raise ValueError("int_products: the input or output is narrower than the packed weights")
    if direct and blocks.shape[0] != 1:
        raise ValueError("int_products: an int32 result takes one block")
    offsets = np.ascontiguousarray(offsets)
    tile_start = start.astype(np.int32) if direct else np.zeros(start.size, np.int32)
    panels = packed.shape[1]
    for item in prange(-(-rows // MC) * panels):
        i0, panel = (item // panels) * MC, item % panels
        height, width, column = min(MC, rows - i0), min(nr, n - panel * nr), panel * nr
        in_place = height - height % mr if direct and width == nr else 0  # rows the tiles write in c
        a_tile = np.zeros((mr, a.shape[1]), a.dtype)
        no_shift = np.zeros(1, np.int64)  # the scratch tile's one tap
        block_sums = np.empty((MC, nr), np.int32)
        for b in range(blocks.shape[0]):
            t0, t1, s0, s1, plane = blocks[b, 0], blocks[b, 1], blocks[b, 2], blocks[b, 3], blocks[b, 4]
            for k0 in range(s0, s1, KC):
                kc, add = min(KC, s1 - k0), 1 if k0 > s0 else 0
                for i in range(i0, i0 + height, mr):
                    tile_rows = min(mr, i0 + height - i)
                    a_start = i * a.shape[1] + group * (plane * steps + k0)
                    target, at, ldc = (
                        (c32, i * n + column, n) if i - i0 < in_place else (block_sums, (i - i0) * nr, nr)
                    )
                    _block_tile(
                        a, a_start, offsets, packed, panel, t0, t1, k0, kc, target, at, ldc,
                        tile_rows, add, a_tile, i, no_shift, tile_start, column,
                    )  # fmt: skip
            _add_block(
                c[i0 + in_place : i0 + height, column : column + width],
                block_sums[in_place:],
                start,
                column,
                8 * plane,
                b == 0,
                direct,
            )


@kernel(inline="always")
def _add_block(target, sums, start, column, shift, first, direct):
    """``target (=|+=) sums << shift``: one block's int32 sums into the result, plus ``start``
    from ``column`` on where ``first`` (a ``direct`` result's sums began there already).
    0-based loops over views, which vectorise."""
    for r in range(target.shape[0]):
        row, block_row = target[r], sums[r]
        if direct:
            for j in range(row.size):
                row[j] = block_row[j]
        elif first:
            for j in range(row.size):
                row[j] = (np.int64(block_row[j]) << shift) + start[column + j]
        else:
            for j in range(row.size):
                row[j] += np.int64(block_row[j]) << shift


@kernel(inline="always")
def _block_tile(
    a,
    a_start,
    offsets,
    packed,
    panel,
    t0,
    t1,
    k0,
    kc,
    target,
    at,
    ldc,
    height,
    add,
    a_tile,
    i,
    no_shift,
    start,
    s_at,
):
    """One tile of ``height`` rows (A from element ``a_start``, row i; the sums from element
    ``at`` of ``target``, ``ldc`` apart) and one panel, over reduction steps [k0, k0 + kc) of
    taps [t0, t1), added to the sums with ``add``, else begun at ``start[s_at:]``. Partial
    tiles copy each tap's rows into the scratch ``a_tile``."""
    lda, steps, nr, group = a.shape[1], packed.shape[2], packed.shape[3], packed.shape[4]
    tap_stride = packed.shape[1] * steps * nr * group
    w_start = t0 * tap_stride + (panel * steps + k0) * nr * group
    if height == a_tile.shape[0]:
        _tile(
            a,
            a_start,
            lda,
            offsets,
            t0,
            t1 - t0,
            packed,
            w_start,
            tap_stride,
            kc,
            target,
            at,
            ldc,
            add,
            start,
            s_at,
        )
        return
    for t in range(t0, t1):
        a_tile[:height] = a[offsets[t] + i : offsets[t] + i + height]
        first = 1 if add or t > t0 else 0
        w_t = w_start + (t - t0) * tap_stride
        _tile(
            a_tile,
            a_start - i * lda,
            lda,
            no_shift,
            0,
            1,
            packed,
            w_t,
            0,
            kc,
            target,
            at,
            ldc,
            first,
            start,
            s_at,
        )
