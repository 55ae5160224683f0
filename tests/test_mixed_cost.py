"""The cost model on a mixed-precision graph. The plan is made for the mixed graph and each layer
does its own work at its width: its bytes, compute and transfer time are those of the same layer
in the uniform network at that width. Its cycles are its share of its pass (a fused group), so
they depend on the widths of the layers it shares the pass with: a pass whose layers all have one
width costs what it costs in that uniform network, a pass of several widths lies between its
8-bit and 16-bit costs. The network costs the sum of its layers."""

from __future__ import annotations

import dataclasses
import math

import pytest

from models import tinynet
from nnasim.cost import build_workload, evaluate, load_profile
from nnasim.frontend import load_lowered
from nnasim.quant.widths import WIDTHS, layer_widths, uniform_width, weighted_layers, width_names

OWN_WORK = (
    "group",
    "macs",
    "weight_bytes",
    "act_read_bytes",
    "act_write_bytes",
    "compute_cycles",
    "memory_cycles",
)


@pytest.fixture(scope="module")
def graph():
    return load_lowered(tinynet.build())


def _assignment(graph, widths_by_layer):
    return width_names(layer_widths(graph, widths_by_layer, uniform_width(16, False)))


def _pass_cycles(cost, indices):
    return sum(cost.layers[i].cycles for i in indices)


def _at_most(value, bound):
    """``value <= bound`` up to the rounding of summing layer shares."""
    return value <= bound * (1 + 1e-12)


@pytest.mark.parametrize("hw_name", ["2nx", "3nx", "ethos-u55-256"])
def test_mixed_layers_do_their_own_work_at_their_widths_and_share_their_pass(graph, hw_name):
    hw, workload = load_profile(hw_name), build_workload(graph)
    uniform = {width: evaluate(workload, hw, width) for width in WIDTHS}
    single_width_passes = 0
    for widths in (["8", "16", "8pc", "16x8"], ["8", "8", "16x8", "16"]):
        layer_bits = _assignment(graph, dict(zip(weighted_layers(graph), widths, strict=True)))
        mixed = evaluate(workload, hw, 16, layer_bits)
        for index, layer in enumerate(workload.layers):
            cost, alone = mixed.layers[index], uniform[layer_bits[layer.name]].layers[index]
            for field in OWN_WORK:
                assert getattr(cost, field) == getattr(alone, field), (layer.name, field)
        for gid in {cost.group for cost in mixed.layers}:
            indices = [i for i, cost in enumerate(mixed.layers) if cost.group == gid]
            widths_in_pass = {layer_bits[workload.layers[i].name] for i in indices}
            cycles = _pass_cycles(mixed, indices)
            if len(widths_in_pass) == 1:
                single_width_passes += 1
                assert math.isclose(
                    cycles, _pass_cycles(uniform[widths_in_pass.pop()], indices), rel_tol=1e-12
                )
            else:
                assert _at_most(_pass_cycles(uniform["8"], indices), cycles)
                assert _at_most(cycles, _pass_cycles(uniform["16"], indices))
        for field in ("macs", "weight_bytes", "act_read_bytes", "act_write_bytes", "cycles"):
            total = sum(getattr(cost, field) for cost in mixed.layers)
            assert math.isclose(getattr(mixed.total, field), total, rel_tol=1e-12), field
        assert uniform["8"].megabytes < mixed.megabytes < uniform["16"].megabytes
    assert single_width_passes > 0


def test_16x8_fetches_8_bit_weights_with_biases_at_the_16_bit_accumulator(graph):
    """16x8 moves 16-bit activations and 8-bit per-channel weights; its biases are stored at
    the 16-bit accumulator width (``accumulator_bits``), so with an equal accumulator its weight
    bytes are the 8pc network's, and with 2nx's 48-bit one they are more."""
    hw, workload = load_profile("2nx"), build_workload(graph)
    everything = _assignment(graph, dict.fromkeys(weighted_layers(graph), "16x8"))
    cost = evaluate(workload, hw, 16, everything)
    assert cost.layers == evaluate(workload, hw, "16x8").layers
    eight, sixteen = evaluate(workload, hw, "8pc"), evaluate(workload, hw, 16)
    activations = sixteen.total.act_read_bytes + sixteen.total.act_write_bytes
    assert cost.total.act_read_bytes + cost.total.act_write_bytes == activations
    assert eight.total.weight_bytes < cost.total.weight_bytes < sixteen.total.weight_bytes
    same_accumulator = dataclasses.replace(
        hw, accumulator_bits=dict.fromkeys((8, 16), hw.accumulator_bits[8])
    )
    narrow = evaluate(workload, same_accumulator, 16, everything)
    assert narrow.total.weight_bytes == evaluate(workload, same_accumulator, "8pc").total.weight_bytes
    assert _at_most(cost.total.cycles, sixteen.total.cycles)


def test_compression_ratios_follow_the_weights_bits(graph):
    """On a ``ratio`` profile (3nx: 0.68 at 8 bits, 0.84 at 16) 16x8's 8-bit weights compress
    as 8-bit weights do: with equal accumulators its weight bytes are 8pc's, not 16's ratio."""
    hw = load_profile("3nx")
    hw = dataclasses.replace(hw, accumulator_bits=dict.fromkeys((8, 16), hw.accumulator_bits[8]))
    assert (
        hw.weight_compression == "ratio" and hw.weight_compression_ratio[8] != hw.weight_compression_ratio[16]
    )
    workload = build_workload(graph)
    assert (
        evaluate(workload, hw, "16x8").total.weight_bytes == evaluate(workload, hw, "8pc").total.weight_bytes
    )


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_uniform_layer_bits_cost_what_the_uniform_network_costs(graph, width):
    hw, workload = load_profile("3nx"), build_workload(graph)
    named = evaluate(workload, hw, 16, _assignment(graph, dict.fromkeys(weighted_layers(graph), width)))
    assert named.layers == evaluate(workload, hw, width).layers
