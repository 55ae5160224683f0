"""nnasim's cost model against Arm's Vela 5.2 on the same networks, Ethos-U55/U65 configs.

    python benchmarks/vela_crosscheck.py [--work DIR] [--rerun] [--layers] [--legacy]

For every full-integer TFLite file in ``../shared/models/tflite-int/`` (int8 and int16x8) and
every accelerator config (ethos-u55-128/-256, ethos-u65-256/-512, Vela's default system
config and memory mode for each), this runs Vela (``--verbose-performance``, results cached
in ``--work``) and nnasim's profile of the same name, and prints nnasim/Vela for total cycles
and for each memory's bytes, then the config-to-config ratios (does the model move the right
way when the design changes?).

Vela 5.2 compiles for the U55/U65 with its C++ core (Regor) by default; ``--legacy`` runs its
deprecated Python core instead (``--debug-force-legacy-core``), whose performance model
(``ethosu/vela/npu_performance.py``) is where nnasim's Ethos-U facts were read.

nnasim reads the .tflite itself when its frontend can; until then it costs the equivalent
ONNX network the file was made from (``NETWORKS``: the zoo's LFFD at 320x240 and 640x640, the
trained MobileFaceNet), which has the same layers. Needs ``pip install -e .[bench]`` (Vela).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from tabulate import tabulate  # noqa: E402

from nnasim.cost import build_workload, evaluate, load_profile  # noqa: E402
from nnasim.errors import NnasimError  # noqa: E402
from nnasim.frontend import load_lowered  # noqa: E402

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "models"
TFLITE_DIR = SHARED / "tflite-int"
# TFLite file stem -> the ONNX network it was converted from (same layers and shapes).
NETWORKS = {
    "lffd_320x240": "lffd@320x240",
    "lffd_640": "lffd",
    "mobilefacenet": str(SHARED / "mobilefacenet.onnx"),
}
WIDTHS = {"int8": "8pc", "int16x8": "16x8"}  # TFLite file suffix -> nnasim width (per-channel weights)
CONFIGS = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512")
PAIRS = (
    ("ethos-u55-128", "ethos-u55-256"),
    ("ethos-u65-256", "ethos-u65-512"),
    ("ethos-u55-256", "ethos-u65-256"),
)
# Vela's summary CSV memory prefixes -> nnasim's memory names (hwprofiles/README.md).
MEMORIES = {"sram": "sram", "dram": "dram", "off_chip_flash": "flash"}
KINDS = {"feature_map_read": "fm read", "feature_map_write": "fm write", "weight_read": "weights"}


def vela_summary(tflite: Path, config: str, work: Path, rerun: bool, legacy: bool = False) -> dict:
    """Vela's summary for ``tflite`` on ``config``: cycles and bytes per memory and kind."""
    out = work / f"{tflite.stem}__{config}{'__legacy' if legacy else ''}"
    found = sorted(out.glob("*_summary_*.csv"))
    if rerun or not found:
        out.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "ethosu.vela", str(tflite),
            "--accelerator-config", config, "--verbose-performance", "--output-dir", str(out),
            *(["--debug-force-legacy-core"] if legacy else []),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise SystemExit(f"vela failed on {tflite.name} ({config}): {result.stderr.strip()[-400:]}")
        (out / "vela.log").write_text(result.stdout)
        found = sorted(out.glob("*_summary_*.csv"))
    row = next(csv.DictReader(found[0].open()))
    memories = {}
    for prefix, name in MEMORIES.items():
        kinds = {kind: float(row[f"{prefix}_{key}_bytes"]) for key, kind in KINDS.items()}
        kinds["weights"] += float(row[f"{prefix}_weight_write_bytes"])  # weights DMA'd into SRAM
        if sum(kinds.values()):
            memories[name] = kinds
    return {
        "cycles": float(row["cycles_total"]),
        "npu_cycles": float(row["cycles_npu"]),
        "memories": memories,
        "system": row["system_config"],
        "mode": row["memory_mode"],
    }


def nnasim_workload(stem: str, tflite: Path):
    """The .tflite itself when nnasim's frontend reads TFLite, else the ONNX it came from."""
    try:
        return build_workload(load_lowered(tflite)), "tflite"
    except (NnasimError, ValueError, OSError):
        return build_workload(load_lowered(NETWORKS[stem])), "onnx"


def nnasim_summary(workload, config: str, width: str) -> dict:
    cost = evaluate(workload, load_profile(config), width)
    return {"cycles": cost.total.cycles, "memories": cost.memory_traffic(), "seconds": cost.seconds}


def _ratio(ours: float, theirs: float) -> float | None:
    return round(ours / theirs, 2) if theirs else None


def crosscheck(work: Path, rerun: bool, legacy: bool = False) -> tuple[list[dict], dict]:
    """One row per (network, width, config) and every result keyed for the ratio table."""
    rows, results = [], {}
    for tflite in sorted(TFLITE_DIR.glob("*.tflite")):
        stem, _, suffix = tflite.stem.rpartition("_")
        if stem not in NETWORKS or suffix not in WIDTHS:
            continue
        workload, source = nnasim_workload(stem, tflite)
        for config in CONFIGS:
            vela = vela_summary(tflite, config, work, rerun, legacy)
            ours = nnasim_summary(workload, config, WIDTHS[suffix])
            results[(stem, suffix, config)] = (vela, ours)
            row = {
                "network": stem,
                "width": suffix,
                "config": config,
                "nnasim from": source,
                "Vela Mcyc": round(vela["cycles"] / 1e6, 3),
                "cycles n/V": _ratio(ours["cycles"], vela["cycles"]),
            }
            for memory in sorted(set(vela["memories"]) | set(ours["memories"])):
                theirs = sum(vela["memories"].get(memory, {}).values())
                mine = sum(ours["memories"].get(memory, {}).values())
                row[f"{memory} MB (Vela)"] = round(theirs / 1e6, 2)
                row[f"{memory} n/V"] = _ratio(mine, theirs)
            rows.append(row)
    return rows, results


def ratio_rows(results: dict) -> list[dict]:
    """For each config pair: Vela's ratio (b/a) of cycles and each memory's bytes, and nnasim's."""
    rows = []
    for stem, width, _ in sorted({(s, w, "") for s, w, _ in results}):
        for a, b in PAIRS:
            if (stem, width, a) not in results or (stem, width, b) not in results:
                continue
            (va, na), (vb, nb) = results[(stem, width, a)], results[(stem, width, b)]
            vela_ratio = vb["cycles"] / va["cycles"]
            ours_ratio = nb["cycles"] / na["cycles"]
            row = {
                "network": stem,
                "width": width,
                "from -> to": f"{a} -> {b}",
                "cycles Vela": round(vela_ratio, 3),
                "cycles nnasim": round(ours_ratio, 3),
                "n/V": round(ours_ratio / vela_ratio, 2),
            }
            for memory in sorted(set(va["memories"]) & set(vb["memories"])):
                v = sum(vb["memories"][memory].values()) / sum(va["memories"][memory].values())
                mine_a = sum(na["memories"].get(memory, {}).values())
                mine_b = sum(nb["memories"].get(memory, {}).values())
                row[f"{memory} n/V"] = round(mine_b / mine_a / v, 2) if mine_a and v else None
            rows.append(row)
    return rows


def kind_rows(results: dict) -> list[dict]:
    """Per memory and kind (weights, fm read, fm write): MB by Vela and by nnasim."""
    rows = []
    for (stem, width, config), (vela, ours) in sorted(results.items()):
        for memory in sorted(set(vela["memories"]) | set(ours["memories"])):
            for kind in KINDS.values():
                theirs = vela["memories"].get(memory, {}).get(kind, 0.0)
                mine = ours["memories"].get(memory, {}).get(kind, 0.0)
                if theirs or mine:
                    rows.append(
                        {
                            "network": stem,
                            "width": width,
                            "config": config,
                            "memory": memory,
                            "kind": kind,
                            "Vela MB": round(theirs / 1e6, 3),
                            "nnasim MB": round(mine / 1e6, 3),
                            "n/V": _ratio(mine, theirs),
                        }
                    )
    return rows


def _summary(rows: list[dict], ratios: list[dict]) -> str:
    cyc = [r["cycles n/V"] for r in rows]
    mem = [v for r in rows for k, v in r.items() if k.endswith(" n/V") and v is not None]
    rat = [r["n/V"] for r in ratios]
    return (
        f"cycles within 15%: {sum(abs(c - 1) <= 0.15 for c in cyc)}/{len(cyc)} "
        f"(n/V {min(cyc):.2f}..{max(cyc):.2f}); per-memory bytes within 20%: "
        f"{sum(abs(m - 1) <= 0.2 for m in mem)}/{len(mem)} (n/V {min(mem):.2f}..{max(mem):.2f}); "
        f"cycle ratios between configs within 10%: {sum(abs(r - 1) <= 0.1 for r in rat)}/{len(rat)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "nnasim-vela")
    parser.add_argument("--rerun", action="store_true", help="run Vela again even if its results are cached")
    parser.add_argument("--layers", action="store_true", help="also print bytes per memory and kind")
    parser.add_argument("--legacy", action="store_true", help="compare with Vela's legacy Python core")
    parser.add_argument("--format", choices=("simple", "github"), default="simple")
    args = parser.parse_args()
    if not TFLITE_DIR.is_dir():
        print(f"skipped: {TFLITE_DIR} not found (the shared models folder)")
        return 0
    start = time.perf_counter()
    rows, results = crosscheck(args.work, args.rerun, args.legacy)
    ratios = ratio_rows(results)
    print(tabulate(rows, headers="keys", tablefmt=args.format))
    print("\nConfig-to-config ratios (b/a): nnasim's over Vela's\n")
    print(tabulate(ratios, headers="keys", tablefmt=args.format))
    if args.layers:
        print("\nBytes per memory and kind\n")
        print(tabulate(kind_rows(results), headers="keys", tablefmt=args.format))
    print(f"\n{_summary(rows, ratios)}. MB = 10^6 bytes. ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
