"""Block scheduling for NPUs that run a layer as a sequence of output blocks (``blocks:`` profiles).

An NPU of this kind (Arm Ethos-U is the model) computes one *output block* (height x width x
channels) at a time in a small shared buffer (Ethos-U: the SHRAM): the input block it needs
(with the kernel's halo) and the accumulators, each double-buffered so the next block loads
while this one computes. Everything here is a pure function of the layer's shapes, the
profile's ``blocks`` section and the width:

- ``choose_block``: the output block that fits the buffer and moves the fewest bytes per
  output element (input block with halo, re-read once per output-channel block, plus the
  weights, re-read once per spatial block), judged on the layer's stripe when it runs in a
  cascade (``stripe_geometry``), as Vela's scheduler asks for it; of equal costs the first
  found, unless a later one is at most 4x4 and covers no less of the input (Vela's tie rule);
- ``deepened_shape``: the shape a shallow element op runs on (Vela's reshape to 16+ channels);
- ``block_cycles``: MAC-array (or pooling) cycles per block and the output stage's cycles
  per block, overlapped block by block (``total = max(a, b) x blocks + min(a, b)``);
- ``block_traffic``: the elements each operand moves for the whole layer under that block.

The facts (micro-block shape, buffer banks and granules, cycles per step) are the profile's;
``hwprofiles/README.md`` sources each one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

CONV = "conv"
DEPTHWISE = "depthwise"
FULLY_CONNECTED = "fc"
POOL = "pool"
ELEMENTWISE = "elementwise"
BLOCK_TYPES = (CONV, DEPTHWISE, FULLY_CONNECTED, POOL, ELEMENTWISE)


@dataclass(frozen=True)
class Geometry:
    """What block scheduling needs of a layer: output and input (h, w, c), kernel, stride."""

    block_type: str
    out_shape: tuple[int, int, int]
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    inputs: int = 1  # feature-map operands (2 for a binary element-wise op)


@dataclass(frozen=True)
class BlockConfig:
    """A chosen output block, its input block, and the counts that follow from them."""

    ofm_block: tuple[int, int, int]
    ifm_block: tuple[int, int, int]
    part_kernel: bool
    blocks_xy: int  # spatial blocks
    blocks_depth: int  # output-channel blocks

    @property
    def blocks(self) -> int:
        return self.blocks_xy * self.blocks_depth


def round_up(value: int, quantum: int) -> int:
    """``value`` rounded up to a multiple of ``quantum`` (channels to bricks, rows to blocks)."""
    return -(-value // quantum) * quantum


def _spec_key(blocks: dict[str, Any]) -> tuple:
    """A hashable copy of a profile's ``blocks`` section (for the caches below)."""
    return tuple(
        (key, tuple(sorted((str(k), v) for k, v in value.items())) if isinstance(value, dict) else value)
        for key, value in sorted(blocks.items())
    )


def _at(blocks_key: tuple, key: str, width: str, act_bits: int) -> Any:
    table = dict(dict(blocks_key)[key])
    return table.get(width, table[str(act_bits)]) if width == "16x8" else table[str(act_bits)]


def _shape(blocks_key: tuple, key: str) -> tuple[int, int, int]:
    table = dict(dict(blocks_key)[key])
    return (table["height"], table["width"], table["depth"])


def part_kernel_first(geo: Geometry, act_bits: int, part_taps: int, ifm_depth_full: int) -> bool:
    """Whether a conv packs kernel taps instead of input channels into the dot product:
    always for 8 or fewer input channels, else when that wastes fewer lanes."""
    if geo.block_type != CONV:
        return False
    depth = geo.in_shape[2]
    if depth <= 8:
        return True
    taps = geo.kernel[0] * geo.kernel[1]
    depth_use = depth / round_up(depth, ifm_depth_full)
    part_use = depth * taps / (round_up(depth, 8) * round_up(taps, part_taps))
    return part_use > depth_use


def choose_block(
    geo: Geometry, blocks: dict[str, Any], width: str, act_bits: int, max_height: int | None = None
) -> BlockConfig:
    """The cheapest output block that fits the buffer (see module docstring); in a cascade's
    stripe of ``max_height`` rows, the cheapest for that stripe (``stripe_geometry``); cached."""
    return _choose_block(geo, _spec_key(blocks), width, act_bits, max_height)


@lru_cache(maxsize=4096)
def _choose_block(
    geo: Geometry, key: tuple, width: str, act_bits: int, max_height: int | None
) -> BlockConfig:
    spec = dict(key)
    uh, uw, ud = _shape(key, "ofm_ublock")
    mh, mw, md = _shape(key, "ofm_block_max")
    stripe = stripe_geometry(geo, max_height)
    oh, ow, oc = stripe.out_shape
    ih, iw, ic = stripe.in_shape
    kh, kw = geo.kernel
    sh, sw = geo.stride
    equal_depth = geo.block_type in (DEPTHWISE, POOL, ELEMENTWISE)
    part, ifm_depth = False, 0
    if geo.block_type != ELEMENTWISE:
        ifm_depth_full = _at(key, "ifm_block_depth", width, act_bits)
        part = part_kernel_first(geo, act_bits, _at(key, "part_kernel_taps", width, act_bits), ifm_depth_full)
        # a part-kernel conv takes 2 x dot_product input channels per block (16 on Ethos-U)
        depth_limit = min(ifm_depth_full, 2 * spec["dot_product"]) if part else ifm_depth_full
        dot = spec["dot_product"]
        ifm_depth = round_up(min(ic, depth_limit), max(dot // 2, 1) if act_bits == 16 else dot)
        acc_gran = _at(key, "acc_bank_granule", width, act_bits)
        acc_bytes = _at(key, "acc_bytes", width, act_bits)
    bank = spec["bank_bytes"]
    banks = spec["buffer_banks"]
    # 32-bit operands (an element op on int32 constants) have a granule of their own
    ifm_gran = spec["ifm32_bank_granule"] if act_bits == 32 else _at(key, "ifm_bank_granule", width, act_bits)
    top = min(oh, mh)
    heights = np.arange(uh, round_up(top, uh) + 1, uh)
    widths = np.arange(uw, round_up(min(ow, mw), uw) + 1, uw)
    hh, ww = np.meshgrid(heights, widths, indexing="ij")
    ifm_h = _round_up_array((hh - 1) * sh + min(kh, 8), uh)
    ifm_w = _round_up_array((ww - 1) * sw + min(kw, 8), uw)
    best, coverage = (math.inf, None), math.inf
    for depth in _depth_candidates(oc, md, ud):
        block_ifm_depth = depth if equal_depth else ifm_depth
        ifm_banks = _round_up_array(
            -(-(ifm_h * ifm_w * round_up(block_ifm_depth * act_bits // 8, 8)) // bank) * 2, ifm_gran
        )
        if geo.block_type == ELEMENTWISE:
            fits = ifm_banks * geo.inputs <= banks
        else:
            acc = -(-(hh * ww * round_up(depth, 8) * acc_bytes) // bank) * 2
            fits = ifm_banks + _round_up_array(acc, acc_gran) <= banks
        if not fits.any():
            continue
        full_xy = np.ceil(oh / hh) * np.ceil(ow / ww)
        frac_xy = (oh / hh) * (ow / ww)
        if geo.block_type == ELEMENTWISE:
            cost = np.maximum(oh * ow * oc / (hh * ww * depth), 1.0)
        else:
            taps = kh * kw if geo.block_type in (CONV, DEPTHWISE) else 0
            weight_fetch = taps * ic * full_xy * (1 if geo.block_type == DEPTHWISE else depth * (oc / depth))
            ifm_fetch = ifm_h * ifm_w * ic * frac_xy * (1 if equal_depth else math.ceil(oc / depth))
            cost = (ifm_fetch + weight_fetch) / (oh * ow * oc)
            cost = np.where(ih * iw * ic < ifm_h * ifm_w * block_ifm_depth * 2, cost / 2, cost)
        cost = np.where(fits, cost, np.inf)
        lowest = float(cost.min())
        if not math.isfinite(lowest) or lowest > best[0]:
            continue
        if lowest < best[0]:
            coverage = math.inf
        for flat in np.flatnonzero(cost.ravel() == lowest):
            h, w = int(hh.flat[flat]), int(ww.flat[flat])
            ifm = (int(ifm_h.flat[flat]), int(ifm_w.flat[flat]), block_ifm_depth)
            if best[1] is not None and lowest == best[0]:
                # an equal cost replaces the choice only for a small block covering no less
                cover = ih * iw / (min(ih, ifm[0]) * min(iw, ifm[1]))
                if h > 4 or w > 4 or cover > coverage:
                    continue
                coverage = cover
            best = (lowest, (h, w, depth, ifm))
    if best[1] is None:  # nothing fits: the smallest block (one micro-block)
        best = (0.0, (uh, uw, ud, (round_up((uh - 1) * sh + kh, uh), round_up((uw - 1) * sw + kw, uw), ud)))
    h, w, depth, ifm = best[1]
    blocks_xy = math.ceil(geo.out_shape[0] / h) * math.ceil(ow / w)  # over the whole layer
    return BlockConfig((h, w, depth), ifm, part, blocks_xy, math.ceil(oc / depth))


def stripe_geometry(geo: Geometry, rows: int | None) -> Geometry:
    """The part of a layer one stripe of ``rows`` output rows covers (a cascade's layer): its
    output rows and the input rows they need (kernel halo, clipped to the input). Vela asks for
    a striped layer's block with these shapes, so its cost terms and its whole-input bias see
    the stripe, not the layer."""
    if rows is None or rows >= geo.out_shape[0]:
        return geo
    rows = max(rows, 1)
    _, ow, oc = geo.out_shape
    ih, iw, ic = geo.in_shape
    in_rows = min((rows - 1) * geo.stride[0] + geo.kernel[0], ih)
    return Geometry(geo.block_type, (rows, ow, oc), (in_rows, iw, ic), geo.kernel, geo.stride, geo.inputs)


def deepened_shape(shape: tuple[int, int, int], blocks: dict[str, Any]) -> tuple[int, int, int]:
    """The (h, w, c) a shallow element op runs on: Vela reshapes one whose depth is below
    ``element_deepen_below`` (and that has more than ``element_deepen_min_elements``
    elements) so its depth is the product of its element count's smallest prime factors
    reaching ``element_deepen_to``, the rest split between height and width (height the
    larger): 159x159x2 -> 53x53x18 (``ReshapeToIncreaseDepth``, scheduler_packing.cpp)."""
    count = math.prod(shape)
    if shape[2] >= blocks["element_deepen_below"] or count <= blocks["element_deepen_min_elements"]:
        return shape
    primes, rest, factor = [], count, 2
    while rest > 1 and factor * factor <= rest:
        while rest % factor == 0:
            primes.append(factor)
            rest //= factor
        factor += 1 if factor == 2 else 2
    if rest > 1:
        primes.append(rest)
    depth, index = 1, 0
    while index < len(primes) and depth < blocks["element_deepen_to"]:
        depth *= primes[index]
        index += 1
    height = width = 1
    for prime in primes[index:]:
        if width < height:
            width *= prime
        else:
            height *= prime
    return (max(height, width), min(height, width), depth)


def _round_up_array(values: np.ndarray, quantum: int) -> np.ndarray:
    return -(-values // quantum) * quantum


def _depth_candidates(out_channels: int, max_depth: int, ublock_depth: int) -> list[int]:
    """Output-block depths tried: multiples of 16 channels below the layer's depth, then one
    that covers it (Vela's OFMSplitDepth of 16)."""
    search = round_up(min(out_channels, max_depth), ublock_depth)
    depth = max(ublock_depth, min(search, 16))
    if depth < out_channels:
        depth = round_up(depth, 16)
    found = []
    while depth <= search:
        found.append(depth)
        depth += ublock_depth
        if depth < out_channels:
            depth = round_up(depth, 16)
    return found or [search]


def block_cycles(
    geo: Geometry,
    config: BlockConfig,
    blocks: dict[str, Any],
    width: str,
    act_bits: int,
    dma_cycles: float,
    output_rate: float | None = None,
) -> float:
    """MAC-array/pooling cycles of a whole layer under ``config``, block by block.

    Per block: the array needs ``max(weight decode, cycles_per_step x micro-blocks)`` cycles
    per step (one kernel tap, or ``part_kernel_taps`` taps when the conv packs taps; one
    ``depthwise_taps_per_step`` group for depthwise), times the output-channel micro-blocks,
    times the input-channel blocks. The output stage needs ``output_cycles_per_elem`` per
    element of the block (``output_rate`` instead, for pooling). A per-block command cost
    (the block's DMA, ``dma_cycles``, over 4 as Vela counts it) bounds both. The two stages
    overlap across blocks.
    """
    key = _spec_key(blocks)
    spec = dict(key)
    uh, uw, ud = _shape(key, "ofm_ublock")
    oh, ow, oc = geo.out_shape
    bh, bw, bd = (min(a, b) for a, b in zip(config.ofm_block, geo.out_shape, strict=True))
    kh, kw = geo.kernel
    if uh == 2 and geo.block_type != POOL and oh == 1 and ow % 2 == 0 and kh == 1:
        uh, uw, bh = 1, 4, 1  # one-row outputs use a 1 x 4 micro-block
    micro_xy = math.ceil(bw / uw) * math.ceil(bh / uh)
    micro_z = math.ceil(bd / ud)
    step = spec["cycles_per_step"]
    factor = _at(key, "step_cycles_factor", width, act_bits)  # depthwise and pooling at this width
    decode = spec["weight_decode_cycles"]
    taps = kh * kw
    if geo.block_type == POOL:
        dpu = max(step, taps) * micro_xy * micro_z * factor
    elif geo.block_type == DEPTHWISE:
        steps = math.ceil(taps / spec["depthwise_taps_per_step"])
        dpu = max(decode, step * micro_xy * factor) * steps * micro_z
    elif config.part_kernel:
        steps = math.ceil(taps / _at(key, "part_kernel_taps", width, act_bits))
        dpu = max(decode, step * micro_xy) * steps * math.ceil(config.ifm_block[2] / 8) * micro_z
    else:
        dpu = max(decode, step * micro_xy) * taps * micro_z
    if geo.block_type in (CONV, FULLY_CONNECTED):
        dpu *= math.ceil(geo.in_shape[2] / config.ifm_block[2])
    dpu /= spec["cores"]
    rate = output_rate if output_rate is not None else _at(key, "output_cycles_per_elem", width, act_bits)
    output = math.ceil(rate * bh * bw * bd)
    command = (dma_cycles + output + dpu) / 4
    dpu, output = max(dpu, command), max(output, command)
    n_blocks = math.ceil(oh / bh) * math.ceil(ow / bw) * math.ceil(oc / bd)
    return max(dpu, output) * n_blocks + min(dpu, output)


def block_traffic(geo: Geometry, config: BlockConfig, depth_granule: int) -> tuple[float, float]:
    """(input elements read, weight re-read factor) of the whole layer under ``config``.

    Each output block reads its input block (with halo; clipped to the input) over all input
    channels (rounded up to ``depth_granule``, the storage format's channel brick), so a conv
    re-reads its input once per output-channel block and the halo once per spatial block; a
    depthwise conv or pooling reads it once per spatial block. Weights are read once per
    spatial block.
    """
    ih, iw, ic = geo.in_shape
    bh, bw, _ = config.ifm_block
    per_block = min(bh, ih) * min(bw, iw) * round_up(ic, depth_granule)
    count = config.blocks if geo.block_type in (CONV, FULLY_CONNECTED) else config.blocks_xy
    return float(per_block * count), float(config.blocks_xy)
