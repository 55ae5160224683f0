"""Per-op mapping rules: which engine runs each op, its cycles and the bytes it moves.

One ``LayerRule`` per kind of op, found through ``RULES`` (op name -> rule; a conv whose
groups equal its channels is a depthwise conv). Each rule has two forms:

- **streaming** (profiles without a ``blocks`` section, the PowerVR style): a MAC layer takes
  ``ceil(Cin/in_lanes) x ceil(Cout/out_lanes) x ceil(pixels/pixel_lanes) x taps`` cycles (a
  depthwise conv puts its taps on the input lanes), an element op ``elements /
  eltwise_per_clock`` (or ``element_cycles`` per element); each operand moves once;
- **blocked** (``blocks`` profiles, the Ethos-U style): the layer runs in output blocks chosen
  by ``blocks.choose_block``; cycles and re-reads follow from the block (``blocks`` module).

Adding an op: map it in ``RULES`` to one of these rules (or a new one) and add a
hand-computed case to ``tests/test_cost_rules.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnasim.cost import blocks as blk
from nnasim.cost.profile import HwProfile
from nnasim.cost.workload import LayerWork, Workload
from nnasim.errors import ModelError
from nnasim.quant.widths import Width

MAC_ENGINE = "mac"
ELEMENT_ENGINE = "element"
NO_ENGINE = "none"


@dataclass(frozen=True)
class LayerRule:
    """How one kind of op maps to the hardware (see module docstring)."""

    name: str
    engine: str
    block_type: str | None
    reads_constant: bool = False  # lowered with a constant operand as large as its input
    over_input: bool = False  # an element op whose blocks run over its input (a reduction)

    def constant_bytes(self, layer: LayerWork, hw: HwProfile) -> float:
        """Bytes of the constant operand the op is lowered with (``softmax_constant_bytes``
        per input element), read from the weights' memory."""
        return float(sum(layer.input_elems) * hw.softmax_constant_bytes) if self.reads_constant else 0.0

    def constant_run(self, layer: LayerWork, hw: HwProfile) -> int | None:
        """Contiguous bytes per DMA run of the constant operand (blocked profiles): the op Vela
        lowers reads it channel-last, on the deepened shape (``blocks.deepened_shape``), in
        element blocks of its own operands' width, so in runs of one pixel's block depth
        (as ``read_run`` counts a channel-last input)."""
        if not hw.blocks or not self.reads_constant:
            return None
        bits = 8 * hw.softmax_constant_bytes
        shape = blk.deepened_shape(self.element_shape(layer), hw.blocks)
        geo = blk.Geometry(blk.ELEMENTWISE, shape, shape, inputs=2)
        return blk.choose_block(geo, hw.blocks, str(bits), bits).ofm_block[2] * hw.softmax_constant_bytes

    def geometry(self, layer: LayerWork) -> blk.Geometry:
        kernel, in_shape = layer.kernel, layer.in_shape
        if self.block_type == blk.POOL and layer.op == "GlobalAveragePool":
            kernel = in_shape[:2]
        if self.block_type == blk.FULLY_CONNECTED:
            in_shape = (1, 1, layer.reduce_channels)
        out_shape = layer.out_shape
        if self.block_type == blk.ELEMENTWISE:
            in_shape = out_shape = self.element_shape(layer)
        return blk.Geometry(
            self.block_type, out_shape, in_shape, kernel, layer.stride, max(len(layer.inputs), 1)
        )

    def element_shape(self, layer: LayerWork) -> tuple[int, int, int]:
        """The (h, w, c) an element op's blocks run over: its input for a reduction, else its output."""
        return layer.in_shape if self.over_input else layer.out_shape

    def schedule(
        self, layer: LayerWork, hw: HwProfile, width: Width, stripe: int | None = None
    ) -> blk.BlockConfig | None:
        """The output block this layer runs in (``blocks`` profiles; at most ``stripe`` rows
        high inside a cascade), else None."""
        if not hw.blocks or self.block_type is None:
            return None
        return blk.choose_block(self.geometry(layer), hw.blocks, width.name, width.act_bits, stripe)

    def blocks(self, schedule: blk.BlockConfig | None) -> float:
        return float(schedule.blocks) if schedule is not None else math.inf

    def weight_rereads(self, schedule: blk.BlockConfig | None) -> float:
        """How often the weights are read: once per spatial block."""
        return float(schedule.blocks_xy) if schedule is not None else 1.0

    def input_bytes(
        self,
        layer: LayerWork,
        schedule: blk.BlockConfig | None,
        storage: str,
        elems: int,
        workload: Workload,
        hw: HwProfile,
        width: Width,
    ) -> float:
        """Bytes this layer reads of one input, block re-reads included."""
        if schedule is None:
            return float(elems * width.act_bytes)
        granule = _granule(storage, workload, hw)
        if self.block_type == blk.ELEMENTWISE:
            if elems == 1:
                return 0.0  # a scalar operand rides in the command stream
            h, w, c = self.element_shape(layer)
            return float(h * w * blk.round_up(c, granule) * width.act_bytes)
        reads, _ = blk.block_traffic(self.geometry(layer), schedule, granule)
        return reads * width.act_bytes

    def read_run(
        self, schedule: blk.BlockConfig, storage: str, workload: Workload, hw: HwProfile, width: Width
    ) -> int:
        """Contiguous bytes per DMA run when a block reads ``storage``: a row of channel bricks
        across the input block (the NPU's format), or one pixel's block depth (channel-last)."""
        granule = _granule(storage, workload, hw)
        if granule > 1:
            return granule * width.act_bytes * schedule.ifm_block[1]
        return schedule.ifm_block[2] * width.act_bytes

    def write_run(
        self, schedule: blk.BlockConfig, storage: str, workload: Workload, hw: HwProfile, width: Width
    ) -> int:
        """Contiguous bytes per DMA run when a block writes ``storage`` (each core writes its own)."""
        granule = hw.blocks["fm_depth_granule"]
        cores = hw.blocks["cores"]
        if _granule(storage, workload, hw) > 1:
            return granule * width.act_bytes * schedule.ofm_block[1] * cores
        return min(granule * cores, schedule.ofm_block[2]) * width.act_bytes

    def output_bytes(self, layer: LayerWork, workload: Workload, hw: HwProfile, width: Width) -> float:
        if not hw.blocks:
            return float(layer.output_elems * width.act_bytes)
        h, w, c = layer.out_shape
        return float(h * w * blk.round_up(c, _granule(layer.output, workload, hw)) * width.act_bytes)

    def compute_cycles(
        self, layer: LayerWork, hw: HwProfile, width: Width, schedule: blk.BlockConfig | None = None
    ) -> float:
        if self.engine == NO_ENGINE:
            return 0.0
        if not hw.blocks:
            return self._streaming_cycles(layer, hw, width)
        if schedule is None:
            schedule = self.schedule(layer, hw, width)
        if self.block_type == blk.ELEMENTWISE:
            return self._element_block_cycles(layer, hw, width, schedule)
        geo = self.geometry(layer)
        rate = _element_rate(layer, hw, width) if self.block_type == blk.POOL else None
        dma = _block_dma(geo, schedule, hw, width)
        return blk.block_cycles(geo, schedule, hw.blocks, width.name, width.act_bits, dma, rate)

    def _streaming_cycles(self, layer: LayerWork, hw: HwProfile, width: Width) -> float:
        if self.engine == MAC_ENGINE:
            return float(_array_cycles(layer, hw, width))
        if hw.element_cycles is not None:
            return layer.vector_ops * _element_rate(layer, hw, width)
        return layer.vector_ops / hw.at(hw.eltwise_per_clock, width)

    def _element_block_cycles(self, layer: LayerWork, hw: HwProfile, width: Width, schedule) -> float:
        """Cycles per element of the op's class, bounded by the per-block command cost."""
        rate = _element_rate(layer, hw, width)
        h, w, c = shape = self.element_shape(layer)
        bh, bw, bd = (min(a, b) for a, b in zip(schedule.ofm_block, shape, strict=True))
        block = bh * bw * bd
        command = (_block_dma(self.geometry(layer), schedule, hw, width) + rate * block) / 4
        rate = max(rate, command / block)
        granule = hw.blocks["fm_depth_granule"]
        return float(math.ceil(rate * h * w * blk.round_up(c, granule)))


def _element_rate(layer: LayerWork, hw: HwProfile, width: Width) -> float:
    table = hw.element_cycles or {}
    entry = table.get(layer.element_class, table.get("other"))
    if entry is None:
        return 1.0 / hw.at(hw.eltwise_per_clock, width)
    return float(hw.at(entry, width))


def _granule(storage: str, workload: Workload, hw: HwProfile) -> int:
    """Channel brick of a tensor's storage: the NPU's own format inside the graph, plain
    channel-last (1) for the graph's inputs and outputs, which software reads and writes."""
    if storage in workload.graph_inputs or storage in workload.graph_outputs:
        return 1
    return hw.blocks["fm_depth_granule"]


def _block_dma(geo: blk.Geometry, schedule: blk.BlockConfig, hw: HwProfile, width: Width) -> float:
    """Cycles to fetch one input block and write one output block of the feature-map memory
    (latency plus bytes over bandwidth): the per-block command cost."""
    memory = hw.memory_map()[hw.fm_memory]
    per_cycle = hw.bytes_per_cycle(hw.fm_memory)
    ih, iw, ic = geo.in_shape
    bh, bw, bd = schedule.ifm_block
    ifm = min(bh, ih) * min(bw, iw) * min(bd, ic) * width.act_bytes
    ofm = (
        math.prod(min(a, b) for a, b in zip(schedule.ofm_block, geo.out_shape, strict=True)) * width.act_bytes
    )
    return memory.read_latency_cycles + memory.write_latency_cycles + (ifm + ofm) / per_cycle


def _array_cycles(layer: LayerWork, hw: HwProfile, width: Width) -> int:
    """Streaming MAC-array cycles: lanes a layer's channels do not fill are wasted.

    The array multiplies ``in_channels`` input channels by ``out_channels`` output channels
    at ``pixels`` output positions per clock, for one kernel tap at a time. A depthwise
    conv has one input channel per output; it puts kernel taps on the input lanes.
    """
    array = hw.mac_array[hw.table_key(width)]
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


CONV_RULE = LayerRule("conv", MAC_ENGINE, blk.CONV)
DEPTHWISE_RULE = LayerRule("depthwise", MAC_ENGINE, blk.DEPTHWISE)
FC_RULE = LayerRule("fully connected", MAC_ENGINE, blk.FULLY_CONNECTED)
POOL_RULE = LayerRule("pooling", ELEMENT_ENGINE, blk.POOL)  # blocked profiles: on the array
ELEMENT_RULE = LayerRule("element-wise", ELEMENT_ENGINE, blk.ELEMENTWISE)
SOFTMAX_RULE = LayerRule("softmax", ELEMENT_ENGINE, blk.ELEMENTWISE, reads_constant=True)
LUT_RULE = LayerRule("lookup table", ELEMENT_ENGINE, blk.ELEMENTWISE)
REDUCE_RULE = LayerRule("reduction", ELEMENT_ENGINE, blk.ELEMENTWISE, over_input=True)
VIEW_RULE = LayerRule("view", NO_ENGINE, None)

# Op name -> rule. Element-wise covers binary (Add, Sub, Mul, Div) and unary ops (standalone
# activations, BatchNormalization as a multiply-add), data movement (Transpose, Slice, Resize)
# and Softmax (its rate in ``element_cycles.softmax`` counts all its passes); LUT ops
# (Sigmoid, Exp and the other table ops) read ``element_cycles.lut``. Reductions (ReduceMean,
# LayerNormalization) read their whole input once at their class's rate (LayerNormalization's
# passes, like Softmax's, are in that rate). ConvTranspose runs as its equivalent stride-1 conv
# (``workload``). Views move no data.
RULES: dict[str, LayerRule] = {
    "Conv": CONV_RULE,
    "ConvTranspose": CONV_RULE,
    "Gemm": FC_RULE,
    "MatMul": FC_RULE,
    "MaxPool": POOL_RULE,
    "AveragePool": POOL_RULE,
    "GlobalAveragePool": POOL_RULE,
    **dict.fromkeys(
        ("Add", "Sub", "Mul", "Div", "Relu", "PRelu", "LeakyRelu", "Clip", "BatchNormalization"), ELEMENT_RULE
    ),
    **dict.fromkeys(("Transpose", "Slice", "Resize"), ELEMENT_RULE),
    "Softmax": SOFTMAX_RULE,
    **dict.fromkeys(("Sigmoid", "Exp", "HardSigmoid", "HardSwish", "Sqrt", "Pow", "Erf", "Tanh"), LUT_RULE),
    **dict.fromkeys(("ReduceMean", "LayerNormalization"), REDUCE_RULE),
    **dict.fromkeys(
        ("Reshape", "Identity", "Dropout", "QuantizeLinear", "DequantizeLinear", "Concat"), VIEW_RULE
    ),
}


def rule_for(layer: LayerWork) -> LayerRule:
    """The rule for ``layer``; ``ModelError`` naming the node and op when there is none."""
    rule = RULES.get(layer.op)
    if rule is None:
        raise ModelError(f"node {layer.name!r}: op {layer.op} has no cost rule (nnasim/cost/rules.py)")
    return DEPTHWISE_RULE if rule is CONV_RULE and layer.depthwise else rule
