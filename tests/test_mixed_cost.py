"""The cost model on a mixed-precision graph: each layer costs what it costs in the uniform
network at its width, and the network costs the sum of its layers."""

from __future__ import annotations

import math

import pytest

from models import tinynet
from nnasim.cost import build_workload, evaluate, load_profile
from nnasim.frontend import load_lowered
from nnasim.quant.widths import layer_widths, uniform_width, weighted_layers, width_names


@pytest.fixture(scope="module")
def graph():
    return load_lowered(tinynet.build())


def _assignment(graph, widths_by_layer):
    return width_names(layer_widths(graph, widths_by_layer, uniform_width(16, False)))


@pytest.mark.parametrize("hw_name", ["2nx", "3nx"])
def test_mixed_cost_is_the_sum_of_its_layers_costs_at_their_widths(graph, hw_name):
    hw, workload = load_profile(hw_name), build_workload(graph)
    names = weighted_layers(graph)
    layer_bits = _assignment(graph, dict(zip(names, ["8", "16", "8pc", "16x8"], strict=True)))
    mixed = evaluate(workload, hw, 16, layer_bits)
    uniform = {b: evaluate(workload, hw, b) for b in (8, 16)}
    for index, layer in enumerate(workload.layers):
        width = layer_bits[layer.name]
        cost = mixed.layers[index]
        act = uniform[16 if width.startswith("16") else 8].layers[index]
        assert cost.act_read_bytes == act.act_read_bytes and cost.act_write_bytes == act.act_write_bytes
        weights = uniform[8 if width in ("8", "8pc", "16x8") else 16].layers[index]
        assert cost.weight_bytes == weights.weight_bytes
        if width != "16x8":
            assert cost == act
    for field in ("macs", "weight_bytes", "act_read_bytes", "act_write_bytes", "cycles"):
        total = sum(getattr(cost, field) for cost in mixed.layers)
        assert math.isclose(getattr(mixed.total, field), total, rel_tol=1e-12), field
    assert uniform[8].megabytes < mixed.megabytes < uniform[16].megabytes


def test_16x8_fetches_8_bit_weights_and_16_bit_activations(graph):
    hw, workload = load_profile("2nx"), build_workload(graph)
    everything = dict.fromkeys(weighted_layers(graph), "16x8")
    cost = evaluate(workload, hw, 16, _assignment(graph, everything))
    eight, sixteen = evaluate(workload, hw, 8), evaluate(workload, hw, 16)
    assert cost.total.weight_bytes == eight.total.weight_bytes
    activations = sixteen.total.act_read_bytes + sixteen.total.act_write_bytes
    assert cost.total.act_read_bytes + cost.total.act_write_bytes == activations
    assert cost.total.cycles <= sixteen.total.cycles


def test_uniform_layer_bits_cost_what_the_uniform_network_costs(graph):
    hw, workload = load_profile("3nx"), build_workload(graph)
    for bits in ("8", "16"):
        named = evaluate(workload, hw, 16, _assignment(graph, dict.fromkeys(weighted_layers(graph), bits)))
        assert named.total == evaluate(workload, hw, int(bits)).total
