"""Cost rules on small hand-built layers, against figures computed by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnasim.cost import build_workload, evaluate, mac_cycles, profile_from_dict
from nnasim.cost.workload import weight_entropy_bits
from nnasim.ir import Activation, Graph, Node, Op, Tensor

BASE = {
    "description": "test NPU",
    "clock_mhz": 1000,
    "mac_array": {
        8: {"in_channels": 8, "out_channels": 16, "pixels": 4},
        16: {"in_channels": 8, "out_channels": 8, "pixels": 4},
    },
    "accumulator_bits": {8: 32, 16: 48},
    "rounding": "half_away_from_zero",
    "eltwise_per_clock": {8: 16, 16: 8},
    "ocm_kib": 0,
    "weight_buffer_kib": 64,
    "line_buffer_kib": 64,
    "dram_gbps": 1.0,  # with a 1000 MHz clock: exactly 1 byte per cycle
    "dram_burst_bytes": 1,
    "pass_overhead_cycles": 100,
    "fusion": "none",
    "max_fused_layers": 2,
    "weight_compression": "none",
    "weight_compression_ratio": {8: 1.0, 16: 1.0},
}


def hw(**changes):
    return profile_from_dict({**BASE, **changes})


def conv_graph(specs, in_shape, name="g"):
    """A chain of convs; spec = (out_channels, kernel, stride, pad, relu)."""
    rng = np.random.default_rng(0)
    tensors = {"x": Tensor("x", in_shape)}
    nodes = []
    x, (n, c, h, w) = "x", in_shape
    for i, (out, k, s, p, relu) in enumerate(specs):
        wname, bname, y = f"w{i}", f"b{i}", f"y{i}"
        tensors[wname] = Tensor(
            wname, (out, c, k, k), data=rng.standard_normal((out, c, k, k)).astype(np.float32)
        )
        tensors[bname] = Tensor(bname, (out,), data=np.zeros(out, np.float32))
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        tensors[y] = Tensor(y, (n, out, h, w))
        attrs = {
            "kernel_shape": (k, k),
            "strides": (s, s),
            "pads": (p, p, p, p),
            "dilations": (1, 1),
            "group": 1,
        }
        act = Activation(Op.RELU, lo=0.0) if relu else None
        nodes.append(Node(f"conv{i}", Op.CONV, (x, wname, bname), (y,), attrs, act))
        x, c = y, out
    return Graph(name, tuple(nodes), tensors, ("x",), (x,))


def test_conv_that_fits_on_chip():
    # 3x3 conv 16->32 on 8x8, pad 1, 8 bit. Lanes 8 in x 16 out x 4 px:
    # cycles = ceil(16/8) * ceil(32/16) * ceil(64/4) * 9 = 2 * 2 * 16 * 9 = 576.
    # DRAM: input 16*64 = 1024 B, output 32*64 = 2048 B, weights 32*16*9 = 4608 B + bias 32 * 4 B = 128 B.
    cost = evaluate(build_workload(conv_graph([(32, 3, 1, 1, True)], (1, 16, 8, 8))), hw(), 8)
    layer = cost.layers[0]
    assert layer.macs == 64 * 32 * 16 * 9
    assert layer.compute_cycles == 576
    assert (layer.act_read_bytes, layer.act_write_bytes, layer.weight_bytes) == (1024, 2048, 4736)
    assert layer.bound == "memory"
    assert layer.cycles == 1024 + 2048 + 4736 + 100  # 1 byte per cycle, plus the pass overhead
    assert cost.inferences_per_second == pytest.approx(1e9 / 7908)


def test_conv_that_must_tile_rereads_the_halo():
    # 3x3 conv on 1x16x8x64 at 8 bit needs 3 rows * 64 * 16 = 3072 B of line buffer; with 768 B it runs
    # in 4 stripes, each of the 3 boundaries re-reading (3 - 1) columns of 64: 8192 * (1 + 3 * 2 / 64) B.
    graph = conv_graph([(16, 3, 1, 1, False)], (1, 16, 8, 64))
    tiled = evaluate(build_workload(graph), hw(line_buffer_kib=0.75), 8).layers[0]
    whole = evaluate(build_workload(graph), hw(), 8).layers[0]
    assert whole.act_read_bytes == 16 * 8 * 64
    assert tiled.act_read_bytes == 16 * 8 * 64 * (1 + 3 * 2 / 64)
    assert tiled.weight_bytes == whole.weight_bytes


def test_weights_that_do_not_fit_reread_the_input_per_chunk():
    # 3x3 conv 64->64: 36864 B of weights + 256 B of bias; a 16 KiB weight buffer takes 3 chunks.
    # The 4096 B input does not fit a 2 KiB OCM, so it is read 3 times; in an 8 KiB OCM, once.
    graph = conv_graph([(64, 3, 1, 1, False)], (1, 64, 8, 8))
    chunked = evaluate(build_workload(graph), hw(weight_buffer_kib=16, ocm_kib=2), 8).layers[0]
    kept = evaluate(build_workload(graph), hw(weight_buffer_kib=16, ocm_kib=8), 8).layers[0]
    assert chunked.act_read_bytes == 3 * 4096
    assert kept.act_read_bytes == 4096
    assert chunked.weight_bytes == kept.weight_bytes == 36864 + 256


def test_two_channel_head_wastes_output_lanes():
    # 1x1 conv 128->2 on 16x16: the 2 output channels fill 2 of 16 output lanes.
    # cycles = ceil(128/8) * ceil(2/16) * ceil(256/4) = 16 * 1 * 64 = 1024; utilization 2/16.
    graph = conv_graph([(2, 1, 1, 0, False)], (1, 128, 16, 16))
    work = build_workload(graph)
    profile = hw(dram_gbps=1000.0, pass_overhead_cycles=0)
    assert mac_cycles(work.layers[0], profile, 8) == 1024
    cost = evaluate(work, profile, 8)
    assert cost.utilization == pytest.approx(2 / 16)
    # At 16 bit the array has 8 output lanes: 2/8 of them are busy, and 16 * 1 * 64 cycles remain.
    assert evaluate(work, profile, 16).utilization == pytest.approx(2 / 8)


def test_fused_layers_keep_their_intermediate_on_chip():
    # conv3x3 16->16 then conv1x1 16->16 on 8x8. Unfused: the 1024 B intermediate is written and read.
    graph = conv_graph([(16, 3, 1, 1, True), (16, 1, 1, 0, True)], (1, 16, 8, 8))
    apart = evaluate(build_workload(graph), hw(fusion="none"), 8)
    fused = evaluate(build_workload(graph), hw(fusion="layers"), 8)
    acts = lambda c: c.total.act_read_bytes + c.total.act_write_bytes  # noqa: E731
    assert acts(apart) == 4 * 1024
    assert acts(fused) == 2 * 1024
    assert len({layer.group for layer in fused.layers}) == 1
    # A weight buffer too small for both layers' weights (2304+64 and 256+64 B) keeps them apart.
    assert acts(evaluate(build_workload(graph), hw(fusion="layers", weight_buffer_kib=2.5), 8)) == 4 * 1024


def test_line_buffer_holds_kernel_height_minus_one_rows_plus_the_profiles_extra_rows():
    # Rows of a 16-channel 8-wide input are 128 B at 8 bits.
    acts = lambda c: c.total.act_read_bytes + c.total.act_write_bytes  # noqa: E731
    # Two 1x1 convs: 1 row each with one extra row (256 B > 128 B: apart), none without (fused).
    pointwise = build_workload(conv_graph([(16, 1, 1, 0, True), (16, 1, 1, 0, True)], (1, 16, 8, 8)))
    small = {"fusion": "layers", "line_buffer_kib": 128 / 1024}
    assert acts(evaluate(pointwise, hw(**small, line_buffer_extra_rows=1), 8)) == 4 * 1024
    assert acts(evaluate(pointwise, hw(**small, line_buffer_extra_rows=0), 8)) == 2 * 1024
    # Two 3x3 convs: 3 rows each (768 B > 512 B: apart) or 2 rows each (512 B: fused).
    window = build_workload(conv_graph([(16, 3, 1, 1, True), (16, 3, 1, 1, True)], (1, 16, 8, 8)))
    half = {"fusion": "layers", "line_buffer_kib": 0.5}
    assert acts(evaluate(window, hw(**half, line_buffer_extra_rows=1), 8)) == 4 * 1024
    assert acts(evaluate(window, hw(**half, line_buffer_extra_rows=0), 8)) == 2 * 1024
    assert hw().line_buffer_extra_rows == 1  # absent from a profile: the whole window is held


def test_resident_tensor_skips_dram_and_costs_add_up():
    graph = conv_graph([(16, 3, 1, 1, True), (16, 3, 1, 1, True), (8, 1, 1, 0, False)], (1, 16, 8, 8))
    spilled = evaluate(build_workload(graph), hw(), 8)
    resident = evaluate(build_workload(graph), hw(ocm_kib=4), 8)
    assert spilled.total.act_write_bytes == 1024 + 1024 + 512
    assert resident.total.act_write_bytes == 512  # both 1 KiB intermediates fit in 4 KiB of OCM
    for cost in (spilled, resident):
        assert sum(c.dram_bytes for c in cost.layers) == pytest.approx(cost.total.dram_bytes)
        assert sum(c.cycles for c in cost.layers) == pytest.approx(cost.total.cycles)
        assert sum(c.macs for c in cost.layers) == cost.total.macs


def test_sixteen_bit_doubles_activation_and_weight_bytes():
    graph = conv_graph([(32, 3, 1, 1, True)], (1, 16, 8, 8))
    c8 = evaluate(build_workload(graph), hw(), 8).layers[0]
    c16 = evaluate(build_workload(graph), hw(), 16).layers[0]
    assert c16.act_read_bytes == 2 * c8.act_read_bytes
    assert c16.act_write_bytes == 2 * c8.act_write_bytes
    assert c16.weight_bytes == 2 * 4608 + 32 * 6  # 48-bit bias words at 16 bit
    assert c16.compute_cycles == 2 * c8.compute_cycles  # half the output lanes


def test_weight_compression_ratio_and_estimate():
    graph = conv_graph([(32, 3, 1, 1, True)], (1, 16, 8, 8))
    work = build_workload(graph)
    ratio = evaluate(work, hw(weight_compression="ratio", weight_compression_ratio={8: 0.5, 16: 0.75}), 8)
    assert ratio.layers[0].weight_bytes == math.ceil((4608 + 128) * 0.5)
    # Four equally likely levels need 2 bits each, whatever the bit width.
    levels = np.tile(np.array([-1.0, -0.5, 0.5, 1.0], np.float32), 1000)
    assert weight_entropy_bits(levels, 8) == pytest.approx(2.0)
    assert weight_entropy_bits(levels, 16) == pytest.approx(2.0)


def test_entropy_uses_a_quantized_tensors_own_integers():
    from nnasim.ir import QuantParams

    fmt = QuantParams(scale=np.array(0.1, np.float32), zero_point=np.array(0), bits=8)
    ints = np.repeat(np.array([-3, 0, 0, 5]), 250)  # probabilities 1/4, 1/2, 1/4: 1.5 bits
    assert weight_entropy_bits(ints, 8, fmt) == pytest.approx(1.5)
    # Stored at 16 bits, the same three values still need 1.5 bits each.
    assert weight_entropy_bits(ints, 16, fmt) == pytest.approx(1.5)
    # Real values with their own 8-bit format are quantized with its scale, not re-ranged.
    assert weight_entropy_bits(ints * np.float32(0.1), 8, fmt) == pytest.approx(1.5)


def unary_graph(op, attrs, in_shape, out_shape):
    """One activation op ``x -> y`` (no constants)."""
    tensors = {"x": Tensor("x", in_shape), "y": Tensor("y", out_shape)}
    return Graph("u", (Node("u", op, ("x",), ("y",), attrs),), tensors, ("x",), ("y",))


@pytest.mark.parametrize("op", [Op.TANH, Op.HARD_SIGMOID, Op.HARD_SWISH, Op.ERF, Op.SQRT])
def test_table_ops_stream_through_the_element_engine(op):
    # 1 x 8 x 4 x 4 = 128 elements at 16 per clock (8 bits): 8 cycles; 128 B read, 128 B written.
    cost = evaluate(build_workload(unary_graph(op, {}, (1, 8, 4, 4), (1, 8, 4, 4))), hw(), 8).layers[0]
    assert cost.compute_cycles == 8
    assert (cost.act_read_bytes, cost.act_write_bytes) == (128, 128)


def test_reductions_read_their_whole_input():
    # ReduceMean over the channels of 1 x 8 x 4 x 4: 128 elements read (8 cycles at 16 per clock),
    # 16 written; LayerNormalization reads and writes all 128.
    mean = unary_graph(Op.REDUCE_MEAN, {"axes": (1,), "keepdims": 1}, (1, 8, 4, 4), (1, 1, 4, 4))
    cost = evaluate(build_workload(mean), hw(), 8).layers[0]
    assert (cost.compute_cycles, cost.act_read_bytes, cost.act_write_bytes) == (8, 128, 16)
    norm = unary_graph(Op.LAYER_NORM, {"axis": -1, "epsilon": 1e-5}, (1, 8, 4, 4), (1, 8, 4, 4))
    cost = evaluate(build_workload(norm), hw(), 16).layers[0]
    assert (cost.compute_cycles, cost.act_read_bytes, cost.act_write_bytes) == (16, 256, 256)
