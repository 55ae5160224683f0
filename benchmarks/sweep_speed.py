"""Design points evaluated per second for LFFD (640x640) + ArcFace (IResNet100), one core.

A design point is one hardware configuration at one bit width, costed on both networks.
Loading the models and building their hardware-independent workloads (including the weight
entropy that lossless compression needs) happens once per worker and is timed apart. Two
figures, on the grid of benchmarks/sweep_example.yaml:

- cold: every memory plan and MAC array seen for the first time (each distinct plan costs
  one run of the full cost model per network; the example has 16 plans per network);
- warm: the same points again, plans known: the per-point cost of the separated form.

    python benchmarks/sweep_speed.py [SPEC.yaml]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nnasim.sweep import load_spec
from nnasim.sweep.points import PointEvaluator


def main(spec_path: str) -> None:
    spec = load_spec(spec_path)
    start = time.perf_counter()
    evaluator = PointEvaluator(spec)
    for cost in evaluator.models.values():
        for bits in spec.bits:
            cost.workload.entropy_bits_per_weight(bits)
    setup = time.perf_counter() - start
    ids = range(spec.n_points)
    start = time.perf_counter()
    evaluator.rows(ids)
    cold = time.perf_counter() - start
    runs = evaluator.evaluations
    start = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        evaluator.rows(ids)
    warm = (time.perf_counter() - start) / repeats
    models = " + ".join(label for label, _ in spec.models)
    print(f"{spec.n_points} design points ({models}, bits {'/'.join(map(str, spec.bits))}) from {spec_path}")
    print(f"setup (load models, workloads, weight entropy; once per worker): {setup:.1f} s")
    print(f"cold: {spec.n_points / cold:,.0f} points/s ({cold:.2f} s, {runs} full cost-model runs)")
    print(f"warm: {spec.n_points / warm:,.0f} points/s ({warm * 1e3:.1f} ms, plans cached)")


if __name__ == "__main__":
    default = Path(__file__).with_name("sweep_example.yaml")
    main(sys.argv[1] if len(sys.argv) > 1 else str(default))
