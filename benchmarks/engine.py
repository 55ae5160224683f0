"""Integer engine speed: nnasim vs onnxruntime (int8 QDQ and fp32) and onnx.reference, one thread.

    python benchmarks/engine.py [--repeat N] [--skip-lffd] [--skip-memory]

Measured in one run, one thread everywhere (BLAS, Numba, onnxruntime): time per inference
(median of ``--repeat`` runs after a warm-up) of

- MobileFaceNet (../shared/models, skipped when absent): nnasim on the onnxruntime-quantized
  QDQ int8 model (the same integers onnxruntime computes), nnasim's own 8- and 16-bit
  quantization, onnxruntime int8 QDQ and fp32, and onnx.reference on the QDQ int8 model;
- LFFD 640x640 (built-in): nnasim 8 and 16 bits, onnxruntime int8 QDQ and fp32;
- peak memory (max RSS) of a fresh process running LFFD 640x640 at 16 bits.

Ratios are nnasim's time over the others'. Results go in benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up (Numba cache load, onnxruntime first-run allocations)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def model_rows(
    label, float_path, graph, feeds, qdq_path, repeat, reference_repeat
) -> list[tuple[str, float]]:
    """(what, ms) for one network."""
    from nnasim.engine.session import build_session
    from nnasim.quant.qdq import load_qdq

    feed = feeds[0]
    rows = []
    qdq_session = build_session(load_qdq(qdq_path), 8)
    rows.append(
        (
            f"{label} nnasim int8 (onnxruntime's QDQ model, float32 rule)",
            median_ms(lambda: qdq_session.run(feed), repeat),
        )
    )
    for bits in (8, 16):
        session = build_session(graph, bits, calib=feeds)
        rows.append(
            (
                f"{label} nnasim {bits}-bit (own pow2 quantization)",
                median_ms(lambda s=session: s.run(feed), repeat),
            )
        )
    ort_int8, ort_fp32 = ort_session(qdq_path), ort_session(float_path)
    rows.append((f"{label} onnxruntime int8 QDQ", median_ms(lambda: ort_int8.run(None, feed), 10 * repeat)))
    rows.append((f"{label} onnxruntime fp32", median_ms(lambda: ort_fp32.run(None, feed), 10 * repeat)))
    if reference_repeat:
        import onnx
        from onnx import version_converter
        from onnx.reference import ReferenceEvaluator

        # onnx.reference implements QuantizeLinear/DequantizeLinear from opset 19 on
        evaluator = ReferenceEvaluator(version_converter.convert_version(onnx.load(str(qdq_path)), 19))
        rows.append(
            (
                f"{label} onnx.reference int8 QDQ",
                median_ms(lambda: evaluator.run(None, feed), reference_repeat),
            )
        )
    return rows


def prepare(spec, tmp: Path, feeds_from=None):
    """(float ONNX path, lowered graph, feeds, onnxruntime QDQ path) for a model."""
    from nnasim.engine.session import generated_feeds
    from nnasim.frontend import load_lowered
    from nnasim.models import zoo
    from nnasim.quant.onnxruntime_qdq import quantize_with_onnxruntime

    path = Path(spec) if Path(str(spec)).exists() else zoo.resolve(spec)
    graph = load_lowered(path)
    feeds = feeds_from(graph) if feeds_from else generated_feeds(graph, 2)
    qdq = quantize_with_onnxruntime(path, tmp / f"{path.stem}_qdq.onnx", feeds)
    return path, graph, feeds, qdq


def face_feeds(graph):
    from nnasim.engine.inputs import load_feeds
    from nnasim.io.data import preprocessing_for

    folder = SHARED / "images" / "aligned"
    return [feed for _, feed in load_feeds(folder, graph, preprocessing_for("mobilefacenet"))][:4]


def memory_probe() -> None:
    """Run LFFD 640x640 at 16 bits once and print the peak RSS in MiB (run in a fresh process)."""
    from nnasim.engine.session import build_session, generated_feeds
    from nnasim.frontend import load_lowered

    graph = load_lowered("lffd@640x640")
    feeds = generated_feeds(graph, 1)
    start = time.perf_counter()
    build_session(graph, 16, calib=feeds).run(feeds[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{peak:.0f} {time.perf_counter() - start:.1f}")


def ratios(rows: list[tuple[str, float]], label: str) -> list[str]:
    times = dict(rows)
    ours = times.get(f"{label} nnasim int8 (onnxruntime's QDQ model, float32 rule)")
    lines = []
    for other in ("onnxruntime int8 QDQ", "onnxruntime fp32", "onnx.reference int8 QDQ"):
        theirs = times.get(f"{label} {other}")
        if ours and theirs:
            lines.append(f"{label}: nnasim int8 / {other} = {ours / theirs:.2f}x")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-lffd", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.memory_probe:
        memory_probe()
        return 0
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, one thread used")
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        if (SHARED / "models" / "mobilefacenet.onnx").exists():
            prepared = prepare(SHARED / "models" / "mobilefacenet.onnx", Path(tmp), face_feeds)
            rows += model_rows("MobileFaceNet", *prepared, args.repeat, reference_repeat=3)
            notes += ratios(rows, "MobileFaceNet")
        else:
            notes.append(f"MobileFaceNet skipped: {SHARED / 'models'} is absent")
        if not args.skip_lffd:
            rows += model_rows("LFFD 640x640", *prepare("lffd@640x640", Path(tmp)), 2, reference_repeat=0)
            notes += ratios(rows, "LFFD 640x640")
    for what, ms in rows:
        print(f"{ms:10.1f} ms  {what}")
    print("\n".join(notes))
    if not args.skip_memory:
        probe = subprocess.run(
            [sys.executable, __file__, "--memory-probe"], capture_output=True, text=True, check=True
        )
        peak, seconds = probe.stdout.split()
        print(
            f"LFFD 640x640 16-bit, fresh process (load, calibrate, quantize, one run in {seconds} s): "
            f"peak RSS {peak} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
