"""The mixed-precision search: every point it reports is a measurement (rebuilt here, the same
SQNR and the cost model's MB), the greedy walk lowers one layer one notch per step, the fronts
are Pareto-optimal, and the chosen point is the cheapest within the SQNR target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import tinynet
from nnasim.analysis.mixed import search
from nnasim.cost import build_workload, evaluate, load_profile
from nnasim.engine.session import build_session
from nnasim.errors import UsageError
from nnasim.frontend import load_lowered
from nnasim.ir.execute import run_float
from nnasim.quant.widths import layer_widths, uniform_width, width_names

LADDER = ("16", "16x8", "8pc")


@pytest.fixture(scope="module")
def setup():
    graph = load_lowered(tinynet.build())
    feeds = [{"input": x[None]} for x in tinynet.calibration_input()[:3]]
    hw = load_profile("3nx")
    return graph, feeds, hw, search(graph, feeds, hw, scheme="affine", ladder=LADDER)


def _sqnr(graph, feeds, ranges, layer_bits):
    session = build_session(graph, 16, "affine", ranges=ranges, layer_bits=layer_bits)
    signal = noise = 0.0
    for feed in feeds:
        ref, out = run_float(graph, feed), session.run(feed)
        for name in graph.outputs:
            signal += float(np.sum(ref[name].astype(np.float64) ** 2))
            noise += float(np.sum((out[name].astype(np.float64) - ref[name]) ** 2))
    return 10 * math.log10(signal / noise)


def test_every_point_is_measured_and_costed_by_the_cost_model(setup):
    graph, feeds, hw, result = setup
    workload = build_workload(graph)
    for point in result.points[:: max(len(result.points) // 6, 1)]:
        assert _sqnr(graph, feeds, result.ranges, point.layer_bits) == point.sqnr_db, point.label
        expanded = width_names(layer_widths(graph, point.layer_bits, uniform_width(16, False)))
        cost = evaluate(workload, hw, 16, expanded)
        assert math.isclose(cost.megabytes, point.megabytes, rel_tol=1e-12)
        assert math.isclose(cost.inferences_per_second, point.inferences_per_second, rel_tol=1e-12)


def test_greedy_walk_lowers_one_layer_one_notch_per_step_down_to_the_narrowest(setup):
    _, _, _, result = setup
    walk = [result.uniform("16")] + [p for p in result.points if p.kind == "greedy"]
    for before, after in zip(walk, walk[1:], strict=False):
        changed = [n for n in before.layer_bits if before.layer_bits[n] != after.layer_bits[n]]
        assert len(changed) == 1
        name = changed[0]
        assert LADDER.index(after.layer_bits[name]) == LADDER.index(before.layer_bits[name]) + 1
        assert after.megabytes <= before.megabytes
    assert set(walk[-1].layer_bits.values()) == {"8pc"}
    sensitivity = [p for p in result.points if p.kind == "sensitivity"]
    assert len(sensitivity) == len(walk[0].layer_bits) * (len(LADDER) - 1)


def test_fronts_are_pareto_optimal_and_the_choice_is_the_cheapest_within_target(setup):
    _, _, _, result = setup
    for front, key, sign in (
        (result.front_mb, "megabytes", 1),
        (result.front_ips, "inferences_per_second", -1),
    ):
        for p in front:
            assert not any(
                q.sqnr_db >= p.sqnr_db and sign * getattr(q, key) < sign * getattr(p, key)
                for q in result.points
            )
        for q in result.points:
            assert any(
                p.sqnr_db >= q.sqnr_db and sign * getattr(p, key) <= sign * getattr(q, key) for p in front
            )
    widest = result.uniform("16")
    assert math.isclose(result.target_db, 0.9 * widest.sqnr_db)
    eligible = [p for p in result.points if p.sqnr_db >= result.target_db]
    assert result.chosen in eligible
    assert result.chosen.megabytes == min(p.megabytes for p in eligible)
    best = result.best_within(0.6)
    within = [p for p in result.points if p.megabytes <= 0.6 * widest.megabytes]
    assert best.megabytes <= 0.6 * widest.megabytes and best.sqnr_db == max(p.sqnr_db for p in within)


def test_bad_ladders_are_usage_errors(setup):
    graph, feeds, hw, _ = setup
    with pytest.raises(UsageError, match="unknown layer width '4'"):
        search(graph, feeds, hw, ladder=("16", "4"))
    with pytest.raises(UsageError, match="at least two different widths"):
        search(graph, feeds, hw, ladder=("16",))
