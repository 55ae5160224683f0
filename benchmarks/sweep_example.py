"""Run the example sweep (the built-in spec `example`: 640 design points, LFFD + ArcFace) end to end.

Writes the sweep folder (default ``sweep_out/``, replaced if it exists), copies the Pareto
plot and the on-chip-memory plot to ``docs/img/`` for the README, and prints the Pareto
points as a Markdown table.

    python benchmarks/sweep_example.py [OUT_DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

from nnasim.sweep import load_spec, run_sweep

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent / "docs" / "img"
COLUMNS = {
    "bits": "bits",
    "macs_per_clock": "MACs/clk",
    "ocm_kib": "OCM KiB",
    "dram_gbps": "DRAM GB/s",
    "area_mm2": "area mm²",
    "lffd_ips": "LFFD inf/s",
    "arcface_ips": "ArcFace inf/s",
    "total_ips": "both inf/s",
    "total_mb": "both MB",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="sweep_out")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    spec = load_spec("example")
    done = run_sweep(spec, args.out, workers=args.workers, force=True)
    print(f"{spec.n_points} points in {done.seconds:.1f} s; {done.pareto} on the Pareto front")
    IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(args.out) / "pareto.png", IMAGES / "sweep_pareto.png")
    shutil.copy(Path(args.out) / "ocm_kib.png", IMAGES / "sweep_ocm_kib.png")
    with open(Path(args.out) / "pareto.csv") as handle:
        rows = list(csv.DictReader(handle))
    print("| " + " | ".join(COLUMNS.values()) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        cells = [_cell(row[column]) for column in COLUMNS]
        print("| " + " | ".join(cells) + " |")


def _cell(text: str) -> str:
    value = float(text)
    return f"{value:,.0f}" if value >= 100 or value.is_integer() else f"{value:.2f}"


if __name__ == "__main__":
    main()
