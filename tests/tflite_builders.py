"""Small full-integer TFLite models written with the flatbuffers builder and the ``tflite`` schema
package (no TensorFlow): one op, its own scales and zero points, for bit-exact checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType


@dataclass
class T:
    """A tensor of the model under construction (``data`` makes it a constant)."""

    shape: tuple[int, ...]
    dtype: str = "INT8"
    scale: float | list[float] | None = None
    zero_point: int | list[int] = 0
    axis: int = 0
    data: np.ndarray | None = None
    name: str = ""


@dataclass
class Op:
    name: str  # builtin operator name
    inputs: list[int]
    outputs: list[int]
    options: str | None = None  # option table name, e.g. "Conv2DOptions"
    fields: dict = field(default_factory=dict)


NUMPY = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FLOAT32": np.float32}


def write_model(tensors: list[T], ops: list[Op], inputs: list[int], outputs: list[int]) -> bytes:
    """Serialise a one-subgraph model (schema version 3) to TFLite flatbuffer bytes."""
    b = flatbuffers.Builder(1024)
    buffers = [_buffer(b, None)] + [_buffer(b, t.data) for t in tensors]
    tensor_offsets = [_tensor(b, t, i + 1, i) for i, t in enumerate(tensors)]
    codes = sorted({op.name for op in ops})
    code_offsets = [_opcode(b, name) for name in codes]
    op_offsets = [_operator(b, op, codes.index(op.name)) for op in ops]
    subgraph_fields = {
        "Tensors": _vector(b, tensor_offsets),
        "Inputs": b.CreateNumpyVector(np.array(inputs, np.int32)),
        "Outputs": b.CreateNumpyVector(np.array(outputs, np.int32)),
        "Operators": _vector(b, op_offsets),
    }
    tflite.SubGraphStart(b)
    for name, value in subgraph_fields.items():
        getattr(tflite, f"SubGraphAdd{name}")(b, value)
    subgraph = tflite.SubGraphEnd(b)
    subgraphs, codes_vec, buffers_vec = _vector(b, [subgraph]), _vector(b, code_offsets), _vector(b, buffers)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddBuffers(b, buffers_vec)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _vector(b, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _buffer(b, data: np.ndarray | None) -> int:
    raw = (
        None
        if data is None
        else b.CreateNumpyVector(np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8))
    )
    tflite.BufferStart(b)
    if raw is not None:
        tflite.BufferAddData(b, raw)
    return tflite.BufferEnd(b)


def _tensor(b, t: T, buffer: int, index: int) -> int:
    name = b.CreateString(t.name or f"t{index}")
    shape = b.CreateNumpyVector(np.array(t.shape, np.int32))
    quant = None
    if t.scale is not None:
        scale = np.atleast_1d(np.asarray(t.scale, np.float32))
        scales = b.CreateNumpyVector(scale)
        zps = b.CreateNumpyVector(np.broadcast_to(np.asarray(t.zero_point, np.int64), scale.shape).copy())
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, scales)
        tflite.QuantizationParametersAddZeroPoint(b, zps)
        tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
        quant = tflite.QuantizationParametersEnd(b)
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tflite.TensorAddType(b, getattr(TensorType, t.dtype))
    tflite.TensorAddBuffer(b, buffer)
    tflite.TensorAddName(b, name)
    if quant is not None:
        tflite.TensorAddQuantization(b, quant)
    return tflite.TensorEnd(b)


def _opcode(b, name: str) -> int:
    code = getattr(BuiltinOperator, name)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddVersion(b, 1)
    return tflite.OperatorCodeEnd(b)


def _operator(b, op: Op, code_index: int) -> int:
    inputs = b.CreateNumpyVector(np.array(op.inputs, np.int32))
    outputs = b.CreateNumpyVector(np.array(op.outputs, np.int32))
    options = None
    if op.options:
        getattr(tflite, f"{op.options}Start")(b)
        for key, value in op.fields.items():
            getattr(tflite, f"{op.options}Add{key}")(b, value)
        options = getattr(tflite, f"{op.options}End")(b)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, code_index)
    tflite.OperatorAddInputs(b, inputs)
    tflite.OperatorAddOutputs(b, outputs)
    if options is not None:
        tflite.OperatorAddBuiltinOptionsType(b, getattr(BuiltinOptions, op.options))
        tflite.OperatorAddBuiltinOptions(b, options)
    return tflite.OperatorEnd(b)


def quantized(rng: np.random.Generator, shape, dtype: str = "INT8") -> np.ndarray:
    info = np.iinfo(NUMPY[dtype])
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(NUMPY[dtype])
