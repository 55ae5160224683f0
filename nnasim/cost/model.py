"""Per-layer and per-network costs: MACs, bytes per memory and kind, cycles, bound; values that add.

``evaluate(workload, hw, bits, layer_bits)`` applies a profile to a workload (see
``workload``) along a memory plan (see ``plan``). Every layer's traffic is booked to the
memory its operand lives in (``hwprofiles/README.md``, "Memories"): feature maps in
``feature_maps_in`` unless the plan keeps them on chip (the cache memory), weights in
``weights_in`` (or a weight buffer). A pass (a fused group, or one layer) takes

    cycles = max(compute, transfer) + min(compute, transfer) / blocks + pass overhead

where ``transfer`` is the slowest memory's bytes over its bandwidth (memories run in
parallel) and ``blocks`` is how many double-buffered blocks the pass runs in (one block's
transfer or compute cannot be hidden: start-up and drain). Profiles without a ``blocks``
section stream their passes row by row, which hides it (``blocks`` = infinity). Each layer is
given the share of its pass's cycles that its own compute or traffic takes, so layer costs
add up to the network's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from nnasim.cost.plan import Group, MemoryPlan, buffered_weight_bytes, plan_memory
from nnasim.cost.profile import HwProfile
from nnasim.cost.rules import LayerRule, rule_for
from nnasim.cost.workload import ALIAS, LayerWork, Workload
from nnasim.quant.widths import Width, parse_width

COMPUTE = "compute"
MEMORY = "memory"
WEIGHTS = "weights"
FM_READ = "fm read"
FM_WRITE = "fm write"
KINDS = (WEIGHTS, FM_READ, FM_WRITE)


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer (or, summed, of many); cycles are NPU clocks.

    ``weight_bytes``/``act_read_bytes``/``act_write_bytes`` count the memories that make up
    MB/inference (off-chip or system memories; not the NPU's cache); ``traffic`` has every
    memory's bytes by kind, ``transfer_cycles`` each memory's busy time.
    """

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
    width: str = ""
    traffic: Mapping[tuple[str, str], float] = field(default_factory=dict, compare=False)
    transfer_cycles: Mapping[str, float] = field(default_factory=dict, compare=False)

    @property
    def dram_bytes(self) -> float:
        return self.weight_bytes + self.act_read_bytes + self.act_write_bytes

    def __add__(self, other: LayerCost) -> LayerCost:
        return LayerCost.total((self, other))

    @staticmethod
    def total(costs: Iterable[LayerCost]) -> LayerCost:
        """The sum of ``costs``: every number and every memory's bytes add; labels do not."""
        sums = dict.fromkeys(_NUMBERS, 0)
        traffic: dict[tuple[str, str], float] = {}
        transfer: dict[str, float] = {}
        for cost in costs:
            for name in _NUMBERS:
                sums[name] += getattr(cost, name)
            for key, value in cost.traffic.items():
                traffic[key] = traffic.get(key, 0.0) + value
            for key, value in cost.transfer_cycles.items():
                transfer[key] = transfer.get(key, 0.0) + value
        return LayerCost(name="total", traffic=traffic, transfer_cycles=transfer, **sums)


_LABELS = ("name", "op", "group", "bound", "width", "traffic", "transfer_cycles")
_NUMBERS = tuple(f.name for f in fields(LayerCost) if f.name not in _LABELS)


@dataclass(frozen=True)
class NetworkCost:
    """All layer costs of one network on one profile at one width, and their totals."""

    model: str
    hw: str
    bits: int | str
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
        """Traffic per inference in MB (10^6 bytes) of the counted memories (all but the cache)."""
        return self.total.dram_bytes / 1e6

    @property
    def utilization(self) -> float:
        """MACs done over MACs the array could have done in the inference's time."""
        return self.total.macs / (self.total.cycles * self.peak_macs_per_clock) if self.total.cycles else 0.0

    @property
    def bound(self) -> str:
        """The resource that took most of the time, over all passes."""
        by_bound = {COMPUTE: 0.0, MEMORY: 0.0}
        for layer in self.layers:
            if layer.bound:
                by_bound[layer.bound] += layer.cycles
        return max(by_bound, key=by_bound.get)

    def memory_traffic(self) -> dict[str, dict[str, float]]:
        """Memory -> kind (weights, fm read, fm write) -> bytes per inference."""
        found: dict[str, dict[str, float]] = {}
        for (memory, kind), value in self.total.traffic.items():
            found.setdefault(memory, dict.fromkeys(KINDS, 0.0))[kind] += value
        return found


def evaluate(
    workload: Workload, hw: HwProfile, bits: int | str, layer_bits: Mapping[str, str] | None = None
) -> NetworkCost:
    """The cost of ``workload`` on ``hw`` at width ``bits`` (a ``quant.widths`` name: '8', '8pc',
    '16', '16pc', '16x8').

    ``layer_bits`` maps node names to their own width (mixed precision); layers not named run
    at ``bits``. The plan and every layer's bytes and cycles use each layer's width, so a
    mixed graph costs the sum of its layers' costs.
    """
    default = parse_width(bits)
    widths = tuple(
        parse_width(layer_bits[layer.name]) if layer_bits and layer.name in layer_bits else default
        for layer in workload.layers
    )
    plan = plan_memory(workload, hw, widths)
    weights = _weight_bytes(workload, hw, widths)
    costs: list[LayerCost] = []
    for gid, group in enumerate(plan.groups):
        costs.extend(_group_costs(workload, plan, gid, group, weights, hw, widths))
    return NetworkCost(
        model=workload.name,
        hw=hw.name,
        bits=bits if not layer_bits else "mixed",
        clock_mhz=hw.clock_mhz,
        peak_macs_per_clock=hw.macs_per_clock(default),
        layers=tuple(costs),
        total=LayerCost.total(costs),
    )


def _weight_bytes(workload: Workload, hw: HwProfile, widths: tuple[Width, ...]) -> list[float]:
    """Bytes of each layer's weights (and biases) as stored: raw, times a ratio, the entropy
    bound (``estimate``), or what ``nnasim.cost.encoding`` codes them to (``encode``)."""
    raw = [
        float(buffered_weight_bytes(layer, hw, w)) for layer, w in zip(workload.layers, widths, strict=True)
    ]
    if hw.weight_compression == "none":
        return raw
    if hw.weight_compression == "ratio":
        ratio = hw.weight_compression_ratio  # a '16x8' entry, else the weights' own bits (16x8: 8)
        return [r * ratio.get(w.name, ratio[w.weight_bits]) for r, w in zip(raw, widths, strict=True)]
    saved = []
    for layer, width in zip(workload.layers, widths, strict=True):
        if hw.weight_compression == "encode":
            encoded = workload.encoded_bits_per_weight(width.weight_bits, width.per_channel)[layer.index]
        else:
            encoded = workload.entropy_bits_per_weight(width.weight_bits)[layer.index]
        saved.append(layer.weight_elems * (width.weight_bits - min(encoded, width.weight_bits)) / 8)
    return [r - s for r, s in zip(raw, saved, strict=True)]


def mac_cycles(layer: LayerWork, hw: HwProfile, bits: int | str) -> float:
    """Compute cycles of a MAC-array layer on ``hw`` (see ``rules``)."""
    return rule_for(layer).compute_cycles(layer, hw, parse_width(bits))


def _burst(nbytes: float, burst: int, transfers: int = 1) -> float:
    """Bytes moved when ``nbytes`` go in ``transfers`` pieces, each rounded up to whole bursts."""
    if nbytes <= 0:
        return 0.0
    per = nbytes / transfers
    return transfers * math.ceil(per / burst) * burst


@dataclass
class _Part:
    """One layer's share of a pass while it is being costed."""

    layer: LayerWork
    rule: LayerRule
    width: Width
    compute: float
    blocks: float
    traffic: dict[tuple[str, str], float]
    timed: dict[str, float]  # memory -> bytes as the memory's time sees them (burst efficiency)


def _group_costs(
    workload: Workload,
    plan: MemoryPlan,
    gid: int,
    group: Group,
    weights: list[float],
    hw: HwProfile,
    widths: tuple[Width, ...],
) -> list[LayerCost]:
    memories = hw.memory_map()
    read_once: set[str] = set()
    parts = []
    free = plan.cache_free[gid] if plan.cache_free else math.inf
    loading = False
    for index in group.layers:
        layer = workload.layers[index]
        width = widths[index]
        rule = rule_for(layer)
        traffic: dict[tuple[str, str], float] = {}
        timed: dict[str, float] = {}
        schedule = rule.schedule(layer, hw, width, plan.stripes[index] if plan.stripes else None)
        for storage, elems in zip(layer.inputs, layer.input_elems, strict=True):
            memory = _home(storage, plan, group, hw)
            first = storage not in read_once
            read_once.add(storage)
            nbytes = rule.input_bytes(layer, schedule, storage, elems, workload, hw, width)
            if memory == hw.cache_memory and not hw.blocks:
                if storage in group.produced or not first:
                    continue  # streamed through the line buffers, or read already in this pass
            elif not hw.blocks:
                if not first:
                    continue
                rows = elems // layer.row_elems if layer.row_elems else 1
                pieces = rows * group.stripes if group.stripes > 1 else 1
                nbytes = plan.input_passes[index] * _burst(
                    nbytes * group.halo_factor, memories[memory].burst_bytes, pieces
                )
            run = rule.read_run(schedule, storage, workload, hw, width) if schedule is not None else None
            _move(traffic, timed, memory, FM_READ, nbytes, run, memories)
        constant = rule.constant_bytes(layer, hw)
        if constant:
            _move(traffic, timed, hw.weight_memory, FM_READ, constant, rule.constant_run(layer, hw), memories)
        if layer.kind != ALIAS:
            memory = _output_home(layer, plan, gid, workload, hw)
            if memory is not None:
                nbytes = rule.output_bytes(layer, workload, hw, width)
                if not hw.blocks:
                    nbytes = _burst(nbytes, memories[memory].burst_bytes)
                run = (
                    rule.write_run(schedule, layer.output, workload, hw, width)
                    if schedule is not None
                    else None
                )
                _move(traffic, timed, memory, FM_WRITE, nbytes, run, memories)
        if weights[index]:
            before = {key: v for key, v in traffic.items() if key[1] == WEIGHTS}
            # a pass's first weights load during the previous pass (the network's first pass:
            # all of its weights, before it starts); later layers' load while the pass runs,
            # double-buffered, into half of the cache left
            room = free / 2 if loading and gid > 0 else free
            free -= _book_weights(traffic, rule, schedule, weights[index], hw, room)
            loading = True
            for (memory, kind), v in traffic.items():
                if kind == WEIGHTS:
                    _time(timed, memory, v - before.get((memory, kind), 0.0))
        compute = rule.compute_cycles(layer, hw, width, schedule)
        blocks = rule.blocks(schedule) if hw.blocks else math.inf
        parts.append(_Part(layer, rule, width, compute, blocks, traffic, timed))
    return _pass_costs(parts, gid, hw)


def _move(
    traffic: dict, timed: dict, memory: str, kind: str, nbytes: float, run: int | None, memories: dict
) -> None:
    """Book a feature-map transfer: DMA runs shorter than the memory's burst move a whole burst
    each (blocked profiles), so the bus carries, and the memory's time sees, the rounded bytes;
    streaming profiles (``run`` None) round to bursts where they count the bytes."""
    if not nbytes:
        return
    burst = memories[memory].burst_bytes
    moved = nbytes * burst / min(burst, max(run, 1)) if run is not None else nbytes
    _book(traffic, memory, kind, moved)
    timed[memory] = timed.get(memory, 0.0) + moved


def _time(timed: dict, memory: str, nbytes: float) -> None:
    if nbytes:
        timed[memory] = timed.get(memory, 0.0) + nbytes


def _book(traffic: dict, memory: str, kind: str, nbytes: float) -> None:
    if nbytes:
        traffic[(memory, kind)] = traffic.get((memory, kind), 0.0) + nbytes


def _book_weights(
    traffic: dict, rule: LayerRule, schedule, nbytes: float, hw: HwProfile, free: float
) -> float:
    """Weights come from their memory once per spatial block, or once into the weight buffer
    (``weight_buffer_in``) and from there once per spatial block. A buffer in the cache must
    fit ``free``, the cache bytes the pass leaves it; returns the cache bytes it takes."""
    rereads = rule.weight_rereads(schedule) if hw.blocks else 1.0
    stored = _burst(nbytes, hw.memory_map()[hw.weight_memory].burst_bytes) if not hw.blocks else nbytes
    buffered = hw.weight_buffer_in is not None and hw.weight_buffer_in != hw.weight_memory
    in_cache = hw.weight_buffer_in == hw.cache_in
    if rereads > 1 and buffered and (not in_cache or stored <= free):
        _book(traffic, hw.weight_memory, WEIGHTS, stored)
        _book(traffic, hw.weight_buffer_in, WEIGHTS, stored * (1 + rereads))  # written once, read per block
        return stored if in_cache else 0.0
    _book(traffic, hw.weight_memory, WEIGHTS, stored * rereads)
    return 0.0


def _pass_costs(parts: list[_Part], gid: int, hw: HwProfile) -> list[LayerCost]:
    memories = hw.memory_map()
    transfer: dict[str, float] = {}
    per_layer_transfer = []
    for part in parts:
        busy: dict[str, float] = {}
        for memory, nbytes in part.timed.items():
            per_cycle = hw.bytes_per_cycle(memory)
            if math.isfinite(per_cycle):
                busy[memory] = busy.get(memory, 0.0) + nbytes / per_cycle
        for memory, value in busy.items():
            transfer[memory] = transfer.get(memory, 0.0) + value
        per_layer_transfer.append(busy)
    mac = sum(p.compute for p in parts if p.rule.engine == "mac")
    element = sum(p.compute for p in parts if p.rule.engine != "mac")
    compute = max(mac, element) if not hw.blocks else mac + element
    memory = max(transfer.values(), default=0.0)
    bound = COMPUTE if compute >= memory else MEMORY
    if hw.blocks:
        # a cascade runs its layers stripe by stripe in turn: each overlaps its own
        # transfers with its own blocks, not with another layer's
        shares = [
            _overlapped(p.compute, max(busy.values(), default=0.0), p.blocks)
            for p, busy in zip(parts, per_layer_transfer, strict=True)
        ]
        cycles = sum(shares) + hw.pass_overhead_cycles
    else:
        blocks = min((p.blocks for p in parts), default=math.inf)
        cycles = _overlapped(compute, memory, blocks) + hw.pass_overhead_cycles
        shares = [
            max(p.compute, max(busy.values(), default=0.0))
            for p, busy in zip(parts, per_layer_transfer, strict=True)
        ]
    total_share = sum(shares)
    return [
        LayerCost(
            name=part.layer.name,
            op=part.layer.op,
            group=gid,
            macs=part.layer.macs,
            weight_bytes=_counted(part.traffic, memories, WEIGHTS),
            act_read_bytes=_counted(part.traffic, memories, FM_READ),
            act_write_bytes=_counted(part.traffic, memories, FM_WRITE),
            compute_cycles=part.compute,
            memory_cycles=max(busy.values(), default=0.0),
            cycles=cycles * share / total_share if total_share else cycles / len(parts),
            bound=bound,
            width=part.width.name,
            traffic=part.traffic,
            transfer_cycles=busy,
        )
        for part, share, busy in zip(parts, shares, per_layer_transfer, strict=True)
    ]


def _overlapped(compute: float, memory: float, blocks: float) -> float:
    """Cycles of double-buffered blocks: the longer of compute and transfer, plus one block's
    worth of the shorter (start-up and drain); streaming (infinite blocks) exposes nothing."""
    exposed = min(compute, memory) / blocks if math.isfinite(blocks) and blocks > 0 else 0.0
    return max(compute, memory) + exposed


def _counted(traffic: dict, memories: dict, kind: str) -> float:
    return sum(v for (memory, k), v in traffic.items() if k == kind and memories[memory].counted)


def _home(storage: str, plan: MemoryPlan, group: Group, hw: HwProfile) -> str:
    """Where a layer reads a tensor from: on chip when this pass made it or the plan keeps it."""
    if storage in group.produced or storage in plan.resident:
        return hw.cache_memory
    return hw.fm_memory


def _output_home(
    layer: LayerWork, plan: MemoryPlan, gid: int, workload: Workload, hw: HwProfile
) -> str | None:
    """Where a layer's output is written: the feature-map memory when a later pass reads it
    (or it is a graph output), on chip when the plan keeps it; None when it only streams
    to the next layer of its own pass through line buffers (no ``blocks`` section)."""
    if layer.output in workload.graph_outputs:
        return hw.fm_memory
    if layer.output in plan.resident:
        return hw.cache_memory
    if any(plan.group_of[i] != gid for i in workload.consumers.get(layer.output, ())):
        return hw.fm_memory
    return hw.cache_memory if hw.blocks else None
