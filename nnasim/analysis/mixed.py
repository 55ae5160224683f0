"""Mixed-precision search: which layers need 16 bits (or per-channel weights), measured on data.

The search starts with every weighted layer at the widest width of the ladder (default
``16, 16x8, 8pc``) and walks down to the narrowest. First it measures each layer's
*sensitivity*: the output SQNR with that one layer lowered to each narrower width, the rest
wide. Then, greedily, it lowers one layer one notch at a time, always the move whose measured
sensitivity costs the fewest dB per megabyte of DRAM traffic it saves, and measures the whole
network again after every move. Every point is a measurement (the integer engine on the data
against fp32), none an estimate; the Pareto fronts of SQNR against MB/inference and against
inferences/s are drawn over all of them. Costs come from ``cost.evaluate(..., layer_bits)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from nnasim.cost import HwProfile, build_workload, evaluate
from nnasim.engine.session import build_session
from nnasim.errors import UsageError
from nnasim.ir import Graph
from nnasim.ir.execute import run_float
from nnasim.quant.calibrate import calibrate
from nnasim.quant.widths import layer_widths, parse_width, uniform_width, weighted_layers, width_names
from nnasim.report.document import Section, image_link, md_table
from nnasim.report.mixed_plot import plot_mixed_front

DEFAULT_LADDER = ("16", "16x8", "8pc")
DEFAULT_SQNR_FRACTION = 0.9
TRAFFIC_FRACTION = 0.6  # the report also names the best point within this share of the widest traffic

Feeds = list[dict[str, np.ndarray]]


@dataclass(frozen=True)
class Point:
    """One measured assignment: widths of the weighted layers, accuracy and cost."""

    label: str
    layer_bits: dict[str, str]
    sqnr_db: float
    megabytes: float
    inferences_per_second: float
    kind: str  # uniform | sensitivity | greedy

    def as_row(self) -> dict[str, Any]:
        counts = {w: list(self.layer_bits.values()).count(w) for w in sorted(set(self.layer_bits.values()))}
        return {
            "point": self.label,
            "SQNR dB": self.sqnr_db,
            "MB/inference": self.megabytes,
            "inferences/s": self.inferences_per_second,
            "layers per width": ", ".join(f"{w}: {n}" for w, n in counts.items()),
        }


@dataclass
class MixedResult:
    points: list[Point]
    ladder: tuple[str, ...]
    sensitivity: dict[str, dict[str, float]]  # layer -> width -> dB lost against the all-widest network
    chosen: Point
    target_db: float
    ranges: dict[str, tuple[float, float]] = field(repr=False, default_factory=dict)
    front_mb: list[Point] = field(default_factory=list)
    front_ips: list[Point] = field(default_factory=list)

    def uniform(self, width: str) -> Point:
        return next(p for p in self.points if p.kind == "uniform" and p.label == f"all {width}")

    def best_within(self, traffic_fraction: float) -> Point | None:
        """The most accurate point with at most ``traffic_fraction`` of the widest network's MB."""
        budget = self.uniform(self.ladder[0]).megabytes * traffic_fraction
        within = [p for p in self.points if p.megabytes <= budget]
        return max(within, key=lambda p: p.sqnr_db) if within else None


class Measurer:
    """Runs an assignment through the integer engine on the data and prices it on the profile."""

    def __init__(
        self, graph: Graph, feeds: Feeds, calib: Feeds, hw: HwProfile, scheme: str, rule: str | None
    ):
        self.graph, self.feeds, self.hw, self.scheme, self.rule = graph, feeds, hw, scheme, rule
        self.ranges = calibrate(graph, calib)
        self.references = [run_float(graph, feed) for feed in feeds]
        self.workload = build_workload(graph)
        self._costs: dict[tuple[tuple[str, str], ...], tuple[float, float]] = {}

    def expand(self, layer_bits: dict[str, str]) -> dict[str, str]:
        """Widths of every node (non-weighted ones follow their producer, see ``quant.widths``)."""
        return width_names(layer_widths(self.graph, layer_bits, uniform_width(16, False)))

    def cost(self, layer_bits: dict[str, str]) -> tuple[float, float]:
        """(MB/inference, inferences/s) of the mixed graph, planned and costed by the cost model
        with every layer at its width (remembered: the greedy walk asks for each candidate)."""
        expanded = self.expand(layer_bits)
        key = tuple(expanded.items())
        if key not in self._costs:
            cost = evaluate(self.workload, self.hw, 16, expanded)
            self._costs[key] = (cost.megabytes, cost.inferences_per_second)
        return self._costs[key]

    def sqnr(self, layer_bits: dict[str, str]) -> float:
        """Output SQNR (dB) against fp32 over every output of every sample."""
        session = build_session(
            self.graph, 16, self.scheme, requant=self.rule, ranges=self.ranges, layer_bits=layer_bits
        )
        signal = noise = 0.0
        for feed, reference in zip(self.feeds, self.references, strict=True):
            outputs = session.run(feed)
            for name, ref in reference.items():
                ref64 = ref.astype(np.float64)
                signal += float(np.sum(ref64**2))
                noise += float(np.sum((outputs[name].astype(np.float64) - ref64) ** 2))
        return 10 * math.log10(signal / noise) if noise > 0 else math.inf

    def point(self, label: str, layer_bits: dict[str, str], kind: str) -> Point:
        megabytes, ips = self.cost(layer_bits)
        return Point(label, dict(layer_bits), self.sqnr(layer_bits), megabytes, ips, kind)


def quantized_graph(graph: Graph, result: MixedResult, point: Point, scheme: str, rule: str | None) -> Graph:
    """The quantized graph of a measured assignment (what ``quant.export_qdq`` writes)."""
    session = build_session(
        graph, 16, scheme, requant=rule, ranges=result.ranges, layer_bits=point.layer_bits
    )
    return session.graph


def check_ladder(ladder: tuple[str, ...]) -> tuple[str, ...]:
    for width in ladder:
        parse_width(width)
    if len(ladder) < 2 or len(set(ladder)) != len(ladder):
        raise UsageError(f"--widths {','.join(ladder)}: give at least two different widths, widest first")
    return tuple(ladder)


def search(
    graph: Graph,
    feeds: Feeds,
    hw: HwProfile,
    calib: Feeds | None = None,
    scheme: str = "pow2",
    rule: str | None = None,
    ladder: tuple[str, ...] = DEFAULT_LADDER,
    sqnr_fraction: float = DEFAULT_SQNR_FRACTION,
) -> MixedResult:
    """Measure uniform, single-layer and greedy assignments; pick the cheapest one within
    ``sqnr_fraction`` of the all-widest network's SQNR (in dB)."""
    ladder = check_ladder(ladder)
    layers = weighted_layers(graph)
    if not layers:
        raise UsageError(f"{graph.name}: no Conv/Gemm/MatMul layers whose width could be chosen")
    measure = Measurer(graph, feeds, calib or feeds, hw, scheme, rule)
    steps = len(ladder) + 2 * len(layers) * (len(ladder) - 1)
    with tqdm(total=steps, desc="mixed search", unit="run", disable=None) as bar:
        points = []
        for width in ladder:
            points.append(measure.point(f"all {width}", dict.fromkeys(layers, width), "uniform"))
            bar.update()
        widest = points[0]
        sensitivity = _sensitivity(measure, layers, ladder, widest, points, bar)
        points += _greedy(measure, layers, ladder, sensitivity, bar)
    target = widest.sqnr_db * sqnr_fraction
    front_mb = pareto(points, "megabytes", minimise=True)
    front_ips = pareto(points, "inferences_per_second", minimise=False)
    eligible = [p for p in points if p.sqnr_db >= target] or [widest]
    chosen = min(eligible, key=lambda p: (p.megabytes, -p.sqnr_db))
    return MixedResult(points, ladder, sensitivity, chosen, target, measure.ranges, front_mb, front_ips)


def _sensitivity(measure, layers, ladder, widest, points, bar) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for name in layers:
        table[name] = {ladder[0]: 0.0}
        for width in ladder[1:]:
            probe = measure.point(f"{name} at {width}", {**widest.layer_bits, name: width}, "sensitivity")
            points.append(probe)
            table[name][width] = widest.sqnr_db - probe.sqnr_db
            bar.update()
    return table


def _greedy(measure, layers, ladder, sensitivity, bar) -> list[Point]:
    """Lower one layer one notch per step: the fewest measured-sensitivity dB per MB saved."""
    current = dict.fromkeys(layers, ladder[0])
    megabytes, _ = measure.cost(current)
    walk = []
    for step in range(1, len(layers) * (len(ladder) - 1) + 1):
        best = None
        for name in layers:
            position = ladder.index(current[name])
            if position == len(ladder) - 1:
                continue
            lower = ladder[position + 1]
            candidate = {**current, name: lower}
            saved = megabytes - measure.cost(candidate)[0]
            lost = max(sensitivity[name][lower] - sensitivity[name][current[name]], 0.0)
            score = (lost + 1e-6) / max(saved, 1e-9)
            if best is None or score < best[0]:
                best = (score, name, lower, candidate)
        _, name, lower, current = best
        megabytes, _ = measure.cost(current)
        walk.append(measure.point(f"step {step}: {name} to {lower}", current, "greedy"))
        bar.update()
    return walk


def pareto(points: list[Point], cost: str, minimise: bool) -> list[Point]:
    """Points no other point beats on both SQNR and ``cost``, ordered by cost."""
    sign = 1 if minimise else -1
    ordered = sorted(points, key=lambda p: (sign * getattr(p, cost), -p.sqnr_db))
    front, best = [], -math.inf
    for point in ordered:
        if point.sqnr_db > best:
            front.append(point)
            best = point.sqnr_db
    return front


# ---------------------------------------------------------------------------------------------
# Report


def _plain_point(point: Point) -> dict[str, Any]:
    return {
        "label": point.label,
        "kind": point.kind,
        "sqnr_db": point.sqnr_db,
        "megabytes": point.megabytes,
        "inferences_per_second": point.inferences_per_second,
        "layer_bits": point.layer_bits,
    }


def report_sections(result: MixedResult, title: str) -> list[Section]:
    """The front (table, JSON, figure), the chosen assignment and the layers' sensitivities."""
    points = [_plain_point(p) for p in result.points]
    fronts = {
        "megabytes": [_plain_point(p) for p in result.front_mb],
        "inferences_per_second": [_plain_point(p) for p in result.front_ips],
    }
    chosen = _plain_point(result.chosen)
    widest = result.uniform(result.ladder[0])
    traffic = result.chosen.megabytes / widest.megabytes
    summary = (
        f"Chosen: **{result.chosen.label}**, {result.chosen.sqnr_db:.2f} dB "
        f"({result.chosen.sqnr_db / widest.sqnr_db:.0%} of all-{result.ladder[0]}'s {widest.sqnr_db:.2f} dB; "
        f"target {result.target_db:.2f} dB), {result.chosen.megabytes:.3f} MB/inference "
        f"({traffic:.0%} of all-{result.ladder[0]}'s {widest.megabytes:.3f} MB), "
        f"{result.chosen.inferences_per_second:.0f} inferences/s.\n\n"
        f"{len(result.points)} assignments measured on the data.\n\n"
    )
    best = result.best_within(TRAFFIC_FRACTION)
    if best is not None:
        summary += (
            f"Most accurate point within {TRAFFIC_FRACTION:.0%} of all-{result.ladder[0]}'s traffic: "
            f"**{best.label}**, {best.sqnr_db:.2f} dB ({best.sqnr_db / widest.sqnr_db:.0%} of its SQNR), "
            f"{best.megabytes:.3f} MB/inference.\n\n"
        )
    front = Section(
        "front",
        "Pareto front: SQNR against MB/inference",
        {
            "points": points,
            "front_megabytes": fronts["megabytes"],
            "front_ips": fronts["inferences_per_second"],
        },
        summary
        + md_table([p.as_row() for p in result.front_mb], floatfmt=".4g")
        + "\n\n"
        + image_link("mixed_front.png", "SQNR against MB/inference and inferences/s")
        + "\n",
        {
            "mixed_front.png": lambda path: plot_mixed_front(
                path, points, fronts, chosen, title, result.target_db, TRAFFIC_FRACTION * widest.megabytes
            )
        },
    )
    chosen_section = Section(
        "chosen",
        "Chosen assignment",
        chosen,
        md_table([{"layer": name, "width": width} for name, width in result.chosen.layer_bits.items()])
        + "\n",
    )
    ranked = sorted(result.sensitivity, key=lambda n: -max(result.sensitivity[n].values()))
    sensitivity = Section(
        "sensitivity",
        "Layer sensitivity (dB lost with only that layer narrower)",
        result.sensitivity,
        md_table(
            [
                {"layer": n, **{f"{w} dB lost": result.sensitivity[n][w] for w in result.ladder[1:]}}
                for n in ranked
            ]
        )
        + "\n",
    )
    return [front, chosen_section, sensitivity]
