"""Design points evaluated per second for LFFD (640x640) + ArcFace (IResNet100), one core.

A design point is one hardware configuration at one bit width, costed on both networks.
Loading the models and building their hardware-independent workloads (including the weight
entropy that lossless compression needs) happens once per worker and is timed apart. Two
figures, on the grid of nnasim/sweep/specs/example.yaml:

- cold: every memory plan and MAC array seen for the first time (each distinct plan costs
  one run of the full cost model per network; the example has 16 plans per network);
- warm: the same points again, plans known: the per-point cost of the separated form.

Rates are given per second of wall time and per CPU-second of this single-threaded process,
which is the per-core rate even on a machine shared with other work.

    python benchmarks/sweep_speed.py [SPEC.yaml]
"""

from __future__ import annotations

import os
import sys
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one core: CPU time is then this core's time


def main(spec_path: str) -> None:
    from nnasim.sweep import load_spec
    from nnasim.sweep.points import PointEvaluator

    spec = load_spec(spec_path)
    start = time.perf_counter()
    evaluator = PointEvaluator(spec)
    for cost in evaluator.models.values():
        for bits in spec.bits:
            cost.workload.entropy_bits_per_weight(bits)
    setup = time.perf_counter() - start
    ids = range(spec.n_points)
    cold_wall, cold_cpu = timed(lambda: evaluator.rows(ids))
    runs = evaluator.evaluations
    repeats = 5
    warm_wall, warm_cpu = timed(lambda: [evaluator.rows(ids) for _ in range(repeats)])
    n = spec.n_points
    models = " + ".join(label for label, _ in spec.models)
    print(f"{n} design points ({models}, bits {'/'.join(map(str, spec.bits))}) from {spec_path}")
    print(f"setup (load models, workloads, weight entropy; once per worker): {setup:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; points per second of wall")
    print("time and per CPU-second of this process (= per core, whatever else the machine runs):")
    print(
        f"cold: {n / cold_wall:,.0f} /s wall, {n / cold_cpu:,.0f} /s per core ({runs} full cost-model runs)"
    )
    warm = f"{repeats * n / warm_wall:,.0f} /s wall, {repeats * n / warm_cpu:,.0f} /s per core"
    print(f"warm: {warm} (plans cached)")


def timed(work) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``work()`` (one thread: CPU time is this core's time)."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


if __name__ == "__main__":
    default = "example"
    main(sys.argv[1] if len(sys.argv) > 1 else str(default))
