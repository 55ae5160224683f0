"""Exact integer matrix products on int16 pairs: int32 ``C = A @ W`` with A, W holding int16 values.

The CPU's integer multiply-add of int16 pairs (x86 ``pmaddwd``: ``a0*w0 + a1*w1`` into int32,
16 products per AVX2 instruction) does an 8-bit layer's products at about 1.5x float32 sgemm's
rate (``benchmarks/int_products.py``). The tile below is written in portable LLVM IR (sign-extend,
multiply, add the even and odd lanes), which LLVM selects as ``vpmaddwd`` on AVX2 and as the
best pairwise multiply-add elsewhere.

Exact when every value fits int16 with no pair ``(-2**15, -2**15) x (-2**15, -2**15)`` (the one
``pmaddwd`` overflow), and every partial sum fits int32: ``int32_exact`` proves both from the
largest ``|a|`` and the weights, as ``gemm.exact_chunks`` does for floats.

Layouts. ``A`` is (rows, Kp) int16, Kp even (pairs along K). Weights are packed once into
(taps, panels, Kp/2, NR, 2): per reduction pair, NR output channels' two weights side by side.
A product sums over taps, each reading ``A`` from its own row offset: one tap is a plain GEMM,
a convolution's window taps on shifted rows of its padded input are the implicit GEMM.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from nnasim.kernels.jit import kernel

MR, NR = 6, 16  # a tile: 6 rows x 16 channels, 12 AVX2 accumulators
MC, KC = 96, 256  # rows per block (A block in L2), reduction pairs per pass (W panel in L1)
INT32_EXACT = 2**31
INT16_MAX = 2**15 - 1

_I16, _I32 = ir.IntType(16), ir.IntType(32)
_PAIRS = ir.VectorType(_I16, 2 * 8)  # 8 lanes of (even, odd) int16 pairs
_LANES = ir.VectorType(_I32, 8)
_WIDE = ir.VectorType(_I32, 2 * 8)
_EVEN = ir.Constant(ir.VectorType(_I32, 8), list(range(0, 16, 2)))
_ODD = ir.Constant(ir.VectorType(_I32, 8), list(range(1, 16, 2)))
_SPLAT = ir.Constant(ir.VectorType(_I32, 8), [0] * 8)


def int32_exact(weight: np.ndarray, input_bound: int) -> bool:
    """Whether int16 pair products of ``|a| <= input_bound`` and ``weight`` (K x N) sum exactly
    in int32: operands fit int16 (the bound excludes -2**15, so no pair overflows) and the worst
    partial sum ``input_bound * max_n sum_k |w[k, n]|`` stays below 2**31."""
    magnitude = np.abs(np.asarray(weight, np.int64))
    if input_bound > INT16_MAX or int(magnitude.max(initial=0)) > INT16_MAX:
        return False
    return int(input_bound) * int(magnitude.sum(axis=0).max(initial=0)) < INT32_EXACT


def pack_weights(taps: np.ndarray) -> np.ndarray:
    """(T, K, N) integer weights -> (T, panels, Kp/2, NR, 2) int16, zero-padded to even K and to
    whole panels of NR channels."""
    count, k, n = taps.shape
    pairs, panels = -(-k // 2), -(-n // NR)
    padded = np.zeros((count, 2 * pairs, panels * NR), np.int16)
    padded[:, :k, :n] = taps
    return np.ascontiguousarray(padded.reshape(count, pairs, 2, panels, NR).transpose(0, 3, 1, 4, 2))


def _pair_madd(builder, a, w):
    """``a0*w0 + a1*w1`` per int32 lane of two int16-pair vectors (LLVM selects ``pmaddwd``)."""
    product = builder.mul(builder.sext(a, _WIDE), builder.sext(w, _WIDE))
    return builder.add(
        builder.shuffle_vector(product, product, _EVEN), builder.shuffle_vector(product, product, _ODD)
    )


def _data(context, builder, array_type, value):
    return cgutils.create_struct_proxy(array_type)(context, builder, value=value).data


@intrinsic
def _tile(typingctx, a, a_start, lda, w, w_start, pairs, c, c_start, ldc, accumulate):
    """C[0:MR, 0:NR] (+)= A[0:MR, 0:2*pairs] @ panel, elements addressed from the given starts.

    The MR x NR int32 accumulators live in registers across the reduction; ``accumulate`` adds
    them to C instead of storing.
    """
    if any(not isinstance(x, types.Array) or x.layout != "C" for x in (a, w, c)):
        return None  # the tile addresses rows by raw offsets: C-contiguous arrays only
    sig = types.void(a, a_start, lda, w, w_start, pairs, c, c_start, ldc, accumulate)

    def codegen(context, builder, sig, args):
        a, a_start, lda, w, w_start, pairs, c, c_start, ldc, accumulate = args
        a_ptr = builder.gep(_data(context, builder, sig.args[0], a), [a_start])
        w_ptr = builder.bitcast(
            builder.gep(_data(context, builder, sig.args[3], w), [w_start]), _PAIRS.as_pointer()
        )
        c_ptr = builder.gep(_data(context, builder, sig.args[6], c), [c_start])
        rows = [
            builder.bitcast(builder.gep(a_ptr, [builder.mul(lda, lda.type(r))]), _I32.as_pointer())
            for r in range(MR)
        ]
        accs = [[cgutils.alloca_once_value(builder, _LANES(None)) for _ in range(NR // 8)] for _ in range(MR)]
        with cgutils.for_range(builder, pairs) as loop:
            step = builder.mul(loop.index, loop.index.type(NR // 8))
            panel = [
                builder.load(builder.gep(w_ptr, [builder.add(step, step.type(h))]), align=2)
                for h in range(NR // 8)
            ]
            for r in range(MR):
                pair = builder.load(builder.gep(rows[r], [loop.index]), align=2)
                lanes = builder.insert_element(_LANES(None), pair, _I32(0))
                a_pairs = builder.bitcast(builder.shuffle_vector(lanes, lanes, _SPLAT), _PAIRS)
                for h, w_pairs in enumerate(panel):
                    builder.store(
                        builder.add(builder.load(accs[r][h]), _pair_madd(builder, a_pairs, w_pairs)),
                        accs[r][h],
                    )
        add = builder.icmp_unsigned("!=", accumulate, accumulate.type(0))
        for r in range(MR):
            row = builder.gep(c_ptr, [builder.mul(ldc, ldc.type(r))])
            for h in range(NR // 8):
                target = builder.bitcast(builder.gep(row, [ldc.type(8 * h)]), _LANES.as_pointer())
                total = builder.load(accs[r][h])
                old = builder.load(target, align=4)
                builder.store(builder.select(add, builder.add(total, old), total), target, align=4)
        return context.get_dummy_value()

    return sig, codegen


@kernel(nogil=True)
def int_products(a, offsets, packed, c):
    """``c[r] = sum_t a[offsets[t] + r] @ W_t`` for every row r of ``c`` (rows, N) int32.

    ``a`` (R, Kp) int16 and ``packed`` (T, panels, Kp/2, NR, 2) from ``pack_weights``; rows past
    ``a``'s end are never read (partial tiles go through scratch tiles). Blocked as BLIS does:
    KC reduction pairs at a time, MC rows at a time, one panel of NR channels at a time.
    """
    rows, pairs = c.shape[0], packed.shape[2]
    if offsets.size != packed.shape[0] or offsets.min() < 0 or offsets.max() + rows > a.shape[0]:
        raise ValueError("int_products: a tap's rows run past the input")
    if a.shape[1] < 2 * pairs or c.shape[1] > packed.shape[1] * NR:
        raise ValueError("int_products: the input or output is narrower than the packed weights")
    a_tile = np.zeros((MR, a.shape[1]), np.int16)
    c_tile = np.zeros((MR, NR), np.int32)
    for k0 in range(0, pairs, KC):
        for i0 in range(0, rows, MC):
            for panel in range(packed.shape[1]):
                for i in range(i0, min(i0 + MC, rows), MR):
                    height = min(MR, i0 + MC - i, rows - i)
                    for t in range(packed.shape[0]):
                        _tap_tile(a, offsets[t] + i, packed, t, panel, k0, c, i, height, a_tile, c_tile)


@kernel(inline="always")
def _tap_tile(a, first, packed, tap, panel, k0, c, i, height, a_tile, c_tile):
    """One tile of rows [i, i + height) and one panel, over reduction pairs [k0, k0 + KC) of one
    tap, reading ``a`` from row ``first``; added to C unless it is the first tap and pass."""
    n, lda, pairs = c.shape[1], a.shape[1], packed.shape[2]
    kc = min(KC, pairs - k0)
    w_start = ((tap * packed.shape[1] + panel) * pairs + k0) * NR * 2
    add = 1 if tap > 0 or k0 > 0 else 0
    width = min(NR, n - panel * NR)
    if height == MR and width == NR:
        _tile(a, first * lda + 2 * k0, lda, packed, w_start, kc, c, i * n + panel * NR, n, add)
        return
    columns = slice(panel * NR, panel * NR + width)
    if add:
        c_tile[:height, :width] = c[i : i + height, columns]
    if height == MR:  # a partial panel only: C goes through the scratch tile, A is read in place
        _tile(a, first * lda + 2 * k0, lda, packed, w_start, kc, c_tile, 0, NR, add)
    else:
        a_tile[:height] = a[first : first + height]
        _tile(a_tile, 2 * k0, lda, packed, w_start, kc, c_tile, 0, NR, add)
    c[i : i + height, columns] = c_tile[:height, :width]
