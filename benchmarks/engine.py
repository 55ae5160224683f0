"""Integer engine speed: nnasim vs onnxruntime (int8 QDQ and fp32) and onnx.reference, 1 and 2 threads.

    python benchmarks/engine.py [--repeat N] [--threads 1,2] [--skip-arcface] [--skip-lffd] [--skip-memory]

Measured in one run, per thread count (nnasim ``set_threads``, onnxruntime intra-op threads;
BLAS is held to one thread by nnasim, see docs/engine.md): the time per inference of

- MobileFaceNet 112x112 (../shared/models, skipped when absent), LFFD 640x640 and ArcFace
  IResNet100 112x112 (built-in, synthetic weights);
- nnasim on onnxruntime's own QDQ int8 model (the same integers onnxruntime computes, float32
  rule), nnasim's own 8- and 16-bit pow2 quantization, onnxruntime int8 QDQ and fp32, and
  onnx.reference on the QDQ model (MobileFaceNet only: minutes per inference on the others).

The engines run in interleaved rounds (one inference of each per round, ``--repeat`` rounds
after a warm-up) so that a loaded machine slows them alike; times are medians over rounds and
ratios are quotients of those medians. Printed at the end: the machine's load, CPU flags that matter
(AVX2, AVX-512, VNNI), which BLAS library and kernel ran (threadpoolctl), and the peak RSS of
LFFD 640x640 at 16 bits in a fresh process (VmHWM, which, unlike ``ru_maxrss``, a child does not
inherit from its parent). Results go in benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", str(os.cpu_count() or 1))  # set_threads lowers it
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")
QDQ = "nnasim int8 (onnxruntime's QDQ model, float32 rule)"


def interleaved_ms(engines: dict, repeat: int) -> dict[str, float]:
    """Median ms per inference of each engine, one inference of each per round."""
    for run in engines.values():
        run()  # warm-up: Numba cache load, onnxruntime's first-run allocations
    times = {name: [] for name in engines}
    for _ in range(repeat):
        for name, run in engines.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values) * 1e3) for name, values in times.items()}


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Interleaved runs: onnxruntime's idle workers would otherwise spin after each run and take the
    # second core from the engine measured next (nnasim's first 2-thread run came out 3x slower).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_runner(session, feed):
    return lambda: session.run(None, feed)


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


def network_rows(label, prepared, thread_counts, repeat, reference: bool) -> list[tuple[str, int, float]]:
    """(what, threads, ms) for one network at every thread count."""
    from nnasim.engine.session import build_session
    from nnasim.kernels.parallel import set_threads
    from nnasim.quant.qdq import load_qdq

    float_path, graph, feeds, qdq_path = prepared
    feed = feeds[0]
    sessions = {QDQ: build_session(load_qdq(qdq_path), 8)}
    for bits in (8, 16):
        sessions[f"nnasim {bits}-bit (own pow2 quantization)"] = build_session(graph, bits, calib=feeds)
    rows = []
    for threads in thread_counts:
        set_threads(threads)
        engines = {name: (lambda s=s: s.run(feed)) for name, s in sessions.items()}
        for name, path in (("onnxruntime int8 QDQ", qdq_path), ("onnxruntime fp32", float_path)):
            engines[name] = ort_runner(ort_session(path, threads), feed)
        rows += [(f"{label} {name}", threads, ms) for name, ms in interleaved_ms(engines, repeat).items()]
    if reference:
        rows.append((f"{label} onnx.reference int8 QDQ", 1, reference_ms(qdq_path, feed)))
    return rows


def reference_ms(qdq_path: Path, feed) -> float:
    import onnx
    from onnx import version_converter
    from onnx.reference import ReferenceEvaluator

    # onnx.reference implements QuantizeLinear/DequantizeLinear from opset 19 on
    evaluator = ReferenceEvaluator(version_converter.convert_version(onnx.load(str(qdq_path)), 19))
    return interleaved_ms({"reference": lambda: evaluator.run(None, feed)}, 2)["reference"]


def ratio_lines(rows, label: str) -> list[str]:
    times = {(what, threads): ms for what, threads, ms in rows}
    lines = []
    for threads in sorted({t for _, t, _ in rows}):

        def ms(what, threads=threads):
            return times.get((f"{label} {what}", threads))

        int8, ort8, fp32 = ms(QDQ), ms("onnxruntime int8 QDQ"), ms("onnxruntime fp32")
        own16 = ms("nnasim 16-bit (own pow2 quantization)")
        if int8 and ort8:
            lines.append(f"{label}, {threads} thread(s): nnasim int8 / onnxruntime int8 = {int8 / ort8:.2f}x")
        if own16 and fp32:
            lines.append(
                f"{label}, {threads} thread(s): nnasim 16-bit / onnxruntime fp32 = {own16 / fp32:.2f}x"
            )
        reference = times.get((f"{label} onnx.reference int8 QDQ", 1))
        if int8 and reference:
            lines.append(
                f"{label}, {threads} thread(s): onnx.reference / nnasim int8 = {reference / int8:.1f}x"
            )
    counts = sorted({t for _, t, _ in rows})
    if len(counts) > 1:
        for what in (QDQ, "nnasim 16-bit (own pow2 quantization)", "onnxruntime int8 QDQ"):
            one, many = times.get((f"{label} {what}", counts[0])), times.get((f"{label} {what}", counts[-1]))
            if one and many:
                lines.append(
                    f"{label} {what}: {counts[-1]} threads {one / many:.2f}x faster than {counts[0]}"
                )
    return lines


def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty elsewhere)."""
    path = Path("/proc/cpuinfo")
    fields = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def machine_lines() -> list[str]:
    """CPU, load, flags, and every thread pool loaded (BLAS libraries with their kernel, OpenMP)."""
    from threadpoolctl import threadpool_info

    info = cpu_info()
    flags = set(info.get("flags", "").split())
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        f"machine: {info.get('model name', platform.machine())}, {os.cpu_count()} cores, load average {load}",
        "CPU flags: " + ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in FLAGS),
    ]
    for pool in threadpool_info():
        kernel = pool.get("architecture", "-")
        library = Path(pool["filepath"]).name
        lines.append(
            f"{pool['user_api']}: {pool['internal_api']} {pool.get('version')} kernel {kernel} "
            f"({library}), {pool['num_threads']} thread(s)"
        )
    if os.environ.get("OPENBLAS_CORETYPE"):
        coretype = os.environ["OPENBLAS_CORETYPE"]
        lines.append(f"OPENBLAS_CORETYPE={coretype} is set in the environment: it picks OpenBLAS's kernel")
    return lines


def memory_probe() -> None:
    """Run LFFD 640x640 at 16 bits once; print peak resident memory (MiB, VmHWM) and seconds."""
    from nnasim.engine.session import build_session, generated_feeds
    from nnasim.frontend import load_lowered

    start = time.perf_counter()
    graph = load_lowered("lffd@640x640")
    feeds = generated_feeds(graph, 1)
    build_session(graph, 16, calib=feeds).run(feeds[0])
    status = Path("/proc/self/status").read_text()
    peak_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
    print(f"{peak_kib / 1024:.0f} {time.perf_counter() - start:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="interleaved rounds per thread count")
    parser.add_argument("--threads", default="1,2", help="thread counts to measure (default 1,2)")
    parser.add_argument("--skip-lffd", action="store_true")
    parser.add_argument("--skip-arcface", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.memory_probe:
        memory_probe()
        return 0
    thread_counts = [int(t) for t in args.threads.split(",")]
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        networks = []
        if (SHARED / "models" / "mobilefacenet.onnx").exists():
            networks.append(("MobileFaceNet", SHARED / "models" / "mobilefacenet.onnx", face_feeds, True))
        else:
            notes.append(f"MobileFaceNet skipped: {SHARED / 'models'} is absent")
        if not args.skip_lffd:
            networks.append(("LFFD 640x640", "lffd@640x640", None, False))
        if not args.skip_arcface:
            networks.append(("ArcFace IResNet100", "arcface", None, False))
        for label, spec, feeds_from, reference in networks:
            prepared = prepare(spec, Path(tmp), feeds_from)
            repeat = args.repeat if label == "MobileFaceNet" else max(3, args.repeat // 3)
            found = network_rows(label, prepared, thread_counts, repeat, reference)
            rows += found
            notes += ratio_lines(found, label)
            print(f"({label} done, load average {os.getloadavg()[0]:.1f})", flush=True)
    for what, threads, ms in rows:
        print(f"{ms:10.1f} ms  {threads} thr  {what}")
    print("\n".join(notes))
    if not args.skip_memory:
        probe = subprocess.run(
            [sys.executable, __file__, "--memory-probe"], capture_output=True, text=True, check=True
        )
        peak, seconds = probe.stdout.split()
        print(
            f"LFFD 640x640 16-bit, fresh process (load, calibrate, quantize, one run in {seconds} s): "
            f"peak RSS (VmHWM) {peak} MiB"
        )
    print("\n".join(machine_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
