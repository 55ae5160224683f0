"""Cascade throughput for the README: LFFD (640x640, once per frame) + ArcFace (IResNet100, once
per face) on 2nx and 3nx at 8 and 16 bits, against faces per frame.

Prints a Markdown table (frames/s and DRAM MB per frame) and the face count from which the
verifier dominates, and draws docs/img/cascade_throughput.png. The same figures, one profile
at a time: ``nnasim profile lffd+arcface --hw 3nx --bits 8,16 --faces 1,2,4,8,16,32``.
"""

from __future__ import annotations

from pathlib import Path

from nnasim.cost.cascade import DEFAULT_FACES, cascade_costs
from nnasim.report.cascade_plot import plot_cascade

PROFILES = ("2nx", "3nx")
IMAGE = Path(__file__).resolve().parents[1] / "docs" / "img" / "cascade_throughput.png"


def main() -> None:
    costs = [cost for hw in PROFILES for cost in cascade_costs("lffd", "arcface", hw, ((8, 8), (16, 16)))]
    names = [f"{cost.detector.hw} {cost.label}-bit" for cost in costs]
    print("| faces/frame | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(costs))
    for n in DEFAULT_FACES:
        cells = [f"{1 / cost.frame_seconds(n):.1f} fps, {cost.frame_megabytes(n):,.0f} MB" for cost in costs]
        print(f"| {n} | " + " | ".join(cells) + " |")
    crossings = [f"{c.time_crossover} (time), {c.traffic_crossover} (MB)" for c in costs]
    print("| verifier dominates from | " + " | ".join(crossings) + " |")
    plot_cascade(IMAGE, costs, DEFAULT_FACES, force=True)
    print(f"plot: {IMAGE}")


if __name__ == "__main__":
    main()
