"""Turn what the user names (a path, a zoo name, a ModelProto) into a checked, shape-inferred ModelProto."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from nnasim.errors import ModelError, UsageError
from nnasim.io.guarded import read_bytes

MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()
InputShape = Sequence[int] | dict[str, Sequence[int]] | None


def read_model(spec: str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Return the ModelProto and a label naming where it came from (for error messages).

    A file is read through the guarded reader (regular file, size checked first) and its external
    data, if any, is read from the model's own folder, never from the current directory.
    """
    if isinstance(spec, onnx.ModelProto):
        if _external_tensors(spec):
            raise ModelError(
                f"{spec.graph.name or '<model>'}: has external data but no file to find it beside; "
                "load it from its .onnx file"
            )
        return spec, spec.graph.name or "<model>"
    path = Path(spec)
    if not path.exists() and not path.is_symlink():
        if path.suffix == ".onnx" or "/" in str(spec):
            raise ModelError(f"{spec}: no such file")
        from nnasim.models import zoo

        path = zoo.resolve(str(spec))  # raises UsageError listing the zoo for an unknown name
    model = parse_model_file(path)
    load_external_data(model, path)
    return model, str(path)


def display_name(spec: str | Path | onnx.ModelProto) -> str:
    """The model's name as the user typed it: a zoo name (``lffd@320x240``) or the file's name."""
    if isinstance(spec, onnx.ModelProto):
        return spec.graph.name or "<model>"
    path = Path(spec)
    return path.name if path.exists() or path.suffix else str(spec)


def _max_model_bytes() -> int:
    """Protobuf cannot parse a message of 2 GiB or more; nor is a model over half the memory read."""
    return min(2**31 - 1, available_memory() // 2)


def available_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def parse_model_file(path: Path) -> onnx.ModelProto:
    """The ModelProto in ``path`` (guarded read; external data not loaded), or a ModelError naming it."""
    data = read_bytes(path, "an ONNX file", _max_model_bytes(), ModelError)
    if not data:
        raise ModelError(f"{path}: empty file, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ModelError(f"{path}: not a valid ONNX file (protobuf: {error})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no graph or no nodes)")
    return model


def _external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """Initializers and Constant values whose data lives in another file."""
    tensors = list(model.graph.initializer)
    tensors += [
        a.t for node in model.graph.node for a in node.attribute if a.type == onnx.AttributeProto.TENSOR
    ]
    return [t for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]


def load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read every external tensor's bytes from its file in ``path``'s folder, checked first.

    The location must be a relative path inside the model's folder (no ``..``, no absolute path,
    no link out of it) naming a regular file; offset and length must lie inside it and match the
    tensor's shape; the total must fit in memory.
    """
    folder = path.resolve().parent
    budget = available_memory() // 2
    for tensor in _external_tensors(model):
        where = f"{path}: initializer {tensor.name!r}: external data"
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        file = _external_file(folder, location, where)
        offset, length = _external_range(info, file, where, _tensor_bytes(tensor))
        budget -= length
        if budget < 0:
            raise ModelError(f"{where}: the external data is more than half of this machine's memory")
        with open(file, "rb") as handle:
            handle.seek(offset)
            tensor.raw_data = handle.read(length)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def _external_file(folder: Path, location: str, where: str) -> Path:
    relative = Path(location)
    if not location or "\x00" in location or relative.is_absolute() or ".." in relative.parts:
        raise ModelError(
            f"{where}: location {location!r} must be a file name relative to the model's folder "
            "(no absolute path, no '..')"
        )
    file = (folder / relative).resolve()
    if not file.is_relative_to(folder):
        raise ModelError(f"{where}: location {location!r} leads out of the model's folder {folder}")
    if not file.exists():
        raise ModelError(f"{where}: file {location!r} not found beside the model (in {folder})")
    if not file.is_file():
        raise ModelError(f"{where}: {location!r} is not a regular file")
    return file


def _tensor_bytes(tensor: onnx.TensorProto) -> int | None:
    """The size the tensor's shape and type call for, or None for types without a fixed size."""
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return None
    if tensor.data_type in (onnx.TensorProto.STRING,) or any(d < 0 for d in tensor.dims):
        return None
    return itemsize * math.prod(tensor.dims)


def _external_range(info: dict[str, str], file: Path, where: str, expected: int | None) -> tuple[int, int]:
    size = file.stat().st_size
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else size - offset
    except ValueError:
        raise ModelError(f"{where}: offset and length must be integers, got {info}") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelError(
            f"{where}: bytes {offset}..{offset + length} are outside {file.name} ({size:,} bytes)"
        )
    if expected is not None and length != expected:
        raise ModelError(f"{where}: {length:,} bytes in {file.name}, its shape and type need {expected:,}")
    return offset, length


def default_opset(model: onnx.ModelProto, label: str) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ModelError(f"{label}: opset_import has no default ('ai.onnx') domain")
    if versions[0] < MIN_OPSET:
        raise ModelError(f"{label}: opset {versions[0]} is older than the oldest supported, {MIN_OPSET}")
    if versions[0] > MAX_OPSET:
        raise ModelError(
            f"{label}: opset {versions[0]} is newer than the newest this onnx package knows, {MAX_OPSET}"
        )
    return versions[0]


def fix_input_shapes(model: onnx.ModelProto, label: str, input_shape: InputShape) -> None:
    """Set every graph input's shape to a static one: from ``input_shape`` or the file."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    wanted = _wanted_shapes(inputs, label, input_shape)
    if wanted:  # output shapes in the file may be those of another input size, even of another
        for value in model.graph.output:  # rank (ddddocr's CRNN): inference recomputes them
            value.type.tensor_type.ClearField("shape")
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        shape = wanted.get(value.name)
        if shape is not None:
            if len(dims) and len(shape) != len(dims):
                raise UsageError(
                    f"{label}: input {value.name!r} has rank {len(dims)}, --input-shape gives {shape}"
                )
            value.type.tensor_type.shape.Clear()
            for size in shape:
                value.type.tensor_type.shape.dim.add().dim_value = int(size)
            continue
        if not value.type.tensor_type.HasField("shape"):
            raise ModelError(f"{label}: input {value.name!r} has no shape; give one with --input-shape")
        for dim in dims:
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
                raise ModelError(
                    f"{label}: input {value.name!r} has dynamic or non-positive shape {shown}; "
                    "fix it with --input-shape, e.g. --input-shape 1,3,224,224"
                )


def _wanted_shapes(inputs: list, label: str, input_shape: InputShape) -> dict[str, tuple[int, ...]]:
    if input_shape is None:
        return {}
    if isinstance(input_shape, dict):
        unknown = set(input_shape) - {i.name for i in inputs}
        if unknown:
            raise UsageError(f"{label}: --input-shape names unknown inputs {sorted(unknown)}")
        shapes = {name: tuple(shape) for name, shape in input_shape.items()}
    elif len(inputs) != 1:
        raise UsageError(f"{label}: the model has {len(inputs)} inputs; give --input-shape as NAME=1,3,H,W")
    else:
        shapes = {inputs[0].name: tuple(input_shape)}
    for name, shape in shapes.items():
        if not shape or any(int(s) <= 0 for s in shape):
            raise UsageError(f"{label}: --input-shape for {name!r} must be positive integers, got {shape}")
    return shapes


def check_and_infer(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Run the onnx checker and strict shape inference, naming the file and the node on failure.

    Where a graph output was exported without a shape, strict inference runs first: it fills the
    shape, which the checker would otherwise reject with a message naming no node, and a node
    it cannot infer (a MaxPool without kernel_shape, a stride of 0) is reported by name.
    """
    _forget_unknown_dims(model)
    if any(not o.type.tensor_type.HasField("shape") for o in model.graph.output):
        model = check_and_infer_shapes(model, label)
    try:
        onnx.checker.check_model(_with_shaped_outputs(model))
    except (onnx.checker.ValidationError, ValueError) as error:
        raise ModelError(f"{label}: fails the ONNX checker: {_first_line(error)}") from None
    model = check_and_infer_shapes(model, label)
    check_inferred_nodes(model, label)
    return model


def _with_shaped_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model as the checker may see it: outputs whose shape only constant folding can give
    (a Reshape fed by a Shape/Gather/Mul chain onnx does not propagate) are left out."""
    if all(o.type.tensor_type.HasField("shape") for o in model.graph.output):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    shaped = [o for o in copy.graph.output if o.type.tensor_type.HasField("shape")]
    del copy.graph.output[:]
    copy.graph.output.extend(shaped)
    return copy


def check_inferred_nodes(model: onnx.ModelProto, label: str) -> None:
    """What onnx's inference lets through: a Transpose whose perm is not a permutation of the
    input's axes, a Reshape that changes the number of elements."""
    shapes = {
        v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]
        if v.type.tensor_type.HasField("shape")
    }
    for node in model.graph.node:
        source, result = shapes.get(node.input[0]) if node.input else None, shapes.get(node.output[0])
        if node.op_type == "Transpose" and source is not None:
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            if perm is not None and sorted(perm) != list(range(len(source))):
                raise ModelError(
                    f"{label}: node {node.name!r} (Transpose): perm {perm} is not a permutation of the "
                    f"input's {len(source)} axes"
                )
        resolved = source and result and None not in source + result
        if node.op_type == "Reshape" and resolved and math.prod(source) != math.prod(result):
            raise ModelError(
                f"{label}: node {node.name!r} (Reshape): {source} ({math.prod(source)} values) cannot "
                f"become {result} ({math.prod(result)} values)"
            )


def _forget_unknown_dims(model: onnx.ModelProto) -> None:
    """Drop the exporter's intermediate shapes (shape inference recomputes them) and clear output
    dimensions written as ``-1`` or 0 (Paddle2ONNX does): strict inference would report them as
    conflicts with the static sizes it infers, as it would stale sizes from the export's input size."""
    del model.graph.value_info[:]
    for value in model.graph.output:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value <= 0:
                dim.Clear()


def check_and_infer_shapes(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """Strict shape inference, naming the file, and the node and op where onnx names them."""
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError) as error:
        raise ModelError(f"{label}: {inference_message(error)}") from None


_NODE_ERROR = re.compile(r"\(op_type:(?P<op>[^,]+), node name: (?P<node>[^)]*)\): (?:\[\w+\] )?(?P<what>.*)")


def inference_message(error: Exception) -> str:
    """onnx's inference error as ``node 'n' (Op): what is wrong``, or its first lines."""
    match = _NODE_ERROR.search(str(error))
    if match:
        what = match.group("what").strip().splitlines()[0][:300]
        return f"node {match.group('node')!r} ({match.group('op')}): {what}"
    return f"shape inference failed: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300] if lines else type(error).__name__
