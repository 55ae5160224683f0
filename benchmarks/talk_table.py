"""The talk's table (PowerVR 2NX and 3NX, LFFD 640x640 and ArcFace/IResNet100 112x112, 16 and
8 bits) beside nnasim's cost model, with the error of each of the 16 figures.

    python benchmarks/talk_table.py [--format table|github]

The measured figures are the seed talk's (``../shared/design.md``); nnasim's come from
``hwprofiles/2nx.yaml`` and ``3nx.yaml``, one parameter set per profile for every network.
"""

from __future__ import annotations

import argparse
import sys
import time

from tabulate import tabulate

from nnasim.cost import build_workload, evaluate, load_profile
from nnasim.frontend import load_lowered

NETWORKS = {"LFFD": "lffd", "ArcFace": "arcface"}
# (profile, network) -> (MB 16-bit, MB 8-bit, inferences/s 16-bit, inferences/s 8-bit), from the talk.
TALK = {
    ("2nx", "LFFD"): (260, 112, 56, 83),
    ("2nx", "ArcFace"): (206, 95, 70, 123),
    ("3nx", "LFFD"): (218, 101, 65, 158),
    ("3nx", "ArcFace"): (170, 73, 89, 242),
}
FIGURES = (("MB/inference", 16), ("MB/inference", 8), ("inferences/s", 16), ("inferences/s", 8))


def talk_comparison() -> list[dict]:
    """One row per figure: the talk's value, nnasim's, and the error in percent."""
    workloads = {name: build_workload(load_lowered(spec)) for name, spec in NETWORKS.items()}
    rows = []
    for (profile, network), measured in TALK.items():
        hw = load_profile(profile)
        costs = {bits: evaluate(workloads[network], hw, bits) for bits in (16, 8)}
        for (metric, bits), talk in zip(FIGURES, measured, strict=True):
            cost = costs[bits]
            ours = cost.megabytes if metric == "MB/inference" else cost.inferences_per_second
            error = 100.0 * (ours / talk - 1.0)
            rows.append(
                {
                    "profile": profile,
                    "network": network,
                    "figure": metric,
                    "bits": bits,
                    "talk": talk,
                    "nnasim": round(ours, 1),
                    "error %": round(error, 1),
                    "within": "5%" if abs(error) <= 5 else "10%" if abs(error) <= 10 else "OUTSIDE 10%",
                    "bound": cost.bound,
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("table", "github"), default="table")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = talk_comparison()
    print(tabulate(rows, headers="keys", tablefmt="simple" if args.format == "table" else "github"))
    errors = [abs(row["error %"]) for row in rows]
    print(
        f"\n{sum(e <= 5 for e in errors)} of 16 within 5%, {sum(e <= 10 for e in errors)} within 10%; "
        f"worst {max(errors):.1f}%. MB = 10^6 bytes. ({time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
