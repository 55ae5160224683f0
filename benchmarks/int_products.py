"""Integer products (int16 pairs -> int32, ``vpmaddwd``) against float32 sgemm on real layer shapes.

    python benchmarks/int_products.py [--repeat N] [--no-onnxruntime]

For the 3x3 convolutions that dominate LFFD 640 and ArcFace (and the first, 27-wide one) it
times, in interleaved rounds (medians of the thread's CPU time), one thread:

- ``sgemm``: numpy float32 matmul (OpenBLAS) of the im2col matrix, and ``sgemm taps``: the
  engine's stride-1 form, one product per window tap on shifted rows of the padded input, in
  the engine's blocks of output rows;
- ``int``: ``nnasim.kernels.intgemm.int_products`` in the same two forms;
- ``ort``: onnxruntime's ``MatMulInteger`` (uint8 x int8 -> int32) of the im2col matrix.

It checks that every integer result equals numpy's int64 product, prints GMAC/s (true
multiply-accumulates: output pixels x K x Cout) and the best integer form over the best float
form, and counts ``vpmaddwd`` in the compiled kernel.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from nnasim.kernels.gemm import block_rows  # noqa: E402
from nnasim.kernels.intgemm import (  # noqa: E402
    MR,
    NR,
    QUADS,
    IntegerProducts,
    _int_products,
    int_products,
    pack_weights,
)

INT8 = (-128, 127)

# (label, input H, W, Cin, Cout, kernel, stride); MACs per network from its lowered graph
SHAPES = [
    ("LFFD 159x159 64->64 3x3 (56% of LFFD)", 159, 159, 64, 64, 3, 1),
    ("LFFD 159x159 128->128 1x1 (12%)", 159, 159, 128, 128, 1, 1),
    ("LFFD 79x79 64->64 3x3 (7%)", 79, 79, 64, 64, 3, 1),
    ("LFFD 39x39 128->128 3x3 (3%)", 39, 39, 128, 128, 3, 1),
    ("LFFD 640x640 3->64 3x3/2 (1%)", 640, 640, 3, 64, 3, 2),
    ("ArcFace 14x14 256->256 3x3 (56% of ArcFace)", 14, 14, 256, 256, 3, 1),
    ("ArcFace 28x28 128->128 3x3 (23%)", 28, 28, 128, 128, 3, 1),
    ("ArcFace 56x56 64->64 3x3 (4%)", 56, 56, 64, 64, 3, 1),
    ("ArcFace 7x7 512->512 3x3 (4%)", 7, 7, 512, 512, 3, 1),
]


def im2col(image: np.ndarray, k: int, stride: int) -> np.ndarray:
    """(OH*OW, k*k*C) columns of a zero-padded (pad k//2) HWC image."""
    pad = k // 2
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    h, w, c = image.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    windows = [
        padded[ky : ky + stride * oh : stride, kx : kx + stride * ow : stride]
        for ky in range(k)
        for kx in range(k)
    ]
    return np.concatenate(windows, axis=2).reshape(oh * ow, k * k * c)


def tap_form(image: np.ndarray, k: int, dtype) -> tuple[np.ndarray, list[int], int]:
    """The implicit GEMM's input: the padded image flattened to rows, each tap's row shift, the
    padded width (output rows are OH x Wp, the last Wp - OW columns discarded)."""
    pad = k // 2
    h, w, c = image.shape
    wp = w + 2 * pad
    rows = np.zeros(((h + 2 * pad) * wp + k - 1, c + c % 2), dtype)
    rows[: (h + 2 * pad) * wp].reshape(h + 2 * pad, wp, -1)[pad : pad + h, pad : pad + w, :c] = image
    return rows, [ky * wp + kx for ky in range(k) for kx in range(k)], wp


def ort_matmul_integer(k: int, weight: np.ndarray):
    """An onnxruntime session computing (A uint8, zero point 128) x weight int8 -> int32."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w", "zp"], ["c"])],
        "mmi",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, k])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [None, weight.shape[1]])],
        [
            numpy_helper.from_array(weight.astype(np.int8), "w"),
            numpy_helper.from_array(np.array(128, np.uint8), "zp"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def engines(shape, rng, with_ort: bool) -> tuple[dict, float]:
    """{name: (run, check)} for one shape, and its GMAC."""
    _, h, w, cin, cout, k, stride = shape
    image = rng.integers(-128, 128, (h, w, cin))
    weight = rng.integers(-127, 128, (k * k * cin, cout))
    cols = im2col(image, k, stride)
    exact = cols @ weight
    m, kdim = cols.shape
    cols32, weight32 = cols.astype(np.float32), weight.astype(np.float32)
    cols16 = np.zeros((m, kdim + kdim % 2), np.int16)
    cols16[:, :kdim] = cols
    gemm_packed = pack_weights(weight[None])
    out = np.empty((m, cout), np.int32)
    start = np.zeros(gemm_packed.shape[1] * NR, np.int64)
    one_block = np.array([[0, 1, 0, gemm_packed.shape[2], 0]], np.int64)
    runs = {
        "sgemm": (lambda: cols32 @ weight32, lambda r: np.array_equal(r.astype(np.int64), exact)),
        "int": (
            lambda: int_products(cols16, np.zeros(1, np.int64), gemm_packed, out, start, one_block),
            lambda r: np.array_equal(out, exact),
        ),
    }
    if QUADS is not None:
        quads = IntegerProducts.planned(weight[None], 128, INT8)
        cols8 = quads.columns(cols, 0)
        runs["int quads"] = (
            lambda: quads(cols8, np.zeros(1, np.int64), out, 0),
            lambda r: np.array_equal(out, exact),
        )
    if stride == 1 and k > 1:
        runs.update(tap_engines(image, weight, k, exact))
    if with_ort:
        session = ort_matmul_integer(kdim, weight)
        feed = {"a": (cols + 128).astype(np.uint8)}
        runs["ort"] = (lambda: session.run(None, feed)[0], lambda r: np.array_equal(r, exact))
    return runs, m * kdim * cout / 1e9


def tap_engines(image, weight, k, exact) -> dict:
    """The implicit GEMM in float32 and with ``int_products``, both in ``Conv2d``'s blocks of
    output rows (about 256 KiB of accumulators, ``gemm.block_rows``)."""
    h, w, cin = image.shape
    cout = weight.shape[1]
    rows32, shifts, wp = tap_form(image, k, np.float32)
    rows32 = np.ascontiguousarray(rows32[:, :cin])
    taps32 = weight.reshape(k * k, cin, cout).astype(np.float32)
    rows16, _, _ = tap_form(image, k, np.int16)
    packed = pack_weights(weight.reshape(k * k, cin, cout))
    offsets = np.array(shifts, np.int64)
    step = max(1, block_rows(h * wp, cout) // wp)
    out = np.empty((h * wp, cout), np.int32)

    def float_taps():
        for start in range(0, h, step):
            rows = (min(start + step, h) - start) * wp
            acc = np.empty((rows, cout), np.float32)
            product = np.empty_like(acc)
            for t, shift in enumerate(shifts):
                first = start * wp + shift
                np.matmul(rows32[first : first + rows], taps32[t], out=acc if t == 0 else product)
                if t:
                    acc += product
            out[start * wp : start * wp + rows] = acc
        return out

    begin = np.zeros(packed.shape[1] * NR, np.int64)
    tap_block = np.array([[0, k * k, 0, packed.shape[2], 0]], np.int64)

    def int_taps(products=None, source=rows16):
        for start in range(0, h, step):
            rows = (min(start + step, h) - start) * wp
            acc = np.empty((rows, cout), np.int32)
            if products is None:
                int_products(source, offsets + start * wp, packed, acc, begin, tap_block)
            else:
                products(source, offsets + start * wp, acc, 0)
            out[start * wp : start * wp + rows] = acc
        return out

    def exact_taps(result):
        return np.array_equal(result.reshape(h, wp, cout)[:, :w].reshape(-1, cout), exact)

    runs = {"sgemm taps": (float_taps, exact_taps), "int taps": (int_taps, exact_taps)}
    if QUADS is not None:
        quads = IntegerProducts.planned(weight.reshape(k * k, cin, cout), 128, INT8)
        rows8 = (tap_form(image, k, np.int64)[0] + 128).astype(np.uint8)  # padding: x_zp 0 + 128
        padded8 = np.full((rows8.shape[0], quads.depth), 128, np.uint8)
        padded8[:, :cin] = rows8[:, :cin]
        runs["int quads taps"] = (lambda: int_taps(quads, padded8), exact_taps)
    return runs


def median_seconds(runs: dict, repeat: int) -> tuple[dict[str, float], list[str]]:
    """Medians of interleaved rounds, after one checked warm-up, in CPU time of this thread (every
    engine runs in it at one thread; the time another job holds the core does not count); and
    the engines whose result differs from the int64 product (nnasim's must not)."""
    inexact = [name for name, (run, check) in runs.items() if not check(run())]
    if any(not name.startswith("ort") for name in inexact):
        raise AssertionError(f"not exact: {inexact}")
    times = {name: [] for name in runs}
    for _ in range(repeat):
        for name, (run, _) in runs.items():
            start = time.thread_time()
            run()
            times[name].append(time.thread_time() - start)
    return {name: float(np.median(t)) for name, t in times.items()}, inexact


def asm_evidence() -> list[str]:
    """Instruction counts in a fresh compile of ``int_products`` (cached code has no asm), for
    this CPU and, from the same LLVM IR, for other x86 CPUs (compiled, not run)."""
    from llvmlite import binding

    fresh = njit(nogil=True)(_int_products.py_func)
    c = np.empty((MR, NR), np.int32)
    fresh(
        np.zeros((MR, 2), np.int16),
        np.zeros(1, np.int64),
        pack_weights(np.zeros((1, 2, NR))),
        c,
        c,
        np.zeros(NR, np.int64),
        np.array([[0, 1, 0, 1, 0]], np.int64),
    )
    signature = fresh.signatures[0]
    target = binding.Target.from_triple(binding.get_process_triple())
    listings = {f"this CPU ({binding.get_host_cpu_name()})": fresh.inspect_asm(signature)}
    for cpu in ("x86-64", "haswell", "icelake-server", "znver4"):
        module = binding.parse_assembly(fresh.inspect_llvm(signature))
        listings[cpu] = target.create_target_machine(cpu=cpu, opt=3).emit_assembly(module)
    ops = ("vpmaddwd", "vpdpwssd", "\tpmaddwd", "vpmulld")  # the pair tile; quads call vpdpbusd
    return [
        f"{cpu}: " + ", ".join(f"{op.strip()} x{asm.count(op)}" for op in ops)
        for cpu, asm in listings.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-onnxruntime", action="store_true")
    args = parser.parse_args()
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(1)
    blas = ", ".join(
        f"{p['internal_api']} {p.get('version')} {p.get('architecture')}" for p in threadpool_info()
    )
    print(f"one thread; BLAS: {blas}; load average {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        runs, gmac = engines(shape, rng, not args.no_onnxruntime)
        seconds, inexact = median_seconds(runs, args.repeat)
        best_float = min(t for name, t in seconds.items() if name.startswith("sgemm"))
        best_int = min(t for name, t in seconds.items() if name.startswith("int"))
        rates = "  ".join(f"{name} {gmac / t:5.1f}" for name, t in seconds.items())
        note = f"  (not exact: {', '.join(inexact)})" if inexact else ""
        print(f"{shape[0]:<46} GMAC/s: {rates}   int/sgemm {best_float / best_int:.2f}x{note}")
    print(f"load average {os.getloadavg()[0]:.2f}; int_products compiled for")
    for line in asm_evidence():
        print(f"  {line}")


if __name__ == "__main__":
    main()
