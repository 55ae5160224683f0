"""Per-layer roofline of a cost-model run: achieved MAC rate against arithmetic intensity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnasim.cost.model import COMPUTE, NetworkCost
from nnasim.cost.profile import HwProfile
from nnasim.report.files import atomic_file

DPI = 90


def roofline_plot(path: str | Path, costs: list[NetworkCost], hw: HwProfile, force: bool = False) -> Path:
    """One PNG: a point per MAC layer (x: MACs per DRAM byte, y: GMAC/s), roofs per bit width."""
    figure = Figure(figsize=(8, 5.5))
    axes = figure.add_subplot()
    clock_hz = hw.clock_mhz * 1e6
    intensity_span = np.logspace(-2, 4, 200)
    for colour, cost in zip(("#1f77b4", "#d62728"), costs, strict=False):
        peak = hw.macs_per_clock(cost.bits) * clock_hz / 1e9
        roof = np.minimum(peak, intensity_span * hw.dram_gbps)
        axes.plot(intensity_span, roof, color=colour, linewidth=1.5, label=f"{cost.bits}-bit roof")
        layers = [c for c in cost.layers if c.macs > 0 and c.cycles > 0]
        x = np.array([c.macs / max(c.dram_bytes, 1.0) for c in layers])
        y = np.array([c.macs / (c.cycles / clock_hz) / 1e9 for c in layers])
        marker = np.array([c.bound == COMPUTE for c in layers])
        axes.scatter(
            x[marker], y[marker], s=14, color=colour, marker="o", label=f"{cost.bits}-bit, compute-bound"
        )
        axes.scatter(
            x[~marker], y[~marker], s=14, color=colour, marker="x", label=f"{cost.bits}-bit, memory-bound"
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (MACs per DRAM byte)")
    axes.set_ylabel("achieved GMAC/s (10^9 MAC/s)")
    axes.set_title(f"{costs[0].model} on {hw.name}: per-layer roofline ({hw.dram_gbps:g} GB/s DRAM)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    FigureCanvasAgg(figure)
    figure.tight_layout()
    with atomic_file(path, force) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    return Path(path)
