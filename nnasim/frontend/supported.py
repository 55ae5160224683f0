"""Generate SUPPORTED_OPS.md from the frontend's own converter table.

Run ``python -m nnasim.frontend.supported > SUPPORTED_OPS.md``; a test checks the file is current.
"""

from __future__ import annotations

from nnasim.frontend.convert import CONSTANT_ONLY_OPS, CONVERTERS
from nnasim.frontend.tflite_supported import tflite_lines

NOTES = {
    "Conv": "2-D (NCHW); groups, depthwise, dilations, strides, pads and auto_pad; constant weight",
    "BatchNormalization": "inference form; folded into a preceding Conv/Gemm, else a per-channel affine op",
    "Clip": "min/max as attributes (opset < 11) or constant inputs",
    "PRelu": "constant per-channel or scalar slope",
    "Softmax": "one axis; opset < 13 semantics (flattened tail) lowered to reshape + softmax",
    "MaxPool": "2-D; ceil_mode, dilations; no Indices output",
    "AveragePool": "2-D; ceil_mode, count_include_pad",
    "Gemm": "constant B (the weight); transA=0; alpha/beta folded",
    "Reshape": "to the inferred static shape",
    "Flatten": "lowered to Reshape",
    "Squeeze": "lowered to Reshape",
    "Unsqueeze": "lowered to Reshape",
    "Slice": "constant starts/ends/axes/steps",
    "Resize": "nearest and linear on H, W; all coordinate transformation modes of the float executor",
    "Upsample": "as Resize (asymmetric)",
    "Identity": "removed by the remove_identity pass",
    "Dropout": "inference: removed by the remove_identity pass",
    "QuantizeLinear": "QDQ (also com.microsoft): per-tensor or per-axis, constant scale and zero point",
    "ConvTranspose": "2-D; groups, dilations, strides, pads, output_padding, output_shape, auto_pad; "
    "lowered to its equivalent conv over the zero-inserted input",
    "Split": "any opset's form (split attribute, input or num_outputs); one Slice per output",
    "HardSigmoid": "alpha, beta",
    "LSTM": "unrolled over the static sequence into MatMul/Gemm, Add, Slice, Sigmoid, Tanh, Mul, Concat; "
    "default activations, constant initial states, no peepholes/clip/sequence_lens",
    "HardSwish": "",
    "Pow": "constant scalar exponent (2, 0.5, any)",
    "ReduceMean": "axes as attribute or input (opset 18), keepdims",
    "LayerNormalization": "constant scale/bias over the axes from axis on; no Mean/InvStdDev outputs",
    "MatMul": "a constant 2-D right operand becomes a Gemm; two computed operands (attention) too",
    "DequantizeLinear": "QDQ (also com.microsoft): per-tensor or per-axis, constant scale and zero point",
}

# QOperator ops read as DQ -> op -> Q (nnasim/quant/qoperator.py QOPS; a test checks they agree)
QOPERATOR_OPS = (
    ("", "QLinearConv"),
    ("", "QLinearMatMul"),
    ("com.microsoft", "QGemm"),
    ("com.microsoft", "QLinearAdd"),
    ("com.microsoft", "QLinearMul"),
    ("com.microsoft", "QLinearConcat"),
    ("com.microsoft", "QLinearAveragePool"),
    ("com.microsoft", "QLinearGlobalAveragePool"),
    ("com.microsoft", "QLinearSigmoid"),
    ("com.microsoft", "QLinearLeakyRelu"),
    ("com.microsoft", "QLinearSoftmax"),
)


def _dialects() -> list[str]:
    qoperator = ", ".join(f"{op}{' (com.microsoft)' if domain else ''}" for domain, op in QOPERATOR_OPS)
    return [
        "## Quantized ONNX dialects",
        "",
        "Read as QDQ with the model's own scales, zero points and widths (see docs/quantized-onnx.md).",
        "",
        "| dialect | what is read | integer engine |",
        "|---|---|---|",
        "| QDQ | QuantizeLinear/DequantizeLinear, int8/uint8/int16/uint16, per tensor or per axis; int32 "
        "and int64 biases; integer graph inputs and outputs; fake-quant weights (float -> Q -> DQ) "
        "| 8, 16 and mixed: each tensor keeps its width, requantized between |",
        "| QDQ, com.microsoft | QuantizeLinear/DequantizeLinear of onnxruntime's 16-bit form | as QDQ |",
        f"| QOperator | {qoperator}; MaxPool, Reshape, Transpose... on integers | as DQ -> op -> Q |",
        "| dynamic | DynamicQuantizeLinear -> ConvInteger/MatMulInteger (-> integer bias Add) -> Cast "
        "-> Mul | weights keep their formats; activations calibrated |",
        "| dynamic, com.microsoft | DynamicQuantizeLSTM | an LSTM of the dequantized weights |",
        "",
    ]


_TABLE = "8, 16: table over every input integer"
_STAGE = "8, 16: integer sums, one output stage (the chosen rule)"
# How the integer engine runs each op (nnasim/engine/layers.py); tests check it lists every op it builds.
INTEGER = {
    "Conv": "8, 16: int32/int64 accumulators, per-tensor or per-channel weights",
    "ConvTranspose": "8, 16: as Conv, on the input spread with its zero point",
    "Gemm": "8, 16: as Conv",
    "MatMul": "8, 16: constant or computed right operand (exact sums)",
    "BatchNormalization": "8, 16: per-channel multiply-add when not folded",
    "Add": "8, 16: the rule's rescaling (TFLite / onnxruntime / shifts)",
    "Sub": "8, 16: as Add",
    "Mul": "8, 16: integer product, one output stage",
    "Div": "8, 16: by a constant only (a Mul by its reciprocal)",
    "Concat": "8, 16: inputs requantized to the output format",
    "MaxPool": "8, 16: on the integers",
    "AveragePool": _STAGE,
    "GlobalAveragePool": _STAGE,
    "ReduceMean": _STAGE,
    "Resize": "8, 16: nearest a gather; linear with 11 (8-bit) / 15 (16-bit) weight fraction bits",
    "Upsample": "as Resize",
    "Sigmoid": _TABLE,
    "Exp": _TABLE,
    "HardSigmoid": _TABLE,
    "HardSwish": _TABLE,
    "Sqrt": _TABLE,
    "Pow": _TABLE,
    "Erf": _TABLE,
    "Tanh": _TABLE,
    "LSTM": "8, 16: through the ops it unrolls to",
    "Softmax": "8, 16: exp table, exact integer division",
    "LayerNormalization": "8, 16: fixed point (integer mean, variance, exact integer sqrt)",
    "Relu": "8, 16: fused clamp, or its own output stage",
    "Clip": "8, 16: as Relu",
    "LeakyRelu": "8, 16: second multiplier for negative values",
    "PRelu": "8, 16: per-channel second multiplier",
    "Reshape": "8, 16: data movement",
    "Flatten": "8, 16: data movement",
    "Squeeze": "8, 16: data movement",
    "Unsqueeze": "8, 16: data movement",
    "Transpose": "8, 16: data movement",
    "Slice": "8, 16: data movement",
    "Split": "8, 16: data movement",
    "Identity": "removed",
    "Dropout": "removed",
    "QuantizeLinear": "formats of the QDQ model",
    "DequantizeLinear": "formats of the QDQ model",
}


def markdown() -> str:
    lines = [
        "# Supported ONNX ops",
        "",
        "Generated from `nnasim/frontend/convert.py` by `python -m nnasim.frontend.supported`; do not edit.",
        "",
        "fp32 runs every op below; the last column says at which integer widths (bits) the integer",
        "engine runs it and how. Non-linear ops are integer tables or fixed point: no float at run time.",
        "",
        "| ONNX op | notes | integer engine |",
        "|---|---|---|",
    ]
    lines += [f"| {op} | {NOTES.get(op, '')} | {INTEGER.get(op, 'fp32 only')} |" for op in sorted(CONVERTERS)]
    lines += [
        "",
        "Evaluated at import time when all their inputs are constant (shape sub-graphs of exported",
        "detectors), rejected otherwise: " + ", ".join(sorted(CONSTANT_ONLY_OPS)) + ".",
        "",
        *_dialects(),
    ]
    lines += tflite_lines() + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
