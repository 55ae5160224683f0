"""The memory plan: which layers run fused, which tensors stay on chip, what is re-read.

Three decisions, each a small pure function of the workload, the profile and the bit width:

1. **Layer groups** (cascading): consecutive layers run row by row through on-chip line
   buffers when the group's weights fit the weight buffer and its line buffers fit the
   line buffer, so tensors made and used only inside the group never reach DRAM (Vela's
   cascades; PowerVR Series4 tensor tiling). A layer joins the open group when it reads a
   tensor the group produces; the profile bounds how many MAC layers one group chains.
2. **Residency**: a tensor passed between groups stays in on-chip memory (OCM) when it fits
   beside the other resident tensors for its whole lifetime (first fit, in production order).
3. **Re-reads**: a group whose line buffers do not fit is split into vertical stripes that
   re-read the kernel halo; a layer whose weights do not fit the weight buffer runs in
   output-channel chunks and re-reads its input from DRAM once per chunk.

Profiles with a ``blocks`` section plan groups as **cascades** instead (``_plan_cascades``):
a MAC-array layer joins when it is the only reader of the previous MAC-array layer's output, it could not run
whole in the cache (its input and output exceed ``ocm_kib``), and the rolling buffer between them (the producer's block rows
plus the consumer's input-block rows, full width) fits the cache (``ocm_kib``) beside the
cascade's other rolling buffers. ``fusion: none`` forbids cascading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nnasim.cost.profile import HwProfile, Width
from nnasim.cost.workload import ALIAS, MAC, LayerWork, Workload


@dataclass(frozen=True)
class Group:
    """Layers executed as one pass, and the pass's tiling decisions."""

    layers: tuple[int, ...]
    stripes: int
    halo_factor: float
    produced: frozenset[str]
    buffer_bytes: int = 0  # cascades: rolling buffers held in the cache while the group runs


@dataclass(frozen=True)
class MemoryPlan:
    groups: tuple[Group, ...]
    group_of: tuple[int, ...]
    resident: frozenset[str]
    input_passes: tuple[int, ...]
    cache_free: tuple[float, ...] = ()  # per group: cache bytes left for buffered weights
    stripes: tuple[int | None, ...] = ()  # per layer: most output rows per block (cascades)


def buffered_weight_bytes(layer: LayerWork, hw: HwProfile, width: Width) -> int:
    """Bytes of weights and biases a layer keeps in the weight buffer while it runs."""
    return (
        layer.weight_elems * width.weight_bits // 8
        + layer.bias_elems * hw.at(hw.accumulator_bits, width) // 8
    )


def line_buffer_bytes(layer: LayerWork, hw: HwProfile, width: Width) -> int:
    """Bytes of input rows a layer must hold on chip to produce one output row.

    A ``kernel height`` window slides down the input: ``kernel height - 1`` rows are held
    for reuse by the next output row, plus the profile's ``line_buffer_extra_rows`` (1: the
    newest row is buffered whole before the window moves, so a 1x1 conv holds one row of all
    its input channels; 0: it streams from DMA straight into the MAC array, so a 1x1 conv
    holds none). Elementwise ops work on data as it streams past.
    """
    if layer.kind != MAC:
        return 0
    return (layer.kernel[0] - 1 + hw.line_buffer_extra_rows) * layer.row_elems * width.act_bits // 8


def plan_memory(workload: Workload, hw: HwProfile, widths: tuple[Width, ...]) -> MemoryPlan:
    """The plan of ``workload`` on ``hw`` with ``widths[i]`` the width of layer ``i``."""
    stripes: list[int | None] = [None] * len(workload.layers)
    groups = (
        _plan_cascades(workload, hw, widths, stripes) if hw.blocks else _plan_groups(workload, hw, widths)
    )
    group_of = [0] * len(workload.layers)
    for gid, group in enumerate(groups):
        for index in group.layers:
            group_of[index] = gid
    resident, used = _plan_residency(workload, groups, group_of, hw, widths)
    chunks = tuple(_input_passes(layer, hw, w) for layer, w in zip(workload.layers, widths, strict=True))
    free = tuple(hw.ocm_kib * 1024 - u for u in used)
    return MemoryPlan(tuple(groups), tuple(group_of), resident, chunks, free, tuple(stripes))


def _plan_cascades(
    workload: Workload, hw: HwProfile, widths: tuple[Width, ...], stripes: list[int | None]
) -> list[Group]:
    """Blocked profiles: chains of layers through rolling buffers in the cache (see docstring).

    A join first tries the two layers' own blocks, then ever shorter stripes (blocks of at
    most ``CASCADE_STRIPES`` output rows for the consumer, and the rows they need for the
    producer), as Vela's scheduler starts cascades from minimal stripes; ``stripes`` records
    the limit each layer then runs under.
    """
    from nnasim.cost.rules import rule_for

    cache = hw.ocm_kib * 1024
    members: list[list[int]] = []
    buffers: list[int] = []
    last: LayerWork | None = None
    for layer in workload.layers:
        if layer.kind == ALIAS and members:
            members[-1].append(layer.index)
            continue
        joined = False
        if members and len(members[-1]) < hw.max_fused_layers:
            for stripe in (None, *CASCADE_STRIPES):
                need = _rolling_buffer(last, layer, workload, hw, widths, rule_for, stripes, stripe)
                if need is not None and buffers[-1] + need[0] <= cache:
                    members[-1].append(layer.index)
                    buffers[-1] += need[0]
                    stripes[last.index], stripes[layer.index] = need[1], stripe
                    joined = True
                    break
        if not joined:
            members.append([layer.index])
            buffers.append(0)
        last = layer
    return [
        Group(
            tuple(indices),
            1,
            1.0,
            frozenset(workload.layers[i].output for i in indices if workload.layers[i].kind != ALIAS),
            size,
        )
        for indices, size in zip(members, buffers, strict=True)
    ]


CASCADE_STRIPES = (16, 8, 4, 2)


def _rolling_buffer(
    producer, consumer, workload: Workload, hw: HwProfile, widths, rule_for, stripes, stripe
) -> tuple[int, int | None] | None:
    """(cache bytes, producer's stripe) of the rolling buffer that would carry ``producer``'s
    output to ``consumer`` with the consumer's blocks at most ``stripe`` rows high, or None
    when the two cannot cascade."""
    if hw.fusion == "none" or producer is None or consumer.kind != MAC or producer.kind != MAC:
        return None
    link = producer.output
    if consumer.inputs[0] != link or workload.consumers.get(link, ()) != (consumer.index,):
        return None
    if link in workload.graph_outputs or any(s == link for s in consumer.inputs[1:]):
        return None
    width = widths[producer.index]
    if _whole_bytes(consumer, hw, widths[consumer.index]) <= hw.ocm_kib * 1024:
        return None  # the consumer runs whole in the cache: no need to cascade into it
    used = rule_for(consumer).schedule(consumer, hw, widths[consumer.index], stripe)
    if used is None:
        return None
    h, w, c = producer.out_shape
    rows_in = min(used.ifm_block[0], h)
    limit = stripes[producer.index]
    made_stripe = rows_in if stripe is not None else limit
    if limit is not None and made_stripe is not None:
        made_stripe = min(made_stripe, limit)
    made = rule_for(producer).schedule(producer, hw, width, made_stripe)
    if made is None:
        return None
    rows = -(-(min(made.ofm_block[0], h) + rows_in) // rows_in) * rows_in
    granule = hw.blocks["fm_depth_granule"]
    return rows * w * (-(-c // granule) * granule) * width.act_bytes, made_stripe


def _whole_bytes(layer: LayerWork, hw: HwProfile, width: Width) -> int:
    """Cache bytes a layer needs to run uncascaded: its whole input and output feature maps,
    channels rounded up to the storage brick."""
    granule = hw.blocks["fm_depth_granule"]
    shapes = (layer.in_shape, layer.out_shape)
    return sum(h * w * (-(-c // granule) * granule) for h, w, c in shapes) * width.act_bytes


def _input_passes(layer: LayerWork, hw: HwProfile, width: Width) -> int:
    """How often a layer reads its DRAM input: once per weight chunk when its weights do not
    fit the weight buffer and its input does not fit in OCM to be reused across chunks
    (streaming profiles; ``blocks`` profiles count re-reads per output block instead)."""
    if hw.blocks:
        return 1
    chunks = math.ceil(buffered_weight_bytes(layer, hw, width) / (hw.weight_buffer_kib * 1024))
    if chunks <= 1 or sum(layer.input_elems) * width.act_bytes <= hw.ocm_kib * 1024:
        return 1
    return chunks


def _plan_groups(workload: Workload, hw: HwProfile, widths: tuple[Width, ...]) -> list[Group]:
    """Greedy, in execution order: each layer joins the open group or opens a new one."""
    members: list[list[int]] = []
    open_group = _OpenGroup()
    for layer in workload.layers:
        width = widths[layer.index]
        if not (members and _joins(layer, open_group, hw, width)):
            members.append([])
            open_group = _OpenGroup()
        members[-1].append(layer.index)
        open_group.add(layer, hw, width)
    return [_tiled_group(workload, indices, hw, widths) for indices in members]


@dataclass
class _OpenGroup:
    """What the group being built holds: the tensors it made and its buffer use so far."""

    produced: set[str] = field(default_factory=set)
    weight_bytes: int = 0
    line_bytes: int = 0
    mac_layers: int = 0

    def add(self, layer: LayerWork, hw: HwProfile, width: Width) -> None:
        if layer.kind != ALIAS:
            self.produced.add(layer.output)
        self.weight_bytes += buffered_weight_bytes(layer, hw, width)
        self.line_bytes += line_buffer_bytes(layer, hw, width)
        self.mac_layers += layer.kind == MAC


def _joins(layer: LayerWork, group: _OpenGroup, hw: HwProfile, width: Width) -> bool:
    """Whether ``layer`` can run in the open group, streaming a tensor the group produces.

    ``fusion: elementwise`` lets only element-engine layers join (a conv with its activation,
    residual add and the like); ``fusion: layers`` also chains up to ``max_fused_layers`` MAC
    layers. Whatever joins must fit its weights and line buffers beside the group's.
    """
    if layer.kind == ALIAS:
        return True
    if hw.fusion == "none" or not any(s in group.produced for s in layer.inputs):
        return False
    if layer.kind == MAC and (hw.fusion != "layers" or group.mac_layers >= hw.max_fused_layers):
        return False
    need_w = buffered_weight_bytes(layer, hw, width)
    need_l = line_buffer_bytes(layer, hw, width)
    fits_weights = need_w == 0 or group.weight_bytes + need_w <= hw.weight_buffer_kib * 1024
    fits_lines = need_l == 0 or group.line_bytes + need_l <= hw.line_buffer_kib * 1024
    return fits_weights and fits_lines


def _tiled_group(workload: Workload, indices: list[int], hw: HwProfile, widths: tuple[Width, ...]) -> Group:
    """A group with its stripe count and the halo re-read factor of its DRAM inputs."""
    layers = [workload.layers[i] for i in indices]
    need = sum(line_buffer_bytes(layer, hw, widths[layer.index]) for layer in layers)
    stripes = max(1, math.ceil(need / (hw.line_buffer_kib * 1024)))
    halo_cols = sum(layer.kernel[1] - layer.stride[1] for layer in layers if layer.kind == MAC)
    width = layers[0].in_width
    halo = 1.0 + (stripes - 1) * max(halo_cols, 0) / width if width > 1 else 1.0
    return Group(
        tuple(indices), stripes, halo, frozenset(layer.output for layer in layers if layer.kind != ALIAS)
    )


def _plan_residency(
    workload: Workload, groups: list[Group], group_of: list[int], hw: HwProfile, widths: tuple[Width, ...]
) -> tuple[frozenset[str], list[float]]:
    """Tensors passed between groups that stay in OCM for their whole lifetime (first fit),
    and the OCM bytes in use during each group (rolling buffers and resident tensors)."""
    lifetime: dict[str, list[int]] = {}
    act_bytes: dict[str, int] = {}
    for layer in workload.layers:
        gid = group_of[layer.index]
        if layer.kind != ALIAS:
            lifetime.setdefault(layer.output, [gid, gid])
            act_bytes.setdefault(layer.output, widths[layer.index].act_bytes)
        for storage in layer.inputs:
            if storage in lifetime:
                lifetime[storage][1] = max(lifetime[storage][1], gid)
    capacity = hw.ocm_kib * 1024
    used = [float(group.buffer_bytes) for group in groups]
    resident = set()
    for storage, (first, last) in lifetime.items():
        if last == first or storage in workload.graph_outputs:
            continue
        size = workload.storage_elems[storage] * act_bytes[storage]
        if all(used[g] + size <= capacity for g in range(first, last + 1)):
            resident.add(storage)
            for g in range(first, last + 1):
                used[g] += size
    return frozenset(resident), used
