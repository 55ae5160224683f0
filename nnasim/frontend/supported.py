"""Generate SUPPORTED_OPS.md from the frontend's own converter table.

Run ``python -m nnasim.frontend.supported > SUPPORTED_OPS.md``; a test checks the file is current.
"""

from __future__ import annotations

from nnasim.frontend.convert import CONSTANT_ONLY_OPS, CONVERTERS

NOTES = {
    "Conv": "2-D (NCHW); groups, depthwise, dilations, strides, pads and auto_pad; constant weight",
    "BatchNormalization": "inference form; folded into a preceding Conv/Gemm, else a per-channel affine op",
    "Clip": "min/max as attributes (opset < 11) or constant inputs",
    "PRelu": "constant per-channel or scalar slope",
    "Softmax": "one axis; opset < 13 semantics (flattened tail) lowered to reshape + softmax",
    "MaxPool": "2-D; ceil_mode, dilations; no Indices output",
    "AveragePool": "2-D; ceil_mode, count_include_pad",
    "Gemm": "constant B (the weight); transA=0; alpha/beta folded",
    "MatMul": "a constant 2-D right operand becomes a Gemm",
    "Reshape": "to the inferred static shape",
    "Flatten": "lowered to Reshape",
    "Squeeze": "lowered to Reshape",
    "Unsqueeze": "lowered to Reshape",
    "Slice": "constant starts/ends/axes/steps",
    "Resize": "nearest and linear on H, W; all coordinate transformation modes of the float executor",
    "Upsample": "as Resize (asymmetric)",
    "Identity": "removed by the remove_identity pass",
    "Dropout": "inference: removed by the remove_identity pass",
    "QuantizeLinear": "QDQ models: per-tensor or per-axis, constant scale and zero point",
    "DequantizeLinear": "QDQ models: per-tensor or per-axis, constant scale and zero point",
}


def markdown() -> str:
    lines = [
        "# Supported ONNX ops",
        "",
        "Generated from `nnasim/frontend/convert.py` by `python -m nnasim.frontend.supported`; do not edit.",
        "",
        "| ONNX op | notes |",
        "|---|---|",
    ]
    lines += [f"| {op} | {NOTES.get(op, '')} |" for op in sorted(CONVERTERS)]
    lines += [
        "",
        "Evaluated at import time when all their inputs are constant (shape sub-graphs of exported",
        "detectors), rejected otherwise: " + ", ".join(sorted(CONSTANT_ONLY_OPS)) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
