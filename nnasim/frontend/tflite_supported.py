"""The TFLite half of SUPPORTED_OPS.md, generated from ``nnasim.frontend.tflite.CONVERTERS``.

"exact" means bit-exact on every tensor against the TFLite interpreter (tests/test_tflite_exact.py):
``ref`` the reference kernels (BUILTIN_REF) under ``--requant fixedpoint``, ``xnnpack`` the default
interpreter under ``--requant xnnpack``; ``ref`` ops are also exact against TFLite Micro
(tests/test_tflite_micro.py) except where a note names TFLM.
"""

from __future__ import annotations

from nnasim.frontend.tflite import CONVERTERS

EXACT_BOTH = "int8 exact (ref, xnnpack); int16x8 exact (ref)"
NOTES = {
    "CONV_2D": (
        "SAME/VALID, strides, dilations, fused activation; OHWI weights",
        EXACT_BOTH + ", int64 bias",
    ),
    "DEPTHWISE_CONV_2D": ("depth multiplier; per-channel axis 3", EXACT_BOTH + ", int64 bias"),
    "FULLY_CONNECTED": ("a 4-D input flattened in NHWC order; keep_num_dims", EXACT_BOTH),
    "ADD": ("constants broadcast NHWC-wise; fused activation", "int8 and int16x8 exact (ref, xnnpack)"),
    "SUB": ("as ADD", "int8 exact (ref, xnnpack)"),
    "MUL": ("as ADD", EXACT_BOTH),
    "DIV": ("", "fp32; integer by a constant only (as ONNX Div)"),
    "NEG": ("a multiply by -1", "fp32 only"),
    "CONCATENATION": ("axis remapped to NCHW", "int8 exact (equal formats, as TFLite requires)"),
    "RESHAPE": ("NHWC element order kept (transposes where it differs)", "exact (data movement)"),
    "SQUEEZE": ("as RESHAPE", "exact (data movement)"),
    "EXPAND_DIMS": ("as RESHAPE", "exact (data movement)"),
    "TRANSPOSE": ("permutation composed with the layout", "exact (data movement)"),
    "MAX_POOL_2D": ("SAME/VALID", "int8, int16 exact"),
    "AVERAGE_POOL_2D": ("SAME/VALID; padding not counted", "int8, int16 exact (TFLite's rounded division)"),
    "MEAN": (
        "H, W: a global average pool; other axes: ReduceMean",
        "int8 exact (ref; xnnpack when keep_dims)",
    ),
    "SPLIT": ("one Slice per output", "exact (data movement)"),
    "SPLIT_V": ("one Slice per output", "exact (data movement)"),
    "SLICE": ("constant begin and size", "exact (data movement)"),
    "STRIDED_SLICE": ("begin/end masks, negative strides, shrink_axis_mask", "exact (data movement)"),
    "HARD_SWISH": ("", "8, 16: table (not TFLite's fixed-point hard-swish)"),
    "SQRT": ("", "8, 16: table (not checked against TFLite)"),
    "PAD": ("H/W pads before a convolution folded into it; else concatenation of zero blocks", "exact"),
    "PADV2": ("as PAD, constant value 0 only", "exact"),
    "SOFTMAX": ("beta 1", "int8 exact (ref gemmlowp, xnnpack float table); int16 exact (tables)"),
    "LOGISTIC": ("", "int8 exact (table)"),
    "EXP": ("", "8, 16: table (not checked against TFLite)"),
    "RELU": ("", "int8, int16 exact (TFLM: its double-quotient multiplier can differ by 1)"),
    "RELU6": ("", "int8 exact (TFLM: where the output keeps the input's format)"),
    "RELU_N1_TO_1": ("", "int8 exact (TFLM has no kernel)"),
    "RELU_0_TO_1": ("", "8, 16: as RELU6"),
    "LEAKY_RELU": ("", "int8 exact (ref; xnnpack: XNNPACK's 8-bit-fraction multipliers)"),
    "PRELU": ("constant alpha, per channel", "int8 exact (ref, xnnpack): the quantized alpha's own format"),
    "RESIZE_BILINEAR": ("align_corners, half_pixel_centers", "int8 exact (ref 10-bit, xnnpack 11-bit taps)"),
    "RESIZE_NEAREST_NEIGHBOR": ("align_corners, half_pixel_centers", "exact (data movement)"),
    "QUANTIZE": ("of a float graph input: the input's format; int to int: a requantization", "exact"),
    "DEQUANTIZE": ("of constants (fp16, int8 weights): folded; of a graph output: kept integer", "-"),
    "DENSIFY": ("of a sparse constant (dense/CSR levels, blocks): read dense", "-"),
    "DEPTH_TO_SPACE": ("as Reshape (6-D), Transpose, Reshape", "exact (data movement)"),
    "TRANSPOSE_CONV": ("float graphs: as ConvTranspose (SAME, VALID, bias, fused activation)", "-"),
    "CUSTOM(Convolution2DTransposeBias)": ("MediaPipe's transpose conv + bias, float graphs", "-"),
}


def tflite_lines() -> list[str]:
    lines = [
        "",
        "# Supported TFLite ops",
        "",
        "Generated from `nnasim/frontend/tflite.py` (see `docs/tflite.md`). Widths: the file's own",
        "(float32, fp16 weights, int8, int16x8). `ref`: bit-exact with the TFLite interpreter's reference",
        "kernels under `--requant fixedpoint`; `xnnpack`: with the default interpreter under",
        "`--requant xnnpack`. `ref` is also exact against TFLite Micro (TFLM) except where noted.",
        "Converters' decompositions are fused back: PReLU as",
        "`relu(x) + c * (x - abs(x))` or `relu(x) + c * -relu(-x)` (ABS, NEG), softmax as",
        "`exp(x - max) / sum` (REDUCE_MAX, SUB, EXP, SUM, DIV).",
        "",
        "| TFLite op | notes | integer (file's formats) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {op} | {NOTES.get(op, ('', ''))[0]} | {NOTES.get(op, ('', ''))[1]} |" for op in sorted(CONVERTERS)
    ]
    return lines
