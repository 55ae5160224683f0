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
    # plus 16 biases at 32 bits, read once.
    assert cost.traffic == {("sram", "fm read"): 1024, ("sram", "fm write"): 1024, ("flash", "weights"): 208}
    # The graph's input and output are channel-last: a block moves runs of 16 channels x 1
    # byte, and each 16-byte run costs a whole 32-byte SRAM burst: (1024 + 1024) x 2 / 8.
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
    assert c16x8.traffic[("sram", "fm write")] == 2 * c8.traffic[("sram", "fm write")]
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


def test_cascade_keeps_intermediates_in_the_cache_when_its_buffers_fit():
    """U65, 3x3 convs 32 -> 32 on 64x64 in 8x16x16 output blocks (10-row input blocks): a
    rolling buffer holds round_up(8 + 10, 10) = 20 rows x 64 x 32 = 40 KiB. Two of them fit a
    96 KiB cache, the 128 KiB intermediates do not: one cascade, and only its input and
    output touch DRAM. With fusion: none, or an 8 KiB cache (the shortest stripe, 2 output
    rows from 4 input rows, still needs round_up(4 + 4, 4) = 8 rows x 64 x 32 = 16 KiB),
    every layer is a pass."""
    workload = build_workload(conv_chain())
    hw = load_profile("ethos-u65-512").replace(weight_compression="none", ocm_kib=96)
    cascaded = evaluate(workload, hw, 8)
    assert len({c.group for c in cascaded.layers}) == 1
    dram = cascaded.memory_traffic()["dram"]
    assert dram["fm write"] == 64 * 64 * 32  # the chain's output only
    assert cascaded.memory_traffic()["sram"]["fm write"] == 2 * 64 * 64 * 32
    for apart in (hw.replace(fusion="none"), hw.replace(ocm_kib=8)):
        cost = evaluate(workload, apart, 8)
        assert len({c.group for c in cost.layers}) == 3
        assert cost.memory_traffic()["dram"]["fm write"] == 3 * 64 * 64 * 32


def test_a_tight_cache_cascades_with_shorter_stripes():
    """30 KiB: the own blocks' 40 KiB rolling buffer does not fit, nor with 16- or 8-row
    stripes (the same 8-row blocks); 4-row stripes do: the consumer's blocks read 6 input
    rows, the producer runs 6-row blocks, round_up(6 + 6, 6) = 12 rows x 64 x 32 = 24 KiB.
    The 6 KiB left cannot hold the next buffer (2-row stripes: 16 KiB): two passes."""
    workload = build_workload(conv_chain())
    hw = load_profile("ethos-u65-512").replace(weight_compression="none", ocm_kib=30)
    cost = evaluate(workload, hw, 8)
    assert [c.group for c in cost.layers] == [0, 0, 1]
    assert cost.memory_traffic()["dram"]["fm write"] == 2 * 64 * 64 * 32
    from nnasim.cost.plan import plan_memory

    assert plan_memory(workload, hw, (parse_width(8),) * 3).stripes == (6, 4, None)


def test_a_reduction_reads_its_whole_input_in_blocks():
    """ReduceMean over the 32 channels of 1 x 32 x 8 x 8 reads all 2048 int8 input bytes (the
    graph's input is plain channel-last) and writes 64, not only an output's worth."""
    tensors = {"x": Tensor("x", (1, 32, 8, 8)), "y": Tensor("y", (1, 1, 8, 8))}
    node = Node("mean", Op.REDUCE_MEAN, ("x",), ("y",), {"axes": (1,), "keepdims": 1})
    cost = evaluate(build_workload(Graph("r", (node,), tensors, ("x",), ("y",))), u55(), 8).layers[0]
    assert (cost.act_read_bytes, cost.act_write_bytes) == (2048, 64)
