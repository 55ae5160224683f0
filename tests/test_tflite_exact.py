"""Bit-exact against the TFLite interpreter: every op output of full-integer models, generated
single-op files and the shared int8 / int16x8 networks. The ``fixedpoint`` rule against the
reference kernels (BUILTIN_REF); the ``xnnpack`` rule against the default interpreter (XNNPACK)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tflite_builders import Op, T, quantized, write_model
from tflite_oracle import compare_all_tensors, shared_tflite

RNG = np.random.default_rng(7)
CONV = "Conv2DOptions"


def _conv_case(dtype="INT8", bias="INT32", padding=0, stride=2, act=3, depthwise=False):
    bits = 16 if dtype == "INT16" else 8
    zp = 0 if bits == 16 else -3
    channels = 4
    w_shape = (1, 3, 3, channels) if depthwise else (channels, 3, 3, 3)
    in_c = channels if depthwise else 3
    w_scale = [0.01, 0.02, 0.015, 0.03]
    in_scale = 0.05 if bits == 8 else 0.0004
    tensors = [
        T((1, 9, 9, in_c), dtype, in_scale, zp),
        T(w_shape, "INT8", w_scale, 0, axis=3 if depthwise else 0, data=quantized(RNG, w_shape)),
        T(
            (channels,),
            bias,
            [in_scale * s for s in w_scale],
            0,
            data=RNG.integers(-900, 900, channels).astype(bias.lower()),
        ),
        T(
            (1, 5, 5, channels) if padding == 0 or stride == 1 else (1, 4, 4, channels),
            dtype,
            0.07 if bits == 8 else 0.0006,
            5 if bits == 8 else 0,
        ),
    ]
    if stride == 1:
        tensors[3].shape = (1, 9, 9, channels) if padding == 0 else (1, 7, 7, channels)
    fields = dict(
        Padding=padding,
        StrideH=stride,
        StrideW=stride,
        DilationHFactor=1,
        DilationWFactor=1,
        FusedActivationFunction=act,
    )
    if depthwise:
        fields["DepthMultiplier"] = 1
        return tensors, [Op("DEPTHWISE_CONV_2D", [0, 1, 2], [3], "DepthwiseConv2DOptions", fields)]
    return tensors, [Op("CONV_2D", [0, 1, 2], [3], CONV, fields)]


def _binary_case(name, options, dtype="INT8", act=0, shape=(1, 4, 5, 6)):
    bits = 16 if dtype == "INT16" else 8
    zps = (0, 0, 0) if bits == 16 else (4, -7, 2)
    scales = (0.02, 0.035, 0.05) if bits == 8 else (0.0002, 0.00035, 0.0005)
    tensors = [T(shape, dtype, s, z) for s, z in zip(scales, zps, strict=True)]
    fields = {"FusedActivationFunction": act}
    return tensors, [Op(name, [0, 1], [2], options, fields)]


def _unary_case(name, options=None, fields=None, in_fmt=(0.03, -5), out_fmt=(0.02, -20), dtype="INT8"):
    out_shape = (1, 3, 4, 5) if options == "Pool2DOptions" else (1, 6, 7, 5)
    tensors = [T((1, 6, 7, 5), dtype, *in_fmt), T(out_shape, dtype, *out_fmt)]
    return tensors, [Op(name, [0], [1], options, fields or {})]


def _cases():
    yield "conv_same_s2_relu6", _conv_case()
    yield "conv_valid_s1_relu", _conv_case(padding=1, stride=1, act=1)
    yield "depthwise_same_s1", _conv_case(stride=1, act=0, depthwise=True)
    yield "depthwise_valid_s2_relu_n1_to_1", _conv_case(padding=1, act=2, depthwise=True)
    yield "conv16x8_int64_bias", _conv_case("INT16", "INT64")
    yield "depthwise16x8", _conv_case("INT16", "INT64", stride=1, act=1, depthwise=True)
    yield "add_relu", _binary_case("ADD", "AddOptions", act=1)
    yield "sub", _binary_case("SUB", "SubOptions")
    yield "mul_relu6", _binary_case("MUL", "MulOptions", act=3)
    yield "add_int16", _binary_case("ADD", "AddOptions", "INT16")
    yield "mul_int16", _binary_case("MUL", "MulOptions", "INT16")
    yield "relu", _unary_case("RELU")
    yield "relu6", _unary_case("RELU6")
    yield "relu_int16", _unary_case("RELU", in_fmt=(0.0003, 0), out_fmt=(0.00021, 0), dtype="INT16")
    yield "requantize", _unary_case("QUANTIZE")
    yield (
        "max_pool",
        _unary_case(
            "MAX_POOL_2D",
            "Pool2DOptions",
            dict(Padding=0, StrideH=2, StrideW=2, FilterHeight=3, FilterWidth=3),
            out_fmt=(0.03, -5),
        ),
    )
    fc_in = T((1, 3, 4, 5), "INT8", 0.04, 3)
    fc_w = T((6, 60), "INT8", [0.01 * (1 + i) for i in range(6)], 0, data=quantized(RNG, (6, 60)))
    fc_b = T(
        (6,),
        "INT32",
        [0.0004 * (1 + i) for i in range(6)],
        0,
        data=RNG.integers(-3000, 3000, 6).astype(np.int32),
    )
    yield (
        "fully_connected_4d_input",
        (
            [fc_in, fc_w, fc_b, T((1, 6), "INT8", 0.3, -2)],
            [Op("FULLY_CONNECTED", [0, 1, 2], [3], "FullyConnectedOptions", {"FusedActivationFunction": 1})],
        ),
    )
    yield (
        "concatenation_channels",
        (
            [
                T((1, 3, 4, 2), "INT8", 0.05, 1),
                T((1, 3, 4, 5), "INT8", 0.05, 1),
                T((1, 3, 4, 7), "INT8", 0.05, 1),
            ],
            [Op("CONCATENATION", [0, 1], [2], "ConcatenationOptions", {"Axis": 3})],
        ),
    )
    shape = T((2,), "INT32", data=np.array([1, 60], np.int32))
    yield (
        "reshape_flatten",
        (
            [T((1, 3, 4, 5), "INT8", 0.05, 1), shape, T((1, 60), "INT8", 0.05, 1)],
            [Op("RESHAPE", [0, 1], [2])],
        ),
    )
    perm = T((4,), "INT32", data=np.array([0, 2, 1, 3], np.int32))
    yield (
        "transpose",
        (
            [T((1, 3, 4, 5), "INT8", 0.05, 1), perm, T((1, 4, 3, 5), "INT8", 0.05, 1)],
            [Op("TRANSPOSE", [0, 1], [2])],
        ),
    )
    paddings = T((4, 2), "INT32", data=np.array([[0, 0], [1, 2], [0, 1], [0, 3]], np.int32))
    yield (
        "pad_h_w_c",
        (
            [T((1, 3, 4, 5), "INT8", 0.05, 6), paddings, T((1, 6, 5, 8), "INT8", 0.05, 6)],
            [Op("PAD", [0, 1], [2])],
        ),
    )
    pad_then_conv = _conv_case(padding=1, stride=1, act=0)
    tensors, ops = pad_then_conv
    tensors = [
        T((1, 7, 7, 3), "INT8", 0.05, -3),
        T((4, 2), "INT32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),
        *tensors,
    ]
    tensors[-1].shape = (1, 7, 7, 4)
    yield (
        "pad_folded_into_conv",
        (tensors, [Op("PAD", [0, 1], [2]), Op("CONV_2D", [2, 3, 4], [5], CONV, ops[0].fields)]),
    )


def _more_cases():
    hw = T((2,), "INT32", data=np.array([8, 10], np.int32))
    resize_fields = {"AlignCorners": False, "HalfPixelCenters": True}
    pool = dict(Padding=0, StrideH=2, StrideW=2, FilterHeight=3, FilterWidth=3)
    softmax = {"Beta": 1.0}
    yield (
        "softmax_int8",
        (
            [T((1, 3, 4, 40), "INT8", 0.29, 3), T((1, 3, 4, 40), "INT8", 1 / 256, -128)],
            [Op("SOFTMAX", [0], [1], "SoftmaxOptions", softmax)],
        ),
    )
    yield (
        "softmax_int16",
        (
            [T((1, 3, 4, 10), "INT16", 0.0007, 0), T((1, 3, 4, 10), "INT16", 1 / 32768, 0)],
            [Op("SOFTMAX", [0], [1], "SoftmaxOptions", softmax)],
        ),
    )
    yield (
        "avg_pool_same",
        (
            [T((1, 6, 7, 5), "INT8", 0.03, -5), T((1, 3, 4, 5), "INT8", 0.03, -5)],
            [Op("AVERAGE_POOL_2D", [0], [1], "Pool2DOptions", pool)],
        ),
    )
    yield (
        "avg_pool_int16",
        (
            [T((1, 6, 7, 5), "INT16", 0.0003, 0), T((1, 3, 4, 5), "INT16", 0.0003, 0)],
            [Op("AVERAGE_POOL_2D", [0], [1], "Pool2DOptions", pool)],
        ),
    )
    yield (
        "max_pool_int16",
        (
            [T((1, 6, 7, 5), "INT16", 0.0003, 0), T((1, 3, 4, 5), "INT16", 0.0003, 0)],
            [Op("MAX_POOL_2D", [0], [1], "Pool2DOptions", pool)],
        ),
    )
    yield (
        "logistic",
        (
            [T((1, 6, 7, 5), "INT8", 0.05, -5), T((1, 6, 7, 5), "INT8", 1 / 256, -128)],
            [Op("LOGISTIC", [0], [1])],
        ),
    )
    yield (
        "mean_hw",
        (
            [
                T((1, 6, 7, 5), "INT8", 0.05, -5),
                T((2,), "INT32", data=np.array([1, 2], np.int32)),
                T((1, 1, 1, 5), "INT8", 0.02, 3),
            ],
            [Op("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": True})],
        ),
    )
    yield (
        "resize_nearest_half_pixel",
        (
            [T((1, 4, 5, 3), "INT8", 0.05, -5), hw, T((1, 8, 10, 3), "INT8", 0.05, -5)],
            [Op("RESIZE_NEAREST_NEIGHBOR", [0, 1], [2], "ResizeNearestNeighborOptions", resize_fields)],
        ),
    )
    yield (
        "resize_bilinear_half_pixel",
        (
            [T((1, 4, 5, 3), "INT8", 0.05, -5), hw, T((1, 8, 10, 3), "INT8", 0.05, -5)],
            [Op("RESIZE_BILINEAR", [0, 1], [2], "ResizeBilinearOptions", resize_fields)],
        ),
    )
    for label, align, half in (("align_corners", True, False), ("asymmetric", False, False)):
        fields = {"AlignCorners": align, "HalfPixelCenters": half}
        for name, options in (
            ("RESIZE_BILINEAR", "ResizeBilinearOptions"),
            ("RESIZE_NEAREST_NEIGHBOR", "ResizeNearestNeighborOptions"),
        ):
            yield (
                f"{name.lower()}_{label}",
                (
                    [T((1, 4, 5, 3), "INT8", 0.05, -5), hw, T((1, 8, 10, 3), "INT8", 0.05, -5)],
                    [Op(name, [0, 1], [2], options, fields)],
                ),
            )
    yield (
        "leaky_relu",
        (
            [T((1, 6, 7, 5), "INT8", 0.05, -5), T((1, 6, 7, 5), "INT8", 0.04, -20)],
            [Op("LEAKY_RELU", [0], [1], "LeakyReluOptions", {"Alpha": 0.1})],
        ),
    )
    yield (
        "prelu_quantized_alpha",
        (
            [
                T((1, 6, 7, 5), "INT8", 0.05, -5),
                T((5,), "INT8", 0.01, 3, data=quantized(RNG, (5,))),
                T((1, 6, 7, 5), "INT8", 0.04, -20),
            ],
            [Op("PRELU", [0, 1], [2])],
        ),
    )
    yield (
        "relu_n1_to_1",
        (
            [T((1, 6, 7, 5), "INT8", 0.05, -5), T((1, 6, 7, 5), "INT8", 0.01, 0)],
            [Op("RELU_N1_TO_1", [0], [1])],
        ),
    )
    for name in ("ADD", "MUL"):
        yield (
            f"{name.lower()}_broadcast_constant",
            (
                [
                    T((1, 4, 5, 6), "INT8", 0.02, 4),
                    T((6,), "INT8", 0.03, -2, data=quantized(RNG, (6,))),
                    T((1, 4, 5, 6), "INT8", 0.05, 2),
                ],
                [Op(name, [0, 1], [2], f"{name.title()}Options", {"FusedActivationFunction": 0})],
            ),
        )
    yield (
        "fully_connected_16x8",
        (
            [
                T((2, 20), "INT16", 0.0004, 0),
                T((6, 20), "INT8", [0.01] * 6, 0, data=quantized(RNG, (6, 20))),
                T((6,), "INT64", [0.000004] * 6, 0, data=RNG.integers(-3000, 3000, 6).astype(np.int64)),
                T((2, 6), "INT16", 0.0003, 0),
            ],
            [Op("FULLY_CONNECTED", [0, 1, 2], [3], "FullyConnectedOptions", {"FusedActivationFunction": 0})],
        ),
    )
    yield (
        "quantize_int8_to_int16",
        (
            [T((1, 6, 7, 5), "INT8", 0.05, -5), T((1, 6, 7, 5), "INT16", 0.0004, 0)],
            [Op("QUANTIZE", [0], [1])],
        ),
    )


def _slicing_cases():
    def ints(values):
        return T((len(values),), "INT32", data=np.array(values, np.int32))

    x = T((1, 4, 5, 6), "INT8", 0.05, 1)
    yield (
        "split_channels",
        (
            [ints([3]), x, *(T((1, 4, 5, 2), "INT8", 0.05, 1) for _ in range(3))],
            [Op("SPLIT", [0, 1], [2, 3, 4], "SplitOptions", {"NumSplits": 3})],
        ),
    )
    axis = T((), "INT32", data=np.array(1, np.int32))
    yield (
        "split_v_height",
        (
            [x, ints([1, 3]), axis, T((1, 1, 5, 6), "INT8", 0.05, 1), T((1, 3, 5, 6), "INT8", 0.05, 1)],
            [Op("SPLIT_V", [0, 1, 2], [3, 4], "SplitVOptions", {"NumSplits": 2})],
        ),
    )
    yield (
        "slice",
        (
            [x, ints([0, 1, 2, 1]), ints([-1, 2, 3, 4]), T((1, 2, 3, 4), "INT8", 0.05, 1)],
            [Op("SLICE", [0, 1, 2], [3])],
        ),
    )
    yield (
        "strided_slice_shrink",
        (
            [x, ints([0, 1, 0, 0]), ints([1, 4, 5, 6]), ints([1, 2, 2, 1]), T((2, 3, 6), "INT8", 0.05, 1)],
            [Op("STRIDED_SLICE", [0, 1, 2, 3], [4], "StridedSliceOptions", {"ShrinkAxisMask": 1})],
        ),
    )
    masks = {"BeginMask": 1, "EndMask": 2}
    yield (
        "strided_slice_masks_negative_stride",
        (
            [
                x,
                ints([0, 3, 0, 1]),
                ints([1, 0, 5, 6]),
                ints([1, -1, 1, 2]),
                T((1, 4, 5, 3), "INT8", 0.05, 1),
            ],
            [Op("STRIDED_SLICE", [0, 1, 2, 3], [4], "StridedSliceOptions", masks)],
        ),
    )
    yield (
        "depth_to_space",
        (
            [T((1, 4, 5, 8), "INT8", 0.05, 1), T((1, 8, 10, 2), "INT8", 0.05, 1)],
            [Op("DEPTH_TO_SPACE", [0], [1], "DepthToSpaceOptions", {"BlockSize": 2})],
        ),
    )
    yield (
        "mean_channels",
        (
            [x, ints([3]), T((1, 4, 5, 1), "INT8", 0.03, 2)],
            [Op("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": True})],
        ),
    )
    yield (
        "mean_hw_squeezed",
        (
            [x, ints([1, 2]), T((1, 6), "INT8", 0.03, 2)],
            [Op("MEAN", [0, 1], [2], "ReducerOptions", {"KeepDims": False})],
        ),
    )


def _fully_connected(x, w_scales, bias_type, out, rows=64, depth=200, act=0):
    """FULLY_CONNECTED of a (rows, depth) input ``x = (dtype, scale, zp)`` by random int8 weights."""
    n = len(w_scales)
    bias_scales = [x[1] * s for s in w_scales]
    bias = RNG.integers(-30000, 30000, n).astype(bias_type.lower())
    tensors = [
        T((rows, depth), *x),
        T((n, depth), "INT8", w_scales, 0, data=quantized(RNG, (n, depth))),
        T((n,), bias_type, bias_scales, 0, data=bias),
        T((rows, n), x[0], *out),
    ]
    return tensors, [
        Op("FULLY_CONNECTED", [0, 1, 2], [3], "FullyConnectedOptions", {"FusedActivationFunction": act})
    ]


def _large_cases():
    """Sizes where the output stage's last bit shows (issue 12): TFLite's reference FC requantizes
    in double, its MUL quantizes the float32 quotient of the scales, its int16x8 conv wraps a
    result beyond int32; a Q31 multiplier of the double quotient differs on a few outputs in
    thousands (FC 16x8: one in five)."""
    yield "mul_int16_large", _binary_case("MUL", "MulOptions", "INT16", shape=(1, 33, 31, 29))
    yield (
        "fully_connected_16x8_large",
        _fully_connected(("INT16", 0.0004, 0), [0.01] * 50, "INT64", (0.003, 0)),
    )
    per_channel = [float(np.float32(s)) for s in RNG.uniform(0.002, 0.03, 40)]
    yield (
        "fully_connected_16x8_per_channel_relu_large",
        _fully_connected(("INT16", 0.00031, 0), per_channel, "INT64", (0.0021, 0), act=1),
    )
    yield (
        "fully_connected_int8_per_channel_large",
        _fully_connected(("INT8", 0.04, 3), per_channel, "INT32", (0.9, -2), rows=96, depth=300),
    )
    tensors, ops = _conv_case("INT16", "INT64", stride=1, act=0)
    tensors[2].data = np.array([2**40, -(2**40), 2**36, 5], np.int64)
    yield "conv16x8_bias_beyond_int32", (tensors, ops)


CASES = dict(_cases()) | dict(_more_cases()) | dict(_slicing_cases()) | dict(_large_cases())
# the default interpreter delegates this one to a kernel nnasim does not reproduce (docs/tflite.md)
REFERENCE_ONLY = {"mean_hw_squeezed"}


RUNTIMES = {"fixedpoint": True, "xnnpack": False}  # rule -> run the reference kernels


def write_case(name: str, case, directory: Path) -> Path:
    """``case`` (tensors, ops) as ``directory/name.tflite``: its inputs are the tensors without
    data that no op produces, its outputs the op outputs no op consumes."""
    tensors, ops = case
    consumed = {i for op in ops for i in op.inputs}
    produced = {i for op in ops for i in op.outputs}
    inputs = [i for i, t in enumerate(tensors) if t.data is None and i not in produced]
    outputs = [i for op in ops for i in op.outputs if i not in consumed]
    path = directory / f"{name}.tflite"
    path.write_bytes(write_model(tensors, ops, inputs, outputs))
    return path


@pytest.mark.parametrize("rule", sorted(RUNTIMES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_model_matches_interpreter(case, rule, tmp_path):
    if rule == "xnnpack" and case in REFERENCE_ONLY:
        pytest.skip(f"{case}: the default interpreter's kernel is not reproduced (docs/tflite.md)")
    path = write_case(case, CASES[case], tmp_path)
    for seed in range(3):
        differ, compared = compare_all_tensors(path, rule, reference=RUNTIMES[rule], seed=seed)
        assert compared >= 1
        assert differ == [], f"{case}: {differ}"


INT16_ADD_SHAPES = {  # (a, b): TFLite's optimized int16 add takes whole 16-element blocks, not broadcasts
    "blocks_and_tail": ((1, 23, 29, 37), (1, 23, 29, 37)),
    "under_one_block": ((1, 1, 3, 5), (1, 1, 3, 5)),
    "rank3": ((3, 7, 11), (3, 7, 11)),
    "broadcast_b": ((1, 8, 8, 32), (1, 1, 1, 32)),
    "broadcast_a": ((1, 1, 1, 32), (1, 8, 8, 32)),
    "broadcast_both": ((1, 8, 1, 32), (1, 1, 8, 1)),
}
INT16_ADD_SCALES = [
    (0.0002, 0.00035, 0.0005),
    (0.00035, 0.0002, 0.0005),
    (0.00012233, 0.00017055, 0.00017055),
]


def _int16_add(shapes, scales, act=0):
    out_shape = tuple(np.broadcast_shapes(*shapes))
    tensors = [T(shape, "INT16", scale, 0) for shape, scale in zip((*shapes, out_shape), scales, strict=True)]
    return tensors, [Op("ADD", [0, 1], [2], "AddOptions", {"FusedActivationFunction": act})]


@pytest.mark.parametrize("act", [0, 1])
@pytest.mark.parametrize("scales", INT16_ADD_SCALES)
@pytest.mark.parametrize("shapes", sorted(INT16_ADD_SHAPES))
def test_int16_add_matches_default_interpreter(shapes, scales, act, tmp_path):
    path = write_case("add16", _int16_add(INT16_ADD_SHAPES[shapes], scales, act), tmp_path)
    for seed in range(3):
        assert compare_all_tensors(path, "xnnpack", reference=False, seed=seed) == ([], 1)


def test_int16_add_case_tells_the_default_interpreter_from_the_reference_kernels(tmp_path):
    """The blocked case is not matched by the reference kernels' integers (so the test above can fail)."""
    path = write_case("add16", _int16_add(INT16_ADD_SHAPES["blocks_and_tail"], INT16_ADD_SCALES[0]), tmp_path)
    assert compare_all_tensors(path, "fixedpoint", reference=False)[0] != []


@pytest.mark.parametrize(
    "name, rule",
    [
        ("mobilefacenet_int8", "fixedpoint"),
        ("mobilefacenet_int16x8", "fixedpoint"),
        ("lffd_320x240_int8", "fixedpoint"),
        ("lffd_320x240_int16x8", "fixedpoint"),
        ("mobilefacenet_int8", "xnnpack"),
        ("lffd_320x240_int8", "xnnpack"),
        ("mobilefacenet_int16x8", "xnnpack"),
        ("lffd_320x240_int16x8", "xnnpack"),
    ],
)
def test_shared_full_integer_network_every_tensor(name, rule):
    differ, compared = compare_all_tensors(shared_tflite(f"tflite-int/{name}.tflite"), rule, RUNTIMES[rule])
    assert compared > 60
    assert differ == []
