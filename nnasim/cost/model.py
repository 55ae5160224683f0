"""Per-layer and per-network costs: MACs, DRAM bytes, cycles, bound; values that add.

``evaluate(workload, hw, bits)`` applies a profile to a workload (see ``workload``) along
a memory plan (see ``plan``). A group of fused layers runs as one pass whose time is
``max(compute, memory) + pass overhead``; each layer is given the share of its group's
cycles that its own compute or traffic takes, so layer costs add up to the network's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from nnasim.cost.plan import Group, MemoryPlan, buffered_weight_bytes, plan_memory
from nnasim.cost.profile import HwProfile
from nnasim.cost.workload import ALIAS, MAC, LayerWork, Workload
from nnasim.quant.widths import parse_width

COMPUTE = "compute"
MEMORY = "memory"


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer (or, summed, of many). Bytes are DRAM bytes; cycles are NPU clocks."""

    name: str
    op: str = ""
    group: int = -1
    macs: int = 0
    weight_bytes: float = 0.0
    act_read_bytes: float = 0.0
    act_write_bytes: float = 0.0
    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    cycles: float = 0.0
    bound: str = ""

    @property
    def dram_bytes(self) -> float:
        return self.weight_bytes + self.act_read_bytes + self.act_write_bytes

    def __add__(self, other: LayerCost) -> LayerCost:
        return LayerCost.total((self, other))

    @staticmethod
    def total(costs: Iterable[LayerCost]) -> LayerCost:
        """The sum of ``costs``: every number adds; name, op, group and bound do not."""
        sums = dict.fromkeys(_NUMBERS, 0)
        for cost in costs:
            for name in _NUMBERS:
                sums[name] += getattr(cost, name)
        return LayerCost(name="total", **sums)


_NUMBERS = tuple(f.name for f in fields(LayerCost) if f.name not in ("name", "op", "group", "bound"))


@dataclass(frozen=True)
class NetworkCost:
    """All layer costs of one network on one profile at one bit width, and their totals."""

    model: str
    hw: str
    bits: int
    clock_mhz: float
    peak_macs_per_clock: int
    layers: tuple[LayerCost, ...]
    total: LayerCost

    @property
    def seconds(self) -> float:
        return self.total.cycles / (self.clock_mhz * 1e6)

    @property
    def inferences_per_second(self) -> float:
        return 1.0 / self.seconds if self.seconds > 0 else math.inf

    @property
    def megabytes(self) -> float:
        """DRAM traffic per inference in MB (10^6 bytes)."""
        return self.total.dram_bytes / 1e6

    @property
    def utilization(self) -> float:
        """MACs done over MACs the array could have done in the inference's time."""
        return self.total.macs / (self.total.cycles * self.peak_macs_per_clock) if self.total.cycles else 0.0

    @property
    def bound(self) -> str:
        """The resource that took most of the time, over all groups."""
        by_bound = {COMPUTE: 0.0, MEMORY: 0.0}
        for layer in self.layers:
            if layer.bound:
                by_bound[layer.bound] += layer.cycles
        return max(by_bound, key=by_bound.get)


def evaluate(
    workload: Workload, hw: HwProfile, bits: int, layer_bits: dict[str, str] | None = None
) -> NetworkCost:
    """The cost of ``workload`` on ``hw`` with ``bits``-bit weights and activations.

    ``layer_bits`` (node name -> width: ``8``, ``8pc``, ``16``, ``16x8``...) costs a mixed-precision
    graph: each layer costs what it costs in the uniform network at its width, and the network
    the sum of its layers (see ``_mixed``).
    """
    if layer_bits:
        return _mixed(workload, hw, bits, layer_bits)
    plan = plan_memory(workload, hw, bits)
    dram_weights = _dram_weight_bytes(workload, hw, bits)
    costs: list[LayerCost] = []
    for gid, group in enumerate(plan.groups):
        costs.extend(_group_costs(workload, plan, gid, group, dram_weights, hw, bits))
    total = LayerCost.total(costs)
    return NetworkCost(
        model=workload.name,
        hw=hw.name,
        bits=bits,
        clock_mhz=hw.clock_mhz,
        peak_macs_per_clock=hw.macs_per_clock(bits),
        layers=tuple(costs),
        total=total,
    )


def _mixed(workload: Workload, hw: HwProfile, bits: int, layer_bits: dict[str, str]) -> NetworkCost:
    """Each layer's cost from the uniform evaluation at its activation width; a 16x8 layer fetches
    the 8-bit run's weight bytes, its memory time shrinking by the weight bytes it saves."""
    widths = [parse_width(layer_bits.get(layer.name, str(bits))) for layer in workload.layers]
    needed = {w.act_bits for w in widths} | {w.weight_bits for w in widths}
    uniform = {b: evaluate(workload, hw, b) for b in sorted(needed)}
    costs = []
    for index, width in enumerate(widths):
        cost = uniform[width.act_bits].layers[index]
        if width.weight_bits != width.act_bits:
            cost = _with_weight_bytes(cost, uniform[width.weight_bits].layers[index].weight_bytes, hw)
        costs.append(cost)
    base = uniform[bits] if bits in uniform else next(iter(uniform.values()))
    return replace(base, bits=bits, layers=tuple(costs), total=LayerCost.total(costs))


def _with_weight_bytes(cost: LayerCost, weight_bytes: float, hw: HwProfile) -> LayerCost:
    memory = cost.memory_cycles - (cost.weight_bytes - weight_bytes) / hw.weight_bytes_per_cycle
    before = max(cost.compute_cycles, cost.memory_cycles)
    cycles = cost.cycles * max(cost.compute_cycles, memory) / before if before else cost.cycles
    return replace(cost, weight_bytes=weight_bytes, memory_cycles=memory, cycles=cycles)


def _dram_weight_bytes(workload: Workload, hw: HwProfile, bits: int) -> list[float]:
    """Weight bytes each layer fetches from DRAM: raw, times a ratio, or entropy-coded."""
    raw = [float(buffered_weight_bytes(layer, hw, bits)) for layer in workload.layers]
    if hw.weight_compression == "none":
        return raw
    if hw.weight_compression == "ratio":
        return [r * hw.weight_compression_ratio[bits] for r in raw]
    entropy = workload.entropy_bits_per_weight(bits)
    return [
        r - layer.weight_elems * (bits - min(h, bits)) / 8
        for r, h, layer in zip(raw, entropy, workload.layers, strict=True)
    ]


def mac_cycles(layer: LayerWork, hw: HwProfile, bits: int) -> int:
    """Cycles on the MAC array: lanes a layer's channels do not fill are wasted.

    The array multiplies ``in_channels`` input channels by ``out_channels`` output channels
    at ``pixels`` output positions per clock, for one kernel tap at a time. A depthwise
    conv has one input channel per output; it puts kernel taps on the input lanes.
    """
    array = hw.mac_array[bits]
    kh, kw = layer.kernel
    if layer.depthwise:
        return (
            math.ceil(layer.out_channels / array.out_channels)
            * math.ceil(kh * kw / array.in_channels)
            * math.ceil(layer.pixels / array.pixels)
        )
    per_group_out = layer.out_channels // layer.groups
    return (
        layer.groups
        * math.ceil(layer.reduce_channels / array.in_channels)
        * math.ceil(per_group_out / array.out_channels)
        * math.ceil(layer.pixels / array.pixels)
        * kh
        * kw
    )


def _burst(nbytes: float, hw: HwProfile, transfers: int = 1) -> float:
    """Bytes moved when ``nbytes`` go in ``transfers`` pieces, each rounded up to whole bursts."""
    if nbytes <= 0:
        return 0.0
    per = nbytes / transfers
    return transfers * math.ceil(per / hw.dram_burst_bytes) * hw.dram_burst_bytes


def _group_costs(
    workload: Workload,
    plan: MemoryPlan,
    gid: int,
    group: Group,
    dram_weights: list[float],
    hw: HwProfile,
    bits: int,
) -> list[LayerCost]:
    act = bits // 8
    read_once: set[str] = set()
    parts = []
    for index in group.layers:
        layer = workload.layers[index]
        reads = 0.0
        for storage, elems in zip(layer.inputs, layer.input_elems, strict=True):
            if storage in group.produced or storage in plan.resident or storage in read_once:
                continue
            read_once.add(storage)
            rows = elems // layer.row_elems if layer.row_elems else 1
            pieces = rows * group.stripes if group.stripes > 1 else 1
            reads += plan.input_passes[index] * _burst(elems * act * group.halo_factor, hw, pieces)
        writes = 0.0
        if layer.kind != ALIAS and _leaves_group(layer, plan, gid, workload):
            writes = _burst(layer.output_elems * act, hw)
        weights = _burst(dram_weights[index], hw) if dram_weights[index] else 0.0
        if layer.kind == MAC:
            compute = float(mac_cycles(layer, hw, bits))
        elif layer.kind == ALIAS:
            compute = 0.0
        else:
            compute = layer.vector_ops / hw.eltwise_per_clock[bits]
        memory = (reads + writes) / hw.bytes_per_cycle + weights / hw.weight_bytes_per_cycle
        parts.append((layer, weights, reads, writes, compute, memory))
    mac_compute = sum(p[4] for p in parts if p[0].kind == MAC)
    vector_compute = sum(p[4] for p in parts if p[0].kind != MAC)
    compute = max(mac_compute, vector_compute)
    memory = sum(p[5] for p in parts)
    bound = COMPUTE if compute >= memory else MEMORY
    cycles = max(compute, memory) + hw.pass_overhead_cycles
    shares = [max(p[4], p[5]) for p in parts]
    total_share = sum(shares)
    return [
        LayerCost(
            name=layer.name,
            op=layer.op,
            group=gid,
            macs=layer.macs,
            weight_bytes=weights,
            act_read_bytes=reads,
            act_write_bytes=writes,
            compute_cycles=c,
            memory_cycles=m,
            cycles=cycles * share / total_share if total_share else cycles / len(parts),
            bound=bound,
        )
        for (layer, weights, reads, writes, c, m), share in zip(parts, shares, strict=True)
    ]


def _leaves_group(layer: LayerWork, plan: MemoryPlan, gid: int, workload: Workload) -> bool:
    """Whether a layer's output must be written to DRAM: read by a later group and not resident."""
    if layer.output in workload.graph_outputs:
        return True
    if layer.output in plan.resident:
        return False
    return any(plan.group_of[i] != gid for i in workload.consumers.get(layer.output, ()))
