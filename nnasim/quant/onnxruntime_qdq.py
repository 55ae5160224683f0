"""Build reference QDQ models with onnxruntime's own quantizer (for tests, benchmarks, comparisons).

onnxruntime is an optional dependency (the ``test`` extra); it is imported only here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter

from nnasim.errors import UsageError

PER_CHANNEL_OPSET = 13  # DequantizeLinear's axis attribute


def quantize_with_onnxruntime(
    model_path: str | Path,
    out_path: str | Path,
    feeds: list[dict[str, np.ndarray]],
    per_channel: bool = True,
    activation_type: str = "int8",
    reduce_range: bool = True,
) -> Path:
    """``onnxruntime.quantization.quantize_static`` in QDQ format, calibrated (min/max) on ``feeds``.

    ``reduce_range`` (7-bit weights) is the default: onnxruntime rewrites int8 activations as uint8
    on x86, and without VNNI its u8s8 kernels saturate pairs of products at int16 (vpmaddubsw),
    which is not exact integer arithmetic; with 7-bit weights no pair can saturate.
    """
    try:
        from onnxruntime import quantization as q
    except ImportError as error:
        raise UsageError("building a QDQ model needs onnxruntime (pip install onnxruntime)") from error

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    quant_type = {"int8": q.QuantType.QInt8, "uint8": q.QuantType.QUInt8}[activation_type]
    with tempfile.TemporaryDirectory() as tmp:
        source = _at_least_opset(Path(model_path), Path(tmp) / "opset13.onnx")
        # onnxruntime's recommended pre-processing: shape inference and graph optimisation (folds BN)
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(source), str(Path(tmp) / "prepared.onnx"), skip_symbolic_shape=True)
        source = Path(tmp) / "prepared.onnx"
        _quantize(q, source, out_path, Reader(), per_channel, quant_type, reduce_range)
    return Path(out_path)


def _at_least_opset(model_path: Path, scratch: Path) -> Path:
    """The model itself, or a copy converted to opset 13 (older opsets lack per-channel Q/DQ)."""
    model = onnx.load(str(model_path))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), PER_CHANNEL_OPSET)
    if opset >= PER_CHANNEL_OPSET:
        return model_path
    onnx.save(version_converter.convert_version(model, PER_CHANNEL_OPSET), str(scratch))
    return scratch


def _quantize(q, source: Path, out_path, reader, per_channel: bool, quant_type, reduce_range: bool) -> None:
    q.quantize_static(
        str(source),
        str(out_path),
        reader,
        quant_format=q.QuantFormat.QDQ,
        per_channel=per_channel,
        reduce_range=reduce_range,
        activation_type=quant_type,
        weight_type=q.QuantType.QInt8,
        calibrate_method=q.CalibrationMethod.MinMax,
    )
