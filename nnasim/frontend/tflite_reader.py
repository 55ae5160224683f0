"""Read a .tflite flatbuffer with the ``tflite`` package into plain tensors and operators.

Only the first subgraph is read (the one the interpreter runs). Each operator keeps its builtin
name and its options as a dict of the option table's fields, so converters read ``opts["StrideH"]``
instead of flatbuffer accessors. Nothing here knows the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from nnasim.errors import ModelError

OP_NAMES = {value: name for name, value in vars(BuiltinOperator).items() if not name.startswith("_")}
OPTION_TABLES = {value: name for name, value in vars(BuiltinOptions).items() if not name.startswith("_")}
TYPE_NAMES = {value: name for name, value in vars(TensorType).items() if not name.startswith("_")}
NUMPY_TYPES = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "FLOAT64": np.float64,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "UINT16": np.uint16,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
}


@dataclass(frozen=True)
class TflQuant:
    """A tensor's affine quantization: ``real = scale * (q - zero_point)`` along ``axis`` when per channel."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None


@dataclass(frozen=True)
class TflTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # TensorType name: FLOAT32, INT8, ...
    data: np.ndarray | None = field(default=None, repr=False)
    quant: TflQuant | None = None


@dataclass(frozen=True)
class TflOp:
    index: int
    name: str  # builtin operator name: CONV_2D, ...
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TflModel:
    label: str
    tensors: tuple[TflTensor, ...]
    ops: tuple[TflOp, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def is_tflite_file(path: str | Path) -> bool:
    """Whether ``path`` is a file with the TFLite flatbuffer identifier ("TFL3") or a .tflite name."""
    path = Path(str(path))
    if not path.is_file():
        return False
    if path.suffix == ".tflite":
        return True
    with path.open("rb") as handle:
        head = handle.read(8)
    return len(head) == 8 and head[4:8] == b"TFL3"


def read_tflite(path: str | Path) -> TflModel:
    """Parse ``path``; a file that is not a TFLite flatbuffer is a ModelError naming it."""
    label = str(path)
    data = Path(path).read_bytes()
    if len(data) < 8 or not tflite.Model.ModelBufferHasIdentifier(data, 0):
        raise ModelError(f"{label}: not a TFLite file (no 'TFL3' flatbuffer identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() < 1:
            raise ModelError(f"{label}: TFLite file has no subgraph")
        graph = model.Subgraphs(0)
        tensors = tuple(_tensor(model, graph, i, label) for i in range(graph.TensorsLength()))
        ops = tuple(_operator(model, graph, i, label) for i in range(graph.OperatorsLength()))
        inputs = tuple(int(i) for i in graph.InputsAsNumpy())
        outputs = tuple(int(i) for i in graph.OutputsAsNumpy())
    except ModelError:
        raise
    except Exception as error:  # flatbuffers raises many types on a truncated or corrupt file
        raise ModelError(f"{label}: corrupt TFLite flatbuffer: {type(error).__name__}: {error}") from None
    return TflModel(label, tensors, ops, inputs, outputs)


def _tensor(model, graph, index: int, label: str) -> TflTensor:
    tensor = graph.Tensors(index)
    dtype = TYPE_NAMES.get(tensor.Type(), str(tensor.Type()))
    shape = tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    name = tensor.Name().decode(errors="replace") or f"tensor_{index}"
    data = None
    buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() else None
    if buffer is not None and buffer.DataLength():
        if dtype not in NUMPY_TYPES:
            raise ModelError(f"{label}: constant tensor {index} ({name!r}) has unsupported type {dtype}")
        raw = buffer.DataAsNumpy().tobytes()
        data = np.frombuffer(raw, np.dtype(NUMPY_TYPES[dtype]).newbyteorder("<")).astype(NUMPY_TYPES[dtype])
        if data.size != int(np.prod(shape, dtype=np.int64)):
            raise ModelError(
                f"{label}: constant tensor {index} ({name!r}) holds {data.size} values "
                f"for shape {list(shape)}"
            )
        data = data.reshape(shape)
    return TflTensor(index, name, shape, dtype, data, _quant(tensor))


def _quant(tensor) -> TflQuant | None:
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scale = q.ScaleAsNumpy().astype(np.float32)
    zero_point = (
        q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else np.zeros(scale.shape, np.int64)
    )
    axis = int(q.QuantizedDimension()) if scale.size > 1 else None
    return TflQuant(scale, zero_point, axis)


def _operator(model, graph, index: int, label: str) -> TflOp:
    op = graph.Operators(index)
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    name = OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
    if name == "CUSTOM":
        custom = code.CustomCode()
        name = f"CUSTOM({custom.decode(errors='replace') if custom else '?'})"
    inputs = tuple(int(i) for i in op.InputsAsNumpy()) if op.InputsLength() else ()
    outputs = tuple(int(i) for i in op.OutputsAsNumpy()) if op.OutputsLength() else ()
    return TflOp(index, name, inputs, outputs, _options(op))


def _options(op) -> dict:
    """The builtin option table of ``op`` as a dict of its scalar fields."""
    table_name = OPTION_TABLES.get(op.BuiltinOptionsType(), "NONE")
    table = op.BuiltinOptions()
    if table_name == "NONE" or table is None:
        return {}
    cls = getattr(getattr(tflite, table_name), table_name, None) or getattr(tflite, table_name)
    options = cls()
    options.Init(table.Bytes, table.Pos)
    values = {}
    for attr in dir(options):
        if attr.startswith("_") or attr in ("Init",) or attr.startswith("GetRoot") or "BufferHas" in attr:
            continue
        if attr.endswith(("Length", "IsNone")):
            continue
        method = getattr(options, attr)
        if attr.endswith("AsNumpy"):
            values[attr[: -len("AsNumpy")]] = np.asarray(method()).tolist()
            continue
        try:
            values[attr] = method()
        except TypeError:  # vector accessors take an index: read them through AsNumpy above
            continue
    return values
