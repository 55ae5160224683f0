"""Random single-op full-integer TFLite files against the interpreter's reference kernels.

For each op kind (MUL int8/int16, FULLY_CONNECTED int8/16x8 per tensor and per channel,
CONV_2D and DEPTHWISE_CONV_2D int8/16x8) it writes ``--trials`` files of larger sizes with
random scales (multipliers from about 2**-18 to 2**2 around the one that keeps outputs in
range), zero points, weights and biases (int64 biases up to 2**40), feeds each random inputs
whose amplitude is itself random (full range down to 1/64 of it) and compares every output
integer of nnasim's ``--requant`` rule with the interpreter's (``BUILTIN_REF``, or the default
interpreter with ``--default``). Prints, per kind, the files and outputs that differ and the
share of outputs clamped to the type's limits (which any formula gives alike).

    python benchmarks/tflite_exact_sweep.py --trials 20

The files are written with the tests' flatbuffers builder (``tests/tflite_builders.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from test_tflite_exact import write_case  # noqa: E402
from tflite_builders import NUMPY, Op, T  # noqa: E402
from tflite_oracle import interpreter, invoke  # noqa: E402

from nnasim.engine.session import build_session  # noqa: E402
from nnasim.frontend.tflite import convert_tflite  # noqa: E402
from nnasim.frontend.tflite_reader import read_tflite  # noqa: E402
from nnasim.quant.params import dequantize_array  # noqa: E402

FC = "FullyConnectedOptions"


def _scales(rng, bits: int, typical_acc: float, out_bits: int) -> tuple[float, float]:
    """(input scale, output scale) such that the multiplier times ``typical_acc`` is about an
    output's range, times 2**U(-4, 2)."""
    s_in = float(np.float32(10 ** rng.uniform(-4.5, -3) if bits == 16 else 10 ** rng.uniform(-2.5, -1)))
    target = (2 ** (out_bits - 2)) / typical_acc * 2 ** rng.uniform(-4, 2)
    return s_in, target


def _weights(rng, shape, channels: int, per_channel: bool):
    scales = 10 ** rng.uniform(-3, -1, channels if per_channel else 1)
    return [float(np.float32(s)) for s in scales], rng.integers(-127, 128, shape).astype(np.int8)


def _bias(rng, dtype: str, channels: int, typical_acc: float) -> np.ndarray:
    """Biases of about the accumulators' size; one int64 file in five up to 2**40 (results beyond
    int32, which TFLite's kernels wrap or convert in their own way)."""
    limit = 2**40 if dtype == "INT64" and rng.random() < 0.2 else int(2 * typical_acc)
    return rng.integers(-limit, limit, channels).astype(NUMPY[dtype])


def mul_case(rng, dtype: str):
    bits = 16 if dtype == "INT16" else 8
    shape = (1, *rng.integers(8, 40, 3))
    zps = [0, 0, 0] if bits == 16 else list(rng.integers(-20, 20, 3))
    s_a, target = _scales(rng, bits, (2 ** (bits - 1)) ** 2 / 4, bits)
    s_b = float(np.float32(s_a * 10 ** rng.uniform(-1, 1)))
    s_out = float(np.float32(s_a * s_b / target))
    tensors = [T(tuple(shape), dtype, s, int(z)) for s, z in zip((s_a, s_b, s_out), zps, strict=True)]
    act = int(rng.choice([0, 1]))
    return tensors, [Op("MUL", [0, 1], [2], "MulOptions", {"FusedActivationFunction": act})]


def _product_formats(rng, bits: int, k: int, s_w):
    """(typical |acc|, input scale, output scale, input and output zero points, bias type) of a
    product layer summing ``k`` terms with weight scales ``s_w``: outputs land mid-range."""
    typical_acc = np.sqrt(k) * 2 ** (bits - 1) * 127 / 3
    s_in, target = _scales(rng, bits, typical_acc, bits)
    s_out = float(np.float32(s_in * float(np.mean(s_w)) / target))
    zp_in, zp_out = (0, 0) if bits == 16 else (int(rng.integers(-20, 20)), int(rng.integers(-20, 20)))
    return typical_acc, s_in, s_out, zp_in, zp_out, "INT64" if bits == 16 else "INT32"


def fc_case(rng, dtype: str, per_channel: bool):
    bits = 16 if dtype == "INT16" else 8
    rows, k, n = int(rng.integers(8, 64)), int(rng.integers(16, 300)), int(rng.integers(8, 64))
    s_w, w = _weights(rng, (n, k), n, per_channel)
    typical_acc, s_in, s_out, zp_in, zp_out, bias_type = _product_formats(rng, bits, k, s_w)
    tensors = [
        T((rows, k), dtype, s_in, zp_in),
        T((n, k), "INT8", s_w if per_channel else s_w[0], 0, data=w),
        T((n,), bias_type, [s_in * s for s in s_w], 0, data=_bias(rng, bias_type, n, typical_acc)),
        T((rows, n), dtype, s_out, zp_out),
    ]
    return tensors, [Op("FULLY_CONNECTED", [0, 1, 2], [3], FC, {"FusedActivationFunction": 0})]


def conv_case(rng, dtype: str, depthwise: bool):
    bits = 16 if dtype == "INT16" else 8
    h, w, c = int(rng.integers(10, 24)), int(rng.integers(10, 24)), int(rng.integers(4, 24))
    out_c = c if depthwise else int(rng.integers(4, 24))
    w_shape = (1, 3, 3, c) if depthwise else (out_c, 3, 3, c)
    s_w, weights = _weights(rng, w_shape, out_c, True)
    k = 9 if depthwise else 9 * c
    typical_acc, s_in, s_out, zp_in, zp_out, bias_type = _product_formats(rng, bits, k, s_w)
    tensors = [
        T((1, h, w, c), dtype, s_in, zp_in),
        T(w_shape, "INT8", s_w, 0, axis=3 if depthwise else 0, data=weights),
        T((out_c,), bias_type, [s_in * s for s in s_w], 0, data=_bias(rng, bias_type, out_c, typical_acc)),
        T((1, h, w, out_c), dtype, s_out, zp_out),
    ]
    fields = dict(Padding=0, StrideH=1, StrideW=1, DilationHFactor=1, DilationWFactor=1)
    fields["FusedActivationFunction"] = int(rng.choice([0, 1]))
    if depthwise:
        return tensors, [
            Op(
                "DEPTHWISE_CONV_2D",
                [0, 1, 2],
                [3],
                "DepthwiseConv2DOptions",
                {**fields, "DepthMultiplier": 1},
            )
        ]
    return tensors, [Op("CONV_2D", [0, 1, 2], [3], "Conv2DOptions", fields)]


KINDS = {
    "mul_int8": lambda rng: mul_case(rng, "INT8"),
    "mul_int16": lambda rng: mul_case(rng, "INT16"),
    "fc_int8": lambda rng: fc_case(rng, "INT8", False),
    "fc_int8_per_channel": lambda rng: fc_case(rng, "INT8", True),
    "fc_16x8": lambda rng: fc_case(rng, "INT16", False),
    "fc_16x8_per_channel": lambda rng: fc_case(rng, "INT16", True),
    "conv_int8": lambda rng: conv_case(rng, "INT8", False),
    "conv_16x8": lambda rng: conv_case(rng, "INT16", False),
    "depthwise_int8": lambda rng: conv_case(rng, "INT8", True),
    "depthwise_16x8": lambda rng: conv_case(rng, "INT16", True),
}


def random_inputs(rng, details) -> list[np.ndarray]:
    """Uniform integers over the input's range divided by 2**U(0, 6)."""
    values = []
    for detail in details:
        info = np.iinfo(detail["dtype"])
        half = max(1, int((info.max - info.min) / 2 / 2 ** rng.uniform(0, 6)))
        zp = int(detail["quantization"][1])
        low, high = max(info.min, zp - half), min(info.max, zp + half)
        values.append(rng.integers(low, high, detail["shape"], endpoint=True).astype(detail["dtype"]))
    return values


def engine_output(path: Path, rule: str, inputs: list[np.ndarray]) -> np.ndarray:
    """nnasim's integers of the model's (only) output on the integer ``inputs`` (TFLite layout)."""
    graph, names = convert_tflite(read_tflite(path))
    session = build_session(graph, None, requant=rule)
    feeds = {
        name: dequantize_array(q.transpose(0, 3, 1, 2) if q.ndim == 4 else q, session.quant(name))
        for q, name in zip(inputs, graph.inputs, strict=True)
    }
    return session.run_integers(feeds)[graph.outputs[0]]


def differing_outputs(path: Path, rng, rule: str, reference: bool) -> tuple[int, int, int]:
    """(differing, compared, at the type's limits) output integers of one run of ``path``."""
    it = interpreter(path, reference)
    inputs = random_inputs(rng, it.get_input_details())
    invoke(it, inputs)
    want = it.get_tensor(it.get_output_details()[0]["index"]).astype(np.int64)
    got = engine_output(path, rule, inputs).astype(np.int64)
    info = np.iinfo(it.get_output_details()[0]["dtype"])
    return int(np.count_nonzero(got != want)), want.size, int(np.isin(want, (info.min, info.max)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--requant", default="fixedpoint")
    parser.add_argument("--default", action="store_true", help="the default interpreter, not BUILTIN_REF")
    parser.add_argument("--kinds", nargs="*", default=sorted(KINDS))
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            files = outputs = differ_files = differ_outputs = limits = 0
            for trial in range(args.trials):
                path = write_case(f"{kind}_{trial}", KINDS[kind](rng), Path(tmp))
                differ, compared, clamped = differing_outputs(path, rng, args.requant, not args.default)
                files, outputs, limits = files + 1, outputs + compared, limits + clamped
                differ_files, differ_outputs = differ_files + (differ > 0), differ_outputs + differ
            print(
                f"{kind:20s} files differing {differ_files:3d}/{files:<3d} outputs differing "
                f"{differ_outputs:7d}/{outputs:<8d} ({limits / outputs:.0%} at the type's limits)"
            )


if __name__ == "__main__":
    main()
