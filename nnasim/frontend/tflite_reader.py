"""Read a .tflite flatbuffer with the ``tflite`` package into plain tensors and operators.

Only the first subgraph is read (the one the interpreter runs). Each operator keeps its builtin
name and its options as a dict of the option table's fields, so converters read ``opts["StrideH"]``
instead of flatbuffer accessors. Sparse constants (TFLite's ``SparsityParameters``: dense and
CSR levels in a traversal order, optionally blocked) are read dense, and the output of a
``DENSIFY`` of one holds the same data. Nothing here knows the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    options: dict = field(default_factory=dict)  # a custom op's raw bytes under "CustomOptions"


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
        tensors = _densified(tensors, ops)
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
        if tensor.Sparsity() is not None:
            data = _dense(
                tensor.Sparsity(), data, shape, f"{label}: sparse constant tensor {index} ({name!r})"
            )
        if data.size != int(np.prod(shape, dtype=np.int64)):
            raise ModelError(
                f"{label}: constant tensor {index} ({name!r}) holds {data.size} values "
                f"for shape {list(shape)}"
            )
        data = data.reshape(shape)
    return TflTensor(index, name, shape, dtype, data, _quant(tensor))


def _dense(sparsity, values: np.ndarray, shape: tuple[int, ...], label: str) -> np.ndarray:
    """The dense array of a sparse constant, as TFLite's ``FormatConverter::SparseToDense``.

    Each level of the traversal order is dense (``dense_size`` positions) or CSR (the children of
    position ``p`` are ``indices[segments[p]:segments[p + 1]]``); block levels (after the tensor's
    own dimensions) refine the dimension ``block_map`` names. Values come in traversal order.
    """
    order = [int(i) for i in sparsity.TraversalOrderAsNumpy()]
    block_map = [int(i) for i in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    levels = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    rank = len(shape)
    if len(levels) != len(order) or len(order) != rank + len(block_map):
        raise ModelError(f"{label}: sparsity has {len(levels)} levels for traversal order {order}")
    paths, parents = np.zeros((1, 0), np.int64), np.zeros(1, np.int64)
    for level in levels:
        if level.Format() == 0:  # DENSE
            size = int(level.DenseSize())
            paths = np.column_stack([np.repeat(paths, size, axis=0), np.tile(np.arange(size), len(parents))])
            parents = (parents[:, None] * size + np.arange(size)).ravel()
            continue
        segments = _index_vector(level.ArraySegmentsType(), level.ArraySegments())
        indices = _index_vector(level.ArrayIndicesType(), level.ArrayIndices())
        if parents.max(initial=0) + 1 >= segments.size or segments[-1] > indices.size:
            raise ModelError(f"{label}: CSR segments do not cover the level's positions")
        counts = segments[parents + 1] - segments[parents]
        children = np.concatenate([np.arange(segments[p], segments[p + 1]) for p in parents] or [[]])
        paths = np.column_stack([np.repeat(paths, counts, axis=0), indices[children.astype(np.int64)]])
        parents = children.astype(np.int64)
    if len(paths) != values.size:
        raise ModelError(f"{label}: holds {values.size} values where its sparsity describes {len(paths)}")
    coords = [np.zeros(len(paths), np.int64) for _ in range(rank)]
    for position, dim in enumerate(order[:rank]):
        coords[dim] = paths[:, position]
    for position in range(rank, len(order)):
        block = order[position] - rank
        size = int(levels[rank + block].DenseSize())
        coords[block_map[block]] = coords[block_map[block]] * size + paths[:, position]
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), values.dtype)
    dense[np.ravel_multi_index(coords, shape)] = values
    return dense


def _index_vector(kind: int, table) -> np.ndarray:
    """A ``SparseIndexVector`` union (Int32Vector, Uint16Vector or Uint8Vector) as int64."""
    vector_type = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}.get(kind)
    if vector_type is None:
        raise ModelError(f"unknown sparse index vector type {kind}")
    vector = vector_type()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesAsNumpy().astype(np.int64) if vector.ValuesLength() else np.zeros(0, np.int64)


def _densified(tensors: tuple[TflTensor, ...], ops: tuple[TflOp, ...]) -> tuple[TflTensor, ...]:
    """Tensors with each constant DENSIFY's output holding its (dense) input's data."""
    result = list(tensors)
    for op in ops:
        if op.name == "DENSIFY" and result[op.inputs[0]].data is not None:
            result[op.outputs[0]] = replace(result[op.outputs[0]], data=result[op.inputs[0]].data)
    return tuple(result)


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
    options = _options(op)
    if name.startswith("CUSTOM") and op.CustomOptionsLength():
        options["CustomOptions"] = op.CustomOptionsAsNumpy().tobytes()
    return TflOp(index, name, inputs, outputs, options)


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
