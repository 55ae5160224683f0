"""Per-layer timeline of a cost-model run: why each layer takes the time it takes.

For every layer that does work, in execution order, one bar per resource: the compute engine's
cycles and each memory's transfer cycles (bytes over its bandwidth), with the layer's cycles
(its share of its pass) drawn over them as a black step. The tallest bar under the step is
what bounds the layer; a step above every bar is start-up, drain or pass overhead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nnasim.cost.model import NetworkCost
from nnasim.io.files import atomic_file

DPI = 90
_VIEWS = ("Reshape", "Identity", "Dropout", "Concat", "QuantizeLinear", "DequantizeLinear")


def timeline_plot(path: str | Path, costs: list[NetworkCost], force: bool = False) -> Path:
    """One PNG with a panel per width: compute and per-memory transfer cycles per layer."""
    figure = Figure(figsize=(11, 3.2 * len(costs) + 0.6))
    for row, cost in enumerate(costs):
        _panel(figure.add_subplot(len(costs), 1, row + 1), cost)
    FigureCanvasAgg(figure)
    figure.tight_layout()
    with atomic_file(path, force) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")
    return Path(path)


def layer_series(cost: NetworkCost) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """(layer names, resource -> cycles per layer, layer cycles) for the layers that do work."""
    layers = [c for c in cost.layers if c.op not in _VIEWS and (c.cycles or c.compute_cycles)]
    memories = sorted({m for c in layers for m in c.transfer_cycles})
    series = {"compute": np.array([c.compute_cycles for c in layers])}
    for memory in memories:
        series[memory] = np.array([c.transfer_cycles.get(memory, 0.0) for c in layers])
    return [c.name for c in layers], series, np.array([c.cycles for c in layers])


def _panel(axes, cost: NetworkCost) -> None:
    names, series, cycles = layer_series(cost)
    x = np.arange(len(names))
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        axes.bar(x + (i - (len(series) - 1) / 2) * width, values / 1e3, width, label=label)
    axes.step(x, cycles / 1e3, where="mid", color="black", linewidth=1.0, label="layer cycles")
    axes.set_ylabel("kcycles")
    axes.set_yscale("symlog", linthresh=1.0)
    axes.set_xlim(-0.5, len(names) - 0.5)
    step = max(1, len(names) // 40)
    axes.set_xticks(x[::step])
    axes.set_xticklabels([str(i) for i in x[::step]], fontsize=7)
    axes.set_xlabel("layer (execution order; `nnasim profile --per-layer` names them)")
    axes.set_title(f"{cost.model} on {cost.hw}, {cost.bits}: compute vs transfer per layer", fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8, ncol=len(series) + 1)
