"""Block scheduling (``blocks:`` profiles) on hand-computed layers, memories and widths.

The profile is the shipped ``ethos-u55-256`` with weight compression off and a zero bias, so
every figure below follows from its YAML by hand: SRAM 8 bytes/cycle (4 GB/s at 500 MHz),
flash 1 byte/cycle, latencies 32 (SRAM read and write), output stage 0.25 cycles/element.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnasim.cost import blocks as blk
from nnasim.cost import build_workload, evaluate, load_profile, parse_width
from nnasim.cost.rules import rule_for
from nnasim.errors import ProfileError
from nnasim.ir import Graph, Node, Op, Tensor


def u55():
    return load_profile("ethos-u55-256").replace(weight_compression="none")


def depthwise_graph(channels=16, size=8):
    """3x3 depthwise conv, stride 1, pad 1, on 1 x C x size x size."""
    w = np.ones((channels, 1, 3, 3), np.float32)
    tensors = {
        "x": Tensor("x", (1, channels, size, size)),
        "w": Tensor("w", w.shape, data=w),
        "b": Tensor("b", (channels,), data=np.zeros(channels, np.float32)),
        "y": Tensor("y", (1, channels, size, size)),
    }
    attrs = {
        "kernel_shape": (3, 3),
        "strides": (1, 1),
        "pads": (1, 1, 1, 1),
        "dilations": (1, 1),
        "group": channels,
    }
    return Graph("dw", (Node("dw", Op.CONV, ("x", "w", "b"), ("y",), attrs),), tensors, ("x",), ("y",))


def fc_graph(inputs=1024, outputs=256):
    w = np.ones((outputs, inputs), np.float32)
    tensors = {
        "x": Tensor("x", (1, inputs)),
        "w": Tensor("w", w.shape, data=w),
        "b": Tensor("b", (outputs,), data=np.zeros(outputs, np.float32)),
        "y": Tensor("y", (1, outputs)),
    }
    node = Node("fc", Op.GEMM, ("x", "w", "b"), ("y",), {"transA": 0, "transB": 1, "alpha": 1.0, "beta": 1.0})
    return Graph("fc", (node,), tensors, ("x",), ("y",))


def test_depthwise_3x3_block():
    """8x8x16 fits the SHRAM as one block: IFM block 10x10x16 B = 2 banks x 2 (double buffer),
    granule 8 -> 8 banks; accumulators 8x8x16x4 B = 4 banks x 2 = 8 -> granule 16; 24 <= 44.
    Per block: micro-blocks 4x4 (xy) x 2 (z); ceil(9 taps / 4) = 3 steps of
    max(32, 4 x 16) = 64 cycles: DPU 64 x 3 x 2 = 384; output 0.25 x 1024 = 256; command
    (32 + 32 + (1024 + 1024) / 8 + 256 + 384) / 4 = 240 bounds neither. One block: 384 + 256."""
    workload = build_workload(depthwise_graph())
    layer = workload.layers[0]
    hw = u55()
    rule = rule_for(layer)
    assert rule.name == "depthwise"
    config = rule.schedule(layer, hw, parse_width(8))
    assert (config.ofm_block, config.ifm_block, config.blocks) == ((8, 8, 16), (10, 10, 16), 1)
    cost = evaluate(workload, hw, 8).layers[0]
    assert cost.compute_cycles == 640
    # SRAM: the input once (no halo re-read: one block), the output once; flash: 9x16 weights
    # plus 16 biases at 32 bits, read once. The graph's input and output are channel-last: a
    # block moves runs of 16 channels x 1 byte, and each 16-byte run moves a whole 32-byte SRAM
    # burst, so the bus carries 2 x 1024 bytes each way; its time: (2048 + 2048) / 8.
    assert cost.traffic == {("sram", "fm read"): 2048, ("sram", "fm write"): 2048, ("flash", "weights"): 208}
    assert cost.transfer_cycles == {"sram": 512, "flash": 208}
    # one block: neither its transfer nor its compute can hide behind another block's
    assert cost.cycles == 640 + 512


def test_striped_conv_rereads_halo_and_input_per_channel_block():
    """3x3 conv 32 -> 64 on 32x32 in 8x16x32 output blocks: each block reads a 10x18 input
    block over all 32 channels; 4 x 2 spatial blocks x 2 channel blocks = 16 blocks read
    10 x 18 x 32 x 16 = 92160 input elements (2.81x the input); weights once per spatial block."""
    geo = blk.Geometry(blk.CONV, (32, 32, 64), (32, 32, 32), (3, 3), (1, 1))
    config = blk.BlockConfig((8, 16, 32), (10, 18, 32), False, 8, 2)
    assert blk.block_traffic(geo, config, 16) == (92160.0, 8.0)


def test_chosen_block_fits_the_buffer():
    geo = blk.Geometry(blk.CONV, (80, 80, 64), (80, 80, 64), (3, 3), (1, 1))
    hw = u55()
    config = blk.choose_block(geo, hw.blocks, "8", 8)
    h, w, d = config.ofm_block
    ih, iw, idepth = config.ifm_block
    assert (ih, iw) == (h + 2, w + 2)
    ifm_banks = -(-(ih * iw * idepth) // 1024) * 2
    acc_banks = -(-(h * w * d * 4) // 1024) * 2
    round8, round16 = -(-ifm_banks // 8) * 8, -(-acc_banks // 16) * 16
    assert round8 + round16 <= 44
    reads, _ = blk.block_traffic(geo, config, 16)
    assert reads >= 80 * 80 * 64  # never less than the input once


def test_a_striped_layer_chooses_its_block_for_the_stripe():
    """MobileFaceNet's first conv (3x3 stride 2, 3 -> 64 channels, 112x112 -> 56x56) in a
    cascade stripe of 8 output rows needs 17 input rows: the block is costed on 8x56x64 out,
    17x112x3 in (Vela asks for the stripe's block). Part-kernel (3 channels): input blocks
    8 channels deep.
    8x12x32: input 18x26x8 = 3744 B -> 2 x 4 = 8 banks; accumulators 8x12x32x4 = 12288 B ->
    2 x 12 = 24 -> 32 (granule 16); 40 <= 44 fits. 1 x 5 spatial blocks, 2 channel blocks:
    weights 9 x 3 x 5 x 64 = 8640, input 18 x 26 x 3 x (8/8 x 56/12) x 2 = 13104, per output
    element (8640 + 13104) / 28672 = 0.758; the stripe's whole input (17 x 112 x 3 = 5712) is
    below two input blocks (2 x 3744 = 7488): halved, 0.379.
    8x8x64: input 18x18x8 (2592 B -> 8 banks), accumulators 32 banks; weights 9 x 3 x 7 x 64
    = 12096, input 18 x 18 x 3 x 7 = 6804: 0.659, not halved (5712 > 5184). So 8x12x32.
    On the whole layer (112 x 112 x 3 input, never below two blocks) 8x8x64 costs 0.659 and
    8x12x32 0.758: 8x8x64."""
    geo = blk.Geometry(blk.CONV, (56, 56, 64), (112, 112, 3), (3, 3), (2, 2))
    assert blk.stripe_geometry(geo, 8) == blk.Geometry(blk.CONV, (8, 56, 64), (17, 112, 3), (3, 3), (2, 2))
    assert blk.stripe_geometry(geo, 56) == geo
    hw = u55()
    striped = blk.choose_block(geo, hw.blocks, "8pc", 8, max_height=8)
    assert (striped.ofm_block, striped.ifm_block, striped.part_kernel) == ((8, 12, 32), (18, 26, 8), True)
    # the block's counts are the whole layer's: 7 x 5 spatial blocks, 2 channel blocks
    assert (striped.blocks_xy, striped.blocks_depth) == (35, 2)
    whole = blk.choose_block(geo, hw.blocks, "8pc", 8)
    assert (whole.ofm_block, whole.ifm_block) == ((8, 8, 64), (18, 18, 8))


def test_weight_streaming_fully_connected():
    """FC 1024 -> 256: no spatial reuse, so its 256 KiB of weights stream from flash once
    (262144 + 256 x 4 bias bytes = 263168 cycles at 1 byte/cycle) and bound the layer.
    Block 2x2x128 (1 micro-block in xy, 16 in z): DPU max(32, 4) x 16 x ceil(1024/32) = 16384
    cycles per block; command (64 + (32 + 128) / 8 + 32 + 16384) / 4 = 4125 lifts the output
    stage; two blocks: 2 x 16384 + 4125 = 36893. Cycles: 263168 + 36893 / 2."""
    hw = u55()
    cost = evaluate(build_workload(fc_graph()), hw, 8).layers[0]
    assert cost.traffic[("flash", "weights")] == 263168
    assert ("sram", "weights") not in cost.traffic  # read once: not worth buffering
    assert cost.compute_cycles == 36893
    assert cost.transfer_cycles["flash"] == 263168
    assert cost.bound == "memory"
    assert cost.cycles == pytest.approx(263168 + 36893 / 2)


def test_weights_reread_per_block_go_through_the_sram_buffer():
    """A conv in several spatial blocks reads its weights from flash once, writes them into
    SRAM once and reads them from SRAM once per spatial block."""
    graph = depthwise_graph(channels=64, size=64)
    hw = u55()
    cost = evaluate(build_workload(graph), hw, 8).layers[0]
    config = rule_for(build_workload(graph).layers[0]).schedule(
        build_workload(graph).layers[0], hw, parse_width(8)
    )
    raw = 9 * 64 + 64 * 4
    assert config.blocks_xy > 1
    assert cost.traffic[("flash", "weights")] == raw
    assert cost.traffic[("sram", "weights")] == raw * (1 + config.blocks_xy)


def test_16x8_has_8_bit_weights_and_16_bit_activations():
    workload = build_workload(depthwise_graph())
    hw = u55()
    c8, c16x8 = evaluate(workload, hw, 8).layers[0], evaluate(workload, hw, "16x8").layers[0]
    assert c16x8.traffic[("flash", "weights")] == c8.traffic[("flash", "weights")] + 16 * (40 - 32) // 8
    # 1024 output elements at 2 bytes, in 32-byte runs (16 channels): whole SRAM bursts
    assert c16x8.traffic[("sram", "fm write")] == 2 * 1024
    assert c16x8.width == "16x8"


def test_blocks_section_is_checked(tmp_path):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"inherits": "ethos-u55-256", "blocks": {"cores": 0}}))
    with pytest.raises(ProfileError, match=r"'blocks\.cores'"):
        load_profile(str(path))
    path.write_text(yaml.safe_dump({"inherits": "ethos-u55-256", "element_cycles": {"gelu": {8: 1, 16: 1}}}))
    with pytest.raises(ProfileError, match=r"unknown key 'element_cycles\.gelu'"):
        load_profile(str(path))


def conv_chain(size=64, channels=32, layers=3):
    rng = np.random.default_rng(0)
    tensors = {"x": Tensor("x", (1, channels, size, size))}
    nodes, x = [], "x"
    for i in range(layers):
        w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
        tensors[f"w{i}"] = Tensor(f"w{i}", w.shape, data=w)
        tensors[f"y{i}"] = Tensor(f"y{i}", (1, channels, size, size))
        attrs = {"kernel_shape": (3, 3), "strides": (1, 1), "pads": (1,) * 4, "dilations": (1, 1), "group": 1}
        nodes.append(Node(f"c{i}", Op.CONV, (x, f"w{i}"), (f"y{i}",), attrs))
        x = f"y{i}"
    return Graph("chain", tuple(nodes), tensors, ("x",), (x,))


def _output_write_bytes(workload, hw, stripe: int) -> float:
    """DRAM bytes of the chain's channel-last output: runs of one block's depth (at most 16
    channels per core) in 128-byte bursts."""
    last = workload.layers[-1]
    schedule = rule_for(last).schedule(last, hw, parse_width(8), stripe)
    run = min(16 * 2, schedule.ofm_block[2])
    return 64 * 64 * 32 * 128 / run


def test_cascade_keeps_intermediates_in_the_cache_when_its_buffers_fit():
    """U65, 3x3 convs 32 -> 32 on 64x64: each conv's weights are 9 x 32 x 32 = 9216 B (no
    bias); a link holds two input stripes of its consumer, (rows + 2) x 64 x 32 B each. A
    96 KiB cache (98304 B) cannot hold a consumer whole (2 x 128 KiB), so the convs cascade;
    the tallest stripe fits 3 x 9216 + 2 links x 2 x (S + 2) x 2048 <= 98304: S = 6. Only the
    chain's input and output touch DRAM. With fusion: none, or an 8 KiB cache (two convs at
    one-row stripes need 2 x 9216 + 2 x 3 x 2048 = 30720 B), every layer is a pass."""
    from nnasim.cost.plan import plan_memory

    workload = build_workload(conv_chain())
    hw = load_profile("ethos-u65-512").replace(weight_compression="none", ocm_kib=96)
    assert plan_memory(workload, hw, (parse_width(8),) * 3).stripes == (6, 6, 6)
    cascaded = evaluate(workload, hw, 8)
    assert len({c.group for c in cascaded.layers}) == 1
    dram = cascaded.memory_traffic()["dram"]
    assert dram["fm write"] == _output_write_bytes(workload, hw, 6)
    assert cascaded.memory_traffic()["sram"]["fm write"] == 2 * 64 * 64 * 32
    for apart in (hw.replace(fusion="none"), hw.replace(ocm_kib=8)):
        cost = evaluate(workload, apart, 8)
        assert len({c.group for c in cost.layers}) == 3
        # two intermediates in 16-channel bricks (512-byte runs: whole bursts) and the output
        intermediates = cost.memory_traffic()["dram"]["fm write"] - _output_write_bytes(workload, apart, None)
        assert intermediates == 2 * 64 * 64 * 32


def test_a_tight_cache_cascades_with_shorter_stripes():
    """40 KiB (40960 B): two convs cascade (one-row stripes: 30720 B), three do not
    (3 x 9216 + 2 x 2 x 3 x 2048 = 52224 B): two passes. The first runs the tallest stripe
    that fits 2 x 9216 + 2 x (S + 2) x 2048 <= 40960: S = 3 rows."""
    from nnasim.cost.plan import plan_memory

    workload = build_workload(conv_chain())
    hw = load_profile("ethos-u65-512").replace(weight_compression="none", ocm_kib=40)
    cost = evaluate(workload, hw, 8)
    assert [c.group for c in cost.layers] == [0, 0, 1]
    assert plan_memory(workload, hw, (parse_width(8),) * 3).stripes == (3, 3, None)
    intermediate = cost.memory_traffic()["dram"]["fm write"] - _output_write_bytes(workload, hw, None)
    assert intermediate == 64 * 64 * 32


def test_softmax_reads_its_lowered_constant_from_the_weights_memory():
    """An Ethos-U Softmax on 1 x 2 x 10 x 10 is lowered with a 32-bit constant as large as its
    input (softmax_constant_bytes: 4): 200 x 4 B read from flash, the weights' memory on the
    U55, and from DRAM on the U65; a profile without the field reads none."""
    tensors = {"x": Tensor("x", (1, 2, 10, 10)), "y": Tensor("y", (1, 2, 10, 10))}
    graph = Graph("sm", (Node("sm", Op.SOFTMAX, ("x",), ("y",), {"axis": 1}),), tensors, ("x",), ("y",))
    workload = build_workload(graph)
    assert evaluate(workload, u55(), 8).layers[0].traffic[("flash", "fm read")] == 200 * 4
    u65 = load_profile("ethos-u65-256")
    with_constant = evaluate(workload, u65, 8).memory_traffic()["dram"]["fm read"]
    without = evaluate(workload, u65.replace(softmax_constant_bytes=0), 8).memory_traffic()["dram"]["fm read"]
    assert with_constant - without == 200 * 4
    plain = evaluate(workload, u55().replace(softmax_constant_bytes=0), 8).layers[0].traffic
    assert ("flash", "fm read") not in plain


def test_a_shallow_element_op_runs_deepened():
    """Vela reshapes an element op shallower than 8 channels with more than 16 elements to a
    depth of at least 16 from its element count's smallest prime factors, the rest to height
    and width: 159x159x2 = 2 x 3 x 3 x 53 x 53 -> depth 2 x 3 x 3 = 18, 53x53; 79x79x2 ->
    depth 2 x 79 = 158, 79x1 (Vela 5.2 prints both shapes for LFFD-640's Softmax ops)."""
    spec = u55().blocks
    assert blk.deepened_shape((159, 159, 2), spec) == (53, 53, 18)
    assert blk.deepened_shape((79, 79, 2), spec) == (79, 1, 158)
    assert blk.deepened_shape((4, 4, 2), spec) == (2, 1, 16)  # 2^5: 16 channels, 2 rows
    assert blk.deepened_shape((2, 4, 2), spec) == (2, 4, 2)  # 16 elements: too few
    assert blk.deepened_shape((8, 8, 64), spec) == (8, 8, 64)  # deep enough


def test_an_equal_cost_block_gives_way_to_a_small_one():
    """A 32-bit element op on 79x1x158 on the U55-128 (20 banks, IFM32 granule 8, micro-block
    1x2x8): two input blocks of 8 banks each fit, so a block holds at most 4096 B = 1024
    elements. 32x2x16, 16x2x32, 8x2x64 and 4x2x128 all hold 1024 (cost 12482 / 1024); the
    search keeps the first unless a later equal one is at most 4x4 in height and width (Vela's
    tie rule): 4x2x128, the block Vela 5.2 prints for it."""
    hw = load_profile("ethos-u55-128")
    geo = blk.Geometry(blk.ELEMENTWISE, (79, 1, 158), (79, 1, 158), inputs=2)
    assert blk.choose_block(geo, hw.blocks, "32", 32).ofm_block == (4, 2, 128)


def test_softmax_constant_moves_in_its_lowered_blocks_runs():
    """U55-128, Softmax over 2 channels of 159x159: its 202,248-byte int32 constant is read
    channel-last by an op on the deepened 53x53x18 in 2x32x16 blocks (16 channels x 64 B/pixel
    = 4096 B per input block: the most that fits twice), so in runs of 16 x 4 = 64 B, each a
    whole 128-byte flash burst: 404,496 bytes on the bus, as Vela 5.2 counts that op. At
    79x79 (79x1x158, 4x2x128 blocks) the runs are 512 B: 49,928 bytes, once. On the U55-256
    (44 banks, IFM32 granule 16) 39x39 (13x13x18) runs in 6x14x24 blocks: 96-byte runs, each
    a 128-byte burst: 12,168 x 128 / 96 = 16,224 bytes (Vela's figure too)."""
    cases = (("ethos-u55-128", 159, 404_496), ("ethos-u55-128", 79, 49_928), ("ethos-u55-256", 39, 16_224))
    for profile, size, moved in cases:
        tensors = {"x": Tensor("x", (1, 2, size, size)), "y": Tensor("y", (1, 2, size, size))}
        node = Node("sm", Op.SOFTMAX, ("x",), ("y",), {"axis": 1})
        workload = build_workload(Graph("sm", (node,), tensors, ("x",), ("y",)))
        traffic = evaluate(workload, load_profile(profile), 8).layers[0].traffic
        assert traffic[("flash", "fm read")] == pytest.approx(moved)


def test_a_cascades_later_weights_stream_unless_they_fit_half_the_cache_left():
    """A Relu pass, then two 3x3 convs 32 -> 32 on 64x64 in a 40 KiB cache: the convs
    cascade with 3-row stripes (20480 B of rolling buffers, 20480 B left). The first conv's
    9216 B of weights load before the cascade runs (11264 B left); the second's must load
    while it runs, double-buffered, into half of that (5632 B): they do not fit and stream
    from DRAM once per spatial block. As the network's first pass, the same cascade loads
    all its weights up front."""
    graph = conv_chain(layers=2)
    tensors = dict(graph.tensors, r=Tensor("r", (1, 32, 64, 64)))
    first = graph.nodes[0]
    nodes = (
        Node("relu", Op.RELU, ("x",), ("r",), {}),
        Node(first.name, first.op, ("r", *first.inputs[1:]), first.outputs, first.attrs),
        graph.nodes[1],
    )
    workload = build_workload(Graph("relu_chain", nodes, tensors, ("x",), graph.outputs))
    hw = load_profile("ethos-u65-512").replace(weight_compression="none", ocm_kib=40)
    cost = evaluate(workload, hw, 8)
    assert [c.group for c in cost.layers] == [0, 1, 1]
    conv = workload.layers[2]
    blocks_xy = rule_for(conv).schedule(conv, hw, parse_width(8), 3).blocks_xy
    assert cost.layers[1].traffic[("dram", "weights")] == 9216
    assert cost.layers[2].traffic[("dram", "weights")] == 9216 * blocks_xy
    assert ("sram", "weights") not in cost.layers[2].traffic
    alone = evaluate(build_workload(graph), hw, 8)  # the cascade is the first pass
    assert alone.layers[1].traffic[("dram", "weights")] == 9216


def test_a_reduction_reads_its_whole_input_in_blocks():
    """ReduceMean over the 32 channels of 1 x 32 x 8 x 8 reads all 2048 int8 input bytes (the
    graph's input is plain channel-last) and writes its 64-byte output in whole 32-byte SRAM
    bursts (short runs cost whole bursts, so at most 4 per 8-byte row), not an input's worth."""
    tensors = {"x": Tensor("x", (1, 32, 8, 8)), "y": Tensor("y", (1, 1, 8, 8))}
    node = Node("mean", Op.REDUCE_MEAN, ("x",), ("y",), {"axes": (1,), "keepdims": 1})
    cost = evaluate(build_workload(Graph("r", (node,), tensors, ("x",), ("y",))), u55(), 8).layers[0]
    assert cost.act_read_bytes == 2048
    assert 64 <= cost.act_write_bytes <= 8 * 32 and cost.act_write_bytes % 32 == 0
