"""How close candidate int16 ADD formulas come to TFLite's default interpreter on a model's ADDs.

Every non-broadcast ADD of the model is fed the default interpreter's own inputs (one run on
uniform random integers) and its output compared with three int64 numpy formulas: the reference
kernels' (``reference``), the AVX2 path of ``AddElementwiseInt16`` (``avx2``: truncating
``>> 31``, left shift folded into the multiplier's shift) and its NEON path, which x86 wheels
built without AVX2 run through NEON_2_SSE, on whole 16-element blocks with the reference formula
on the rest (``neon_blocks``, what nnasim's ``xnnpack`` rule does). Prints differing outputs
per ADD and in total.

    python benchmarks/add16_experiment.py ../shared/models/tflite-int/mobilefacenet_int16x8.tflite
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from nnasim.kernels.fixedpoint import quantize_multiplier

INT32_MAX = (1 << 31) - 1
RELU = 1  # TFLite's ActivationFunctionType


def wrap32(x):
    return ((x + (1 << 31)) % (1 << 32)) - (1 << 31)


def srdhm(x, m):
    """gemmlowp SaturatingRoundingDoublingHighMul (ties away from zero; m > 0)."""
    ab = x * np.int64(m)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    return np.where(total >= 0, total >> 31, -((-total) >> 31))


def vqrdmulh(x, m):
    """NEON vqrdmulh (ties toward +infinity; m > 0)."""
    return (x * np.int64(m) + (1 << 30)) >> 31


def rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT (ties away from zero)."""
    if exponent <= 0:
        return x << -exponent
    mask = (1 << exponent) - 1
    return (x >> exponent) + ((x & mask) > (mask >> 1) + (x < 0))


def shift_left(x, shift):
    return x << shift if shift >= 0 else x >> -shift


def avx2_mbqm(x, m, left_shift):
    """avx2_utils::MultiplyByQuantizedMultiplier: truncating >> 31, then a half-up right shift."""
    p = wrap32((wrap32(x << max(left_shift, 0)) * np.int64(m)) >> 31)
    if left_shift >= 0:
        return p
    nudge = 1 << (-left_shift - 1)
    return np.where(p > INT32_MAX - nudge, INT32_MAX, (p + nudge) >> -left_shift)


def params(sa, sb, so):
    """TFLite's add Prepare for int16: (m1, s1, m2, s2, m_out, s_out), left shift 15."""
    twice = 2.0 * max(sa, sb)
    return (
        *quantize_multiplier(sa / twice),
        *quantize_multiplier(sb / twice),
        *quantize_multiplier(twice / ((1 << 15) * so)),
    )


def reference(a, b, p):
    m1, s1, m2, s2, mo, so = p
    return rdbpot(srdhm(rdbpot(srdhm(a << 15, m1), -s1) + rdbpot(srdhm(b << 15, m2), -s2), mo), -so)


def avx2(a, b, p):
    m1, s1, m2, s2, mo, so = p
    return avx2_mbqm(wrap32(avx2_mbqm(a, m1, 15 + s1) + avx2_mbqm(b, m2, 15 + s2)), mo, so)


def neon(a, b, p):
    m1, s1, m2, s2, mo, so = p
    total = vqrdmulh(shift_left(a, 15 + s1), m1) + vqrdmulh(shift_left(b, 15 + s2), m2)
    return rdbpot(vqrdmulh(total, mo), -so)


def neon_blocks(a, b, p):
    body = a.size - a.size % 16
    return np.concatenate([neon(a[:body], b[:body], p), reference(a[body:], b[body:], p)])


FORMULAS = {"reference": reference, "avx2": avx2, "neon_blocks": neon_blocks}


def model_adds(path):
    """(op index, scales, fused activation, (a, b, out) int64 flat) of every ADD of one default run."""
    import tflite
    from ai_edge_litert.interpreter import Interpreter

    model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    graph = model.Subgraphs(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        it = Interpreter(model_path=path, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    for detail in it.get_input_details():
        info = np.iinfo(detail["dtype"])
        x = np.random.default_rng(0).integers(info.min, info.max, detail["shape"], endpoint=True)
        it.set_tensor(detail["index"], x.astype(detail["dtype"]))
    it.invoke()
    for op in it._get_ops_details():
        if op["op_name"] != "ADD":
            continue
        options = tflite.AddOptions()
        table = graph.Operators(op["index"]).BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        tensors = (*op["inputs"], *op["outputs"])
        scales = [float(it._get_tensor_details(i, 0)["quantization"][0]) for i in tensors]
        arrays = [it.get_tensor(i).astype(np.int64) for i in tensors]
        yield op["index"], scales, options.FusedActivationFunction(), arrays


def main(path):
    totals = dict.fromkeys(FORMULAS, 0)
    for index, scales, act, (a, b, out) in model_adds(path):
        if a.shape != b.shape:
            print(index, "broadcast (the reference kernel's BroadcastAdd6DSlow): skipped")
            continue
        p = params(*scales)
        lo = 0 if act == RELU else -32768
        counts = {}
        for name, formula in FORMULAS.items():
            ours = np.clip(formula(a.ravel(), b.ravel(), p), lo, 32767)
            counts[name] = int(np.count_nonzero(ours != out.ravel()))
            totals[name] += counts[name]
        print(index, a.shape, counts)
    print("total", totals)


if __name__ == "__main__":
    main(sys.argv[1])
