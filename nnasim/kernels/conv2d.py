"""Integer 2-D convolution, NHWC: groups, depthwise, dilation, stride, padding (top, left, bottom, right).

Accumulates ``sum (x - x_zp) * w + bias`` exactly (int64 values). Dense convolutions are integer
products on int16 pairs where int32 accumulation is proved exact (``intgemm``, 8-bit layers),
else an exact float BLAS product (see ``gemm``); both take im2col (Numba) columns, or for stride 1
the window taps on shifted rows of the padded input. Depthwise convolutions are a direct Numba
loop, parallel over output rows. Padding contributes zero (``x_zp`` in the input's format).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from nnasim.kernels.columns import im2col, padded_rows
from nnasim.kernels.gemm import FLOAT32_EXACT, FLOAT64_EXACT, ExactMatmul, block_rows, shared_block_rows
from nnasim.kernels.intgemm import IntegerProducts
from nnasim.kernels.jit import kernel
from nnasim.kernels.parallel import for_blocks
from nnasim.kernels.requant import Requantizer


@dataclass(frozen=True)
class ConvGeometry:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]


def output_hw(in_hw, kernel, strides, pads, dilations) -> tuple[int, int]:
    """Output height/width (floor mode) of a convolution or pooling window."""
    return tuple(
        (size + pads[i] + pads[i + 2] - (dilations[i] * (kernel[i] - 1) + 1)) // strides[i] + 1
        for i, size in enumerate(in_hw)
    )


class Conv2d:
    """A convolution layer's integer core with its weights prepared once.

    ``weight`` is int (O, KH, KW, I/groups); ``input_bound`` is the largest |x - x_zp| possible
    and ``input_range`` the input format's (least, largest) value, where known (it lets VNNI's
    uint8 quads serve, see ``intgemm``). ``integer_products=False`` keeps the float products
    where the integer ones would be exact.
    """

    def __init__(
        self,
        weight: np.ndarray,
        bias: np.ndarray,
        geometry: ConvGeometry,
        input_bound: int,
        integer_products: bool = True,
        input_range: tuple[int, int] | None = None,
    ):
        self.geometry = geometry
        self.weight = np.ascontiguousarray(weight, dtype=np.int64)
        self.bias = np.asarray(bias, dtype=np.int64)
        out_ch, kh, kw, cin_g = weight.shape
        worst = input_bound * int(np.abs(self.weight).reshape(out_ch, -1).sum(axis=1).max(initial=0))
        self.acc_bound = worst + int(np.abs(self.bias).max(initial=0))  # |acc + bias|, proved
        self.depthwise = geometry.groups > 1 and cin_g == 1 and out_ch == geometry.groups
        self.implicit = self.products = None
        if integer_products and geometry.groups == 1:
            self.products = self._integer_products(kh, kw, cin_g, out_ch, input_bound, input_range)
        if self.products is not None:
            return
        if self.depthwise:
            # taps (KH, KW, C) in the narrowest exact accumulator type (see ``exact_dtype``)
            self.taps = np.ascontiguousarray(self.weight[..., 0].transpose(1, 2, 0), dtype=exact_dtype(worst))
            return
        per_group = out_ch // geometry.groups
        self.matmuls = [
            ExactMatmul(
                self.weight[g * per_group : (g + 1) * per_group].reshape(per_group, -1).T, input_bound
            )
            for g in range(geometry.groups)
        ]
        self.implicit = self._implicit_taps(kh, kw, cin_g, out_ch)

    def _integer_products(self, kh, kw, cin, out_ch, input_bound, input_range) -> IntegerProducts | None:
        """Weights packed for ``int_products`` (None where no exact integer plan exists): one
        tap per window position where stride-1 taps apply (``_taps_apply``), else one
        (KH*KW*C, O) product of im2col columns."""
        taps = self.weight.transpose(1, 2, 3, 0)  # (KH, KW, C, O)
        shape = (kh * kw, cin, out_ch) if self._taps_apply() else (1, kh * kw * cin, out_ch)
        return IntegerProducts.planned(taps.reshape(shape), input_bound, input_range)

    def _taps_apply(self) -> bool:
        """Whether a stride-1 convolution with a real window runs as window taps on shifted rows."""
        return self.geometry.strides == (1, 1) and self.geometry.kernel != (1, 1)

    def _implicit_taps(self, kh: int, kw: int, cin: int, out_ch: int) -> np.ndarray | None:
        """Per-tap weights (KH, KW, C, O) when the implicit GEMM applies: one group, stride 1, a
        real window, and one exact chunk (each tap's partial sums are then within the proved bound)."""
        if self.geometry.groups != 1 or not self._taps_apply() or len(self.matmuls[0].chunks) > 1:
            return None
        return self.matmuls[0].weights[0].reshape(kh, kw, cin, out_ch)

    def run(self, x: np.ndarray, x_zp: int, requantizer: Requantizer) -> tuple[np.ndarray, int]:
        """The layer's int32 outputs (N, OH, OW, O) and saturations: each block of the product is
        requantized (``requantizer``, built with this layer's bias) while it is in cache."""
        g = self.geometry
        if self.products is not None:
            return self._int_run(x, x_zp, requantizer)
        if self.implicit is not None:
            return self._implicit_run(x, x_zp, requantizer)
        if self.depthwise or len(self.matmuls) > 1 or len(self.matmuls[0].chunks) > 1:
            acc = self.accumulate(x, x_zp)
            out, saturations = requantizer(acc.reshape(-1, acc.shape[-1]))
            return out.reshape(acc.shape), saturations
        matmul = self.matmuls[0]
        dtype, weight = matmul.dtype, matmul.weights[0]
        if g.kernel == (1, 1) and not any(g.pads):  # pointwise: x - x_zp converted block by block
            cols, zp = x[:, :: g.strides[0], :: g.strides[1]].reshape(-1, x.shape[3]), dtype(x_zp)
        else:
            cols, zp = self._columns(x, x_zp, dtype), None
        out = np.empty((cols.shape[0], weight.shape[1]), np.int32)

        def block(start: int, stop: int) -> int:
            rows = cols[start:stop] if zp is None else np.subtract(cols[start:stop], zp, dtype=dtype)
            return requantizer.into(rows @ weight, out[start:stop])

        saturations = for_blocks(block, cols.shape[0], block_rows(cols.shape[0], weight.shape[1]))
        return out.reshape(x.shape[0], *g.out_hw, -1), saturations

    def _int_run(self, x: np.ndarray, x_zp: int, requantizer: Requantizer) -> tuple[np.ndarray, int]:
        """``int_products`` in blocks of output rows, each requantized while in cache (both
        kernels share a block out among the threads)."""
        n, (oh, ow), out_ch = x.shape[0], self.geometry.out_hw, self.weight.shape[0]
        out = np.empty((n, oh, ow, out_ch), np.int32)
        saturations = 0
        for b in range(n):
            source, shifts, width = self._int_source(x[b], x_zp)
            step = max(1, shared_block_rows(oh * width, out_ch) // width)
            acc = np.empty((min(step, oh) * width, out_ch), self.products.out_dtype)
            for start in range(0, oh, step):
                rows = min(step, oh - start)
                block = acc[: rows * width]
                self.products(source, shifts + start * width, block, x_zp)
                view = block.reshape(rows, width, out_ch)
                saturations += requantizer.into(view, out[b, start : start + rows])
        return out, saturations

    def _int_accumulate(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """Accumulators (N, OH, OW, O) from ``int_products`` in its ``out_dtype`` (int32 or int64),
        bias not included."""
        n, (oh, ow), out_ch = x.shape[0], self.geometry.out_hw, self.weight.shape[0]
        acc = np.empty((n, oh, ow, out_ch), self.products.out_dtype)
        for b in range(n):
            source, shifts, width = self._int_source(x[b], x_zp)
            rows = np.empty((oh * width, out_ch), acc.dtype)
            self.products(source, shifts, rows, x_zp)
            acc[b] = rows.reshape(oh, width, out_ch)[:, :ow]
        return acc

    def _int_source(self, image: np.ndarray, x_zp: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(rows of ``A``, each tap's row shift, rows per output row) for the integer products
        (``A`` as ``IntegerProducts`` lays it out): the padded image with its taps' shifts when
        taps apply (output rows then hold ``Wp - OW`` discarded columns), else im2col columns."""
        g, products = self.geometry, self.products
        offset, fill = products.offset(x_zp), products.fill(x_zp)
        if self._taps_apply():
            wp = image.shape[1] + g.pads[1] + g.pads[3]
            (dh, dw), (kh, kw) = g.dilations, g.kernel
            shifts = np.array([ky * dh * wp + kx * dw for ky in range(kh) for kx in range(kw)], np.int64)
            return self._padded(image, offset, products.dtype, products.depth, fill), shifts, wp
        columns = self._columns(image[None], offset, products.dtype, products.depth, fill)
        return columns, np.zeros(1, np.int64), g.out_hw[1]

    def _implicit_run(self, x: np.ndarray, x_zp: int, requantizer: Requantizer) -> tuple[np.ndarray, int]:
        """``_implicit_gemm`` in blocks of output rows, each requantized while in cache."""
        g = self.geometry
        n, h, w, c = x.shape
        (oh, ow), (dh, dw) = g.out_hw, g.dilations
        taps = self.implicit
        kh, kw, _, out_ch = taps.shape
        wp = w + g.pads[1] + g.pads[3]
        out = np.empty((n, oh, ow, out_ch), np.int32)
        saturations = 0
        for b in range(n):
            padded = self._padded(x[b], x_zp, taps.dtype, c)

            def block(start: int, stop: int, padded=padded, b=b) -> int:
                rows = (stop - start) * wp
                acc = np.empty((rows, out_ch), taps.dtype)
                product = np.empty_like(acc)
                for ky in range(kh):
                    for kx in range(kw):
                        first = (start + ky * dh) * wp + kx * dw
                        target = acc if ky == kx == 0 else product
                        np.matmul(padded[first : first + rows], taps[ky, kx], out=target)
                        if target is product:
                            acc += product
                return requantizer.into(acc.reshape(stop - start, wp, out_ch), out[b, start:stop])  # OW of Wp

            saturations += for_blocks(block, oh, max(1, block_rows(oh * wp, out_ch) // wp))
        return out, saturations

    def _padded(self, image: np.ndarray, x_zp: int, dtype, channels: int, fill: int = 0) -> np.ndarray:
        """``image - x_zp`` padded with ``fill`` (to ``channels`` channels too) and flattened to
        (rows, channels) in ``dtype``, with the rows the last output row's discarded columns read
        past the padded image (see ``_implicit_gemm``)."""
        g = self.geometry
        extra = (g.kernel[1] - 1) * g.dilations[1]
        return padded_rows(image, np.int64(x_zp), *g.pads, extra, channels, _fills(fill, dtype))

    def __call__(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """int64 accumulators (N, OH, OW, O), bias included."""
        raw = self.accumulate(x, x_zp)
        return raw.astype(np.int64) + self.bias if raw.dtype != np.int64 else raw + self.bias

    def accumulate(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """Accumulators without the bias, (N, OH, OW, O): int64, or floats holding exact integers
        (the BLAS result; the output stage converts them and adds the bias in one pass)."""
        g = self.geometry
        if self.products is not None:
            return self._int_accumulate(x, x_zp)
        if self.depthwise:
            return depthwise_conv2d(
                x, np.int64(x_zp), self.taps, *g.strides, *g.pads[:2], *g.dilations, *g.out_hw
            )
        if self.implicit is not None:
            return self._implicit_gemm(x, x_zp)
        cin_g = x.shape[3] // g.groups
        outs = [
            matmul(self._columns(x[..., group * cin_g : (group + 1) * cin_g], x_zp, matmul.dtype))
            for group, matmul in enumerate(self.matmuls)
        ]
        acc = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)
        return acc.reshape(x.shape[0], *g.out_hw, -1)

    def _implicit_gemm(self, x: np.ndarray, x_zp: int) -> np.ndarray:
        """Stride-1 convolution without im2col: on the zero-padded input flattened to (rows, C), the
        window tap (ky, kx) of every output pixel is one contiguous slice, shifted by
        ``ky*dh*Wp + kx*dw``; one GEMM per tap accumulates into an output (OH, Wp, O) whose last
        ``Wp - OW`` columns are discarded. Exact: every partial sum is within the proved bound."""
        g = self.geometry
        (oh, ow), (dh, dw) = g.out_hw, g.dilations
        wp = x.shape[2] + g.pads[1] + g.pads[3]
        taps = self.implicit
        kh, kw, _, out_ch = taps.shape
        result = np.empty((x.shape[0], oh, ow, out_ch), taps.dtype)
        for b in range(x.shape[0]):
            padded = self._padded(x[b], x_zp, taps.dtype, x.shape[3])
            acc = np.zeros((oh * wp, out_ch), taps.dtype)
            product = np.empty_like(acc)
            for ky in range(kh):
                for kx in range(kw):
                    start = ky * dh * wp + kx * dw
                    np.matmul(padded[start : start + oh * wp], taps[ky, kx], out=product)
                    acc += product
            result[b] = acc.reshape(oh, wp, out_ch)[:, :ow]
        return result

    def _columns(
        self, x: np.ndarray, x_zp: int, dtype, width: int | None = None, fill: int = 0
    ) -> np.ndarray:
        """The im2col matrix of ``x - x_zp`` in ``dtype``, ``fill`` where the window leaves the
        input and in the columns appended up to ``width``; a pointwise (1x1, unpadded) conv's
        float columns need no gather (integer ones take ``im2col``'s one parallel pass)."""
        g = self.geometry
        k = g.kernel[0] * g.kernel[1] * x.shape[3]
        width = k if width is None else width
        if g.kernel == (1, 1) and not any(g.pads) and width == k and np.dtype(dtype).kind == "f":
            strided = x[:, :: g.strides[0], :: g.strides[1]].reshape(-1, x.shape[3])
            return np.subtract(strided, dtype(x_zp), dtype=dtype)
        return im2col(
            x,
            np.int64(x_zp),
            *g.kernel,
            *g.strides,
            *g.pads[:2],
            *g.dilations,
            *g.out_hw,
            width,
            _fills(fill, dtype),
        )


def _fills(fill, dtype) -> np.ndarray:
    """Each plane's padding value (one number: one plane) as ``columns`` takes them."""
    return np.asarray(fill, dtype).reshape(-1)


def exact_dtype(worst_sum: int) -> type:
    """float32 while every partial sum stays below 2**24, float64 below 2**53, else int64.

    Floats vectorise on AVX2 where int64 multiplies do not; below these bounds they are exact.
    """
    if worst_sum < FLOAT32_EXACT:
        return np.float32
    return np.float64 if worst_sum < FLOAT64_EXACT else np.int64


@kernel(parallel=True)
def depthwise_conv2d(x, x_zp, taps, sh, sw, pad_top, pad_left, dh, dw, oh, ow):
    """Depthwise convolution (one filter per channel, channel multiplier 1), bias not included.

    ``taps`` is (KH, KW, C) in the accumulator type (exact, see ``exact_dtype``); the loops run
    tap by tap over whole output rows so the channel loop is contiguous and vectorises.
    """
    n, h, w, c = x.shape
    kh, kw = taps.shape[0], taps.shape[1]
    acc = np.zeros((n, oh, ow, c), taps.dtype)
    to_acc = taps.dtype.type
    zp = to_acc(x_zp)
    for row in prange(n * oh):
        b, oy = row // oh, row % oh
        out = acc[b, oy]
        for ky in range(kh):
            iy = oy * sh - pad_top + ky * dh
            if iy < 0 or iy >= h:
                continue
            for kx in range(kw):
                tap = taps[ky, kx]
                for ox in range(ow):
                    ix = ox * sw - pad_left + kx * dw
                    if ix < 0 or ix >= w:
                        continue
                    for ch in range(c):
                        out[ox, ch] += (to_acc(x[b, iy, ix, ch]) - zp) * tap[ch]
    return acc
