"""The memory plan: which layers run fused, which tensors stay on chip, what is re-read.

Three decisions, each a small pure function of the workload, the profile and the bit width:

1. **Layer groups** (cascading): consecutive layers run row by row through on-chip line
   buffers when the group's weights fit the weight buffer and its line buffers fit the
   line buffer, so tensors made and used only inside the group never reach DRAM (Vela's
   cascades; PowerVR Series4 tensor tiling). A layer joins the open group when it reads a
   tensor the group produces; the profile bounds how many MAC layers one group chains.
2. **Residency**: a tensor passed between groups stays in on-chip memory (OCM) for its whole
   lifetime when it fits beside every other candidate; the rest compete, those that save
   the most traffic per byte and pass of OCM first (``_plan_residency``).
3. **Re-reads**: a group whose line buffers do not fit is split into vertical stripes that
   re-read the kernel halo; a layer whose weights do not fit the weight buffer runs in
   output-channel chunks and re-reads its input from DRAM once per chunk.

Profiles with a ``blocks`` section plan groups as **cascades** instead (``_plan_cascades``):
a MAC-array layer joins when it is the only reader of the previous MAC-array layer's output,
it could not run whole in the cache (its input and output exceed ``ocm_kib``), and the
cascade still fits the cache with one-row stripes; it then runs the tallest stripes that fit
(two input stripes per link, plus the weights). ``fusion: none`` forbids cascading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nnasim.cost.blocks import round_up
from nnasim.cost.profile import HwProfile
from nnasim.cost.workload import ALIAS, MAC, LayerWork, Workload
from nnasim.quant.widths import Width


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
    """Blocked profiles: chains of MAC-array layers through rolling buffers in the cache.

    Each link holds two input stripes of its consumer (double-buffered: one filled while
    the other is read). A layer joins the open cascade (``_joins_cascade``) when the
    cascade, its weights included, still fits the cache with one-row stripes. The
    cascade then runs the tallest stripes that fit (``_tallest_stripe``), as Vela's
    scheduler sizes them; ``stripes`` records each layer's output rows per stripe, the
    most rows its blocks may have.
    """
    cache = hw.ocm_kib * 1024
    members: list[list[int]] = []
    for layer in workload.layers:
        if members and (
            layer.kind == ALIAS or _joins_cascade(members[-1], layer, workload, hw, widths, cache)
        ):
            members[-1].append(layer.index)
        else:
            members.append([layer.index])
    groups = []
    for indices in members:
        chain = [workload.layers[i] for i in indices if workload.layers[i].kind != ALIAS]
        size = 0
        if len(chain) > 1:
            rows = _tallest_stripe(chain, hw, widths, cache)
            size = _rolling_bytes(chain, rows, hw, widths)
            for layer, made in zip(chain, _stripe_rows(chain, rows), strict=True):
                stripes[layer.index] = made
        produced = frozenset(layer.output for layer in chain)
        groups.append(Group(tuple(indices), 1, 1.0, produced, size))
    return groups


def _joins_cascade(
    indices: list[int], layer: LayerWork, workload: Workload, hw: HwProfile, widths, cache: int
) -> bool:
    """Whether ``layer`` continues the cascade of ``indices``: it is a MAC-array layer that
    is the only reader of the cascade's last output, could not run whole in the cache beside
    the cascade's buffers at their tallest stripes (its input would then leave the chip), and
    the longer cascade still fits with one-row stripes."""
    if hw.fusion == "none" or len(indices) >= hw.max_fused_layers or layer.kind != MAC:
        return False
    chain = [workload.layers[i] for i in indices if workload.layers[i].kind != ALIAS]
    producer = chain[-1] if chain else None
    if producer is None or producer.kind != MAC or not layer.inputs:
        return False
    link = producer.output
    if layer.inputs[0] != link or workload.consumers.get(link, ()) != (layer.index,):
        return False
    if link in workload.graph_outputs or any(s == link for s in layer.inputs[1:]):
        return False
    running = (
        _cascade_bytes(chain, _tallest_stripe(chain, hw, widths, cache), hw, widths) if len(chain) > 1 else 0
    )
    if _whole_bytes(layer, hw, widths[layer.index]) + running <= cache:
        return False  # the consumer runs whole in the cache beside the cascade: no need to cascade into it
    return _cascade_bytes([*chain, layer], 1, hw, widths) <= cache


def _stripe_rows(chain: list[LayerWork], rows: int) -> list[int]:
    """Output rows per stripe of each layer when the last makes ``rows`` rows per stripe:
    a producer makes the rows its consumer's stride steps over."""
    made = [min(rows, chain[-1].out_shape[0])]
    for consumer, producer in zip(reversed(chain[1:]), reversed(chain[:-1]), strict=True):
        made.append(min(made[-1] * consumer.stride[0], producer.out_shape[0]))
    return made[::-1]


def _cascade_bytes(chain: list[LayerWork], rows: int, hw: HwProfile, widths) -> int:
    """Cache bytes of a cascade whose last layer makes ``rows`` rows per stripe: its rolling
    buffers and every layer's weights."""
    weights = sum(buffered_weight_bytes(layer, hw, widths[layer.index]) for layer in chain)
    return weights + _rolling_bytes(chain, rows, hw, widths)


def _rolling_bytes(chain: list[LayerWork], rows: int, hw: HwProfile, widths) -> int:
    """Per link, two input stripes of the consumer: its stripe rows with the kernel's halo,
    full width, channels in bricks."""
    granule = hw.blocks["fm_depth_granule"]
    total = 0
    for consumer, out_rows in zip(chain[1:], _stripe_rows(chain, rows)[1:], strict=True):
        h, w, c = consumer.in_shape
        in_rows = min((out_rows - 1) * consumer.stride[0] + consumer.kernel[0], h)
        total += 2 * in_rows * w * round_up(c, granule) * widths[consumer.index].act_bytes
    return total


def _tallest_stripe(chain: list[LayerWork], hw: HwProfile, widths, cache: int) -> int:
    """The most output rows per stripe of the cascade's last layer that still fit the cache."""
    low, high = 1, chain[-1].out_shape[0]
    while low < high:
        mid = (low + high + 1) // 2
        if _cascade_bytes(chain, mid, hw, widths) <= cache:
            low = mid
        else:
            high = mid - 1
    return low


def _whole_bytes(layer: LayerWork, hw: HwProfile, width: Width) -> int:
    """Cache bytes a layer needs to run uncascaded: its whole input and output feature maps,
    channels rounded up to the storage brick."""
    granule = hw.blocks["fm_depth_granule"]
    shapes = (layer.in_shape, layer.out_shape)
    return sum(h * w * round_up(c, granule) for h, w, c in shapes) * width.act_bytes


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
    """Tensors passed between groups that stay in OCM for their whole lifetime, and the OCM
    bytes in use during each group (rolling buffers and resident tensors).

    As Vela places feature maps in fast storage: a tensor that fits beside every other
    candidate over its lifetime stays; the others compete, the ones that save the most
    traffic per byte and pass of the OCM they hold first: ``(1 + reads) / passes`` (a write
    and each read kept on chip, over the passes it lives), in production order on ties."""
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
    candidates = [
        (storage, first, last, workload.storage_elems[storage] * act_bytes[storage])
        for storage, (first, last) in lifetime.items()
        if last > first and storage not in workload.graph_outputs
    ]
    peak = list(used)
    for _, first, last, size in candidates:
        for g in range(first, last + 1):
            peak[g] += size
    always = [c for c in candidates if max(peak[c[1] : c[2] + 1]) <= capacity]
    rest = [c for c in candidates if c not in always]
    rest.sort(key=lambda c: -(1 + len(workload.consumers.get(c[0], ()))) / (c[2] - c[1] + 1))
    resident = set()
    for storage, first, last, size in (*always, *rest):
        if all(used[g] + size <= capacity for g in range(first, last + 1)):
            resident.add(storage)
            for g in range(first, last + 1):
                used[g] += size
    return frozenset(resident), used
