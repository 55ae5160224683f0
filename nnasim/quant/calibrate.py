"""Calibration: activation ranges of every computed tensor over a set of inputs.

Methods: ``minmax`` (the observed extremes), ``percentile`` (the 0.01 % and 99.99 % points of
the value histogram, two-sided) and ``mse`` (the clipping range, a shrunk copy of the observed
range, that minimises the expected squared quantization error at the target bit width and scheme).
The float graph runs node by node and frees each tensor after its last use, so calibrating large
inputs needs little more memory than one inference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from nnasim.errors import UsageError
from nnasim.ir import Graph
from nnasim.ir.execute import check_feeds, run_node
from nnasim.quant.params import activation_params

METHODS = ("minmax", "percentile", "mse")
HISTOGRAM_BINS = 2048
PERCENTILE = 99.99
MSE_CANDIDATES = np.linspace(0.2, 1.0, 33)

Range = tuple[float, float]


def float_tensors(graph: Graph, feeds: dict[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, fp32 value) for each graph input and computed tensor, in execution order."""
    values = check_feeds(graph, feeds)
    yield from values.items()
    last_use = {name: i for i, node in enumerate(graph.nodes) for name in node.inputs if name}
    for index, node in enumerate(graph.nodes):
        args = [values[n] if n in values else graph.const(n) for n in node.inputs if n]
        out = run_node(graph, node, args)
        values[node.outputs[0]] = out
        yield node.outputs[0], out
        for name in node.inputs:
            if last_use.get(name) == index and name not in graph.outputs:
                values.pop(name, None)


def calibrate(
    graph: Graph,
    feeds: Iterable[dict[str, np.ndarray]],
    method: str = "minmax",
    bits: int = 8,
    scheme: str = "pow2",
) -> dict[str, Range]:
    """Range of every non-constant tensor of ``graph`` over ``feeds`` by ``method``."""
    if method not in METHODS:
        raise UsageError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")
    feeds = list(feeds)
    if not feeds:
        raise UsageError("calibration needs at least one input")
    extremes = _minmax(graph, feeds)
    if method == "minmax":
        return extremes
    histograms = _histograms(graph, feeds, extremes)
    pick = _percentile_range if method == "percentile" else _mse_range
    return {
        name: pick(histograms[name], extremes[name], bits, scheme) if name in histograms else extremes[name]
        for name in extremes
    }


def _minmax(graph: Graph, feeds: list[dict[str, np.ndarray]]) -> dict[str, Range]:
    ranges: dict[str, Range] = {}
    for feed in tqdm(feeds, desc="calibrate: ranges", unit="input", disable=None, leave=False):
        for name, value in float_tensors(graph, feed):
            lo, hi = float(value.min(initial=0.0)), float(value.max(initial=0.0))
            old = ranges.get(name, (lo, hi))
            ranges[name] = (min(old[0], lo), max(old[1], hi))
    return ranges


def _histograms(graph, feeds, extremes) -> dict[str, np.ndarray]:
    histograms: dict[str, np.ndarray] = {}
    for feed in tqdm(feeds, desc="calibrate: histograms", unit="input", disable=None, leave=False):
        for name, value in float_tensors(graph, feed):
            lo, hi = extremes[name]
            if hi <= lo:
                continue
            counts, _ = np.histogram(value, bins=HISTOGRAM_BINS, range=(lo, hi))
            histograms[name] = histograms.get(name, 0) + counts
    return histograms


def _bin_centers(extreme: Range) -> np.ndarray:
    edges = np.linspace(extreme[0], extreme[1], HISTOGRAM_BINS + 1)
    return (edges[:-1] + edges[1:]) / 2


def _percentile_range(counts: np.ndarray, extreme: Range, bits: int, scheme: str) -> Range:
    cumulative = np.cumsum(counts) / counts.sum()
    edges = np.linspace(extreme[0], extreme[1], HISTOGRAM_BINS + 1)
    lo = edges[np.searchsorted(cumulative, 1 - PERCENTILE / 100)]
    hi = edges[min(np.searchsorted(cumulative, PERCENTILE / 100) + 1, HISTOGRAM_BINS)]
    return float(min(lo, 0.0)), float(max(hi, 0.0))


def _mse_range(counts: np.ndarray, extreme: Range, bits: int, scheme: str) -> Range:
    """The shrink factor of the observed range minimising the histogram-weighted squared error."""
    centers = _bin_centers(extreme)
    best, best_error = extreme, np.inf
    for factor in MSE_CANDIDATES:
        candidate = (extreme[0] * factor, extreme[1] * factor)
        params = activation_params(*candidate, bits, scheme)
        scale, zp = float(params.scale), int(params.zero_point)
        q = np.clip(np.rint(centers / scale) + zp, params.qmin, params.qmax)
        error = float(np.sum(counts * ((q - zp) * scale - centers) ** 2))
        if error < best_error:
            best, best_error = candidate, error
    return best
