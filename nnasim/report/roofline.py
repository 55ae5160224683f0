"""Per-layer roofline of a cost-model run: achieved MAC rate against arithmetic intensity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnasim.cost.model import COMPUTE, NetworkCost
from nnasim.cost.profile import HwProfile
from nnasim.io.files import atomic_file

DPI = 90


def roofline_plot(path: str | Path, costs: list[NetworkCost], hw: HwProfile, force: bool = False) -> Path:
    """One PNG: a point per pass (fused group) with MACs, at its MACs per byte (of the memories
    MB/inference counts) and its achieved GMAC/s, under the compute roof of each width and
    the feature-map memory's bandwidth roof."""
    figure = Figure(figsize=(8, 5.5))
    axes = figure.add_subplot()
    clock_hz = hw.clock_mhz * 1e6
    gbps = hw.memory_map()[hw.fm_memory].gbps  # the feature-map memory's roof
    for colour, cost in zip(("#1f77b4", "#d62728"), costs, strict=False):
        passes = _passes(cost)
        x = np.array([macs / max(nbytes, 1.0) for macs, nbytes, _, _ in passes])
        y = np.array([macs / (cycles / clock_hz) / 1e9 for macs, _, cycles, _ in passes])
        compute = np.array([bound == COMPUTE for *_, bound in passes])
        span = np.logspace(np.log10(max(x.min() / 3, 1e-3)), np.log10(x.max() * 3), 200)
        peak = hw.macs_per_clock(cost.bits) * clock_hz / 1e9
        axes.plot(
            span,
            np.minimum(peak, span * gbps),
            color=colour,
            linewidth=1.5,
            label=f"{cost.bits}-bit roof",
        )
        axes.scatter(
            x[compute],
            y[compute],
            s=16,
            color=colour,
            marker="o",
            label=f"{cost.bits}-bit pass, compute-bound",
        )
        axes.scatter(
            x[~compute],
            y[~compute],
            s=20,
            color=colour,
            marker="x",
            label=f"{cost.bits}-bit pass, memory-bound",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (MACs per byte of the counted memories)")
    axes.set_ylabel("achieved GMAC/s (10^9 MAC/s)")
    axes.set_title(f"{costs[0].model} on {hw.name}: roofline per pass ({gbps:g} GB/s {hw.fm_memory})")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    FigureCanvasAgg(figure)
    figure.tight_layout()
    with atomic_file(path, force) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    return Path(path)


def _passes(cost: NetworkCost) -> list[tuple[float, float, float, str]]:
    """(MACs, DRAM bytes, cycles, bound) of each fused group that does MACs."""
    groups: dict[int, list] = {}
    for layer in cost.layers:
        entry = groups.setdefault(layer.group, [0.0, 0.0, 0.0, layer.bound])
        entry[0] += layer.macs
        entry[1] += layer.dram_bytes
        entry[2] += layer.cycles
    return [tuple(entry) for entry in groups.values() if entry[0] > 0 and entry[2] > 0]
